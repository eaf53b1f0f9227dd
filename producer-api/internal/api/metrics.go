package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/server"
)

type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	jobsRequested *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		jobsRequested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "export_jobs_requested_total", Help: "Export jobs accepted, by entity and format.",
		}, []string{"entity", "format"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.jobsRequested)
	}
	return m
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack (the WebSocket proxy needs it).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// instrument records metrics and recovers panics into a JSON 500.
func (a *api) instrument(next *mux.Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route := "unmatched"
		var match mux.RouteMatch
		if next.Match(r, &match) && match.Route != nil {
			if t, err := match.Route.GetPathTemplate(); err == nil {
				route = t
			}
		}
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				a.Log.Error("handler panic", "panic", p, "path", r.URL.Path)
				if rec.code == 0 {
					server.WriteError(rec, http.StatusInternalServerError, "internal", "internal error; it has been logged", "")
				}
			}
			code := rec.code
			if code == 0 {
				code = http.StatusOK
			}
			a.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(code)).Inc()
			a.metrics.duration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r)
	})
}
