package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/server"
	"github.com/productsmanager/exportplatform/producer-api/internal/ratelimit"
)

type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	jobsRequested *prometheus.CounterVec
	jobsCancelled prometheus.Counter
	rateLimited   *prometheus.CounterVec

	streams         *prometheus.CounterVec
	streamsInFlight prometheus.Gauge
	streamRows      *prometheus.CounterVec
	streamBytes     *prometheus.CounterVec
	streamFirstByte prometheus.Histogram
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
		jobsCancelled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "export_jobs_cancelled_total", Help: "Export jobs cancelled on request (POST cancel; a DELETE of a running job is not counted).",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_rate_limited_total", Help: "Requests refused with 429 by the per-user rate limit, by class.",
		}, []string{"class"}),
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "export_streams_total",
			Help: "Export streams that started a query, by entity, format and outcome (completed, client_gone, failed, unavailable).",
		}, []string{"entity", "format", "outcome"}),
		streamsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "export_streams_in_flight", Help: "Export streams running now.",
		}),
		streamRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "export_stream_rows_total", Help: "Rows sent by export streams (counted every 1000 rows and at the end).",
		}, []string{"entity", "format"}),
		streamBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "export_stream_bytes_total", Help: "Bytes of export files sent by export streams.",
		}, []string{"entity", "format"}),
		streamFirstByte: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "export_stream_first_byte_seconds", Help: "Time from an export stream's start to its first byte.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
	}
	// Every class at 0 from the start: rules and dashboards (deployments/observability) see the
	// series before the first refusal, and an increase from 0 counts it.
	for _, class := range []string{ratelimit.Exports, ratelimit.Streams, ratelimit.Downloads, ratelimit.Schedules, ratelimit.Reads} {
		m.rateLimited.WithLabelValues(class)
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.jobsRequested, m.jobsCancelled, m.rateLimited,
			m.streams, m.streamsInFlight, m.streamRows, m.streamBytes, m.streamFirstByte)
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

// spanRoute is a mux path template without its variables' patterns, as a span names its route:
// "/api/v1/exports/{id:[0-9a-f]{8}-…}" → "/api/v1/exports/{id}".
func spanRoute(tmpl string) string {
	var b strings.Builder
	depth := 0
	skip := false
	for _, c := range tmpl {
		switch {
		case c == '{':
			depth++
			if depth > 1 {
				continue
			}
		case c == '}':
			depth--
			if depth > 0 {
				continue
			}
			skip = false
		case c == ':' && depth == 1:
			skip = true
		}
		if !skip {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// instrument records metrics and turns a panic into a JSON 500, or, once the response has
// begun, into an aborted connection.
func (a *api) instrument(next *mux.Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route := "unmatched"
		var match mux.RouteMatch
		if next.Match(r, &match) && match.Route != nil {
			if t, err := match.Route.GetPathTemplate(); err == nil {
				route = t
				// mux sets no r.Pattern: the server span (server.Traced) is named here.
				server.Route(r, spanRoute(t))
			}
		}
		// Every answer is served with the type it declares: a browser never guesses an export
		// (a CSV cell holding <script>) into a page.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			p := recover()
			if p != nil && p != http.ErrAbortHandler {
				a.Log.Error("handler panic", "panic", p, "path", r.URL.Path)
				if rec.code == 0 {
					server.WriteError(rec, http.StatusInternalServerError, "internal", "internal error; it has been logged", "")
					p = nil
				}
			}
			code := rec.code
			if code == 0 {
				code = http.StatusOK
			}
			a.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(code)).Inc()
			a.metrics.duration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
			if p != nil {
				// Bytes of a response already left: finishing it normally would hand the client a
				// complete-looking but short body. Aborting drops the connection instead.
				panic(http.ErrAbortHandler)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}
