// Package api is the producer-api's HTTP surface (CONTRACT §4): one routes table, handlers that
// decode and validate requests, and the JSON error shape for every failure.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
	"github.com/productsmanager/exportplatform/pkg/server"
)

// Jobs is what the API needs of the job store.
type Jobs interface {
	Create(ctx context.Context, req events.ExportRequested) (jobstore.Job, error)
	Get(ctx context.Context, id string) (jobstore.Job, error)
	List(ctx context.Context, f jobstore.ListFilter) ([]jobstore.Job, string, error)
	Cancel(ctx context.Context, id, by string) (jobstore.Job, error)
	Delete(ctx context.Context, id, by string) (jobstore.Job, error)
	FileRemoved(ctx context.Context, id string, now time.Time) error
}

// Deps are the server's collaborators.
type Deps struct {
	Jobs        Jobs
	Objects     objectstore.Store
	Verifier    *auth.Verifier
	Log         *slog.Logger
	Registry    *prometheus.Registry
	Checks      map[string]server.Check
	HubURL      *url.URL
	MaxBodySize int64
	// Notify is called after a job is committed (wakes the outbox relay).
	Notify func()
	// Catalog is the products_manager database the streams read; nil answers them 503.
	Catalog catalog.Querier
	// MaxStreams bounds the streams running at once (each holds a catalog connection);
	// 0 is no bound.
	MaxStreams int
	// StreamWriteTimeout bounds one write of a stream to a client that stopped reading;
	// 0 is one minute.
	StreamWriteTimeout time.Duration
	// Now is the clock that decides whether a file expired and when schedules fire; nil is
	// time.Now.
	Now func() time.Time
	// Schedules is the schedules' repository.
	Schedules Schedules
}

// jobID is the route pattern of a job id (a UUID).
const jobID = `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`

var unknownFormatPath = regexp.MustCompile(`^/api/v1/exports/([a-z]+)/[^/]+$`)

type api struct {
	Deps
	metrics     *metrics
	streamSlots chan struct{} // nil without MaxStreams
}

// NewServer returns the whole HTTP surface: the REST API, the WebSocket proxy and the ops
// endpoints.
func NewServer(d Deps) http.Handler {
	if d.Notify == nil {
		d.Notify = func() {}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	a := &api{Deps: d, metrics: newMetrics(d.Registry)}
	if d.MaxStreams > 0 {
		a.streamSlots = make(chan struct{}, d.MaxStreams)
	}
	read := d.Verifier.Require(auth.PermReadExports, false, writeAuthError)
	readWS := d.Verifier.Require(auth.PermReadExports, true, writeAuthError)
	write := d.Verifier.Require(auth.PermWriteExports, false, writeAuthError)

	r := mux.NewRouter()
	// A POST to /{format}/{entity} with a format that is none still gets the 400 naming the
	// format (CONTRACT §4), decided here rather than by a catch-all route that later routes
	// (POST /{id}/cancel) would have to be registered before. Letters only: never a job id.
	unknownFormat := write(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := unknownFormatPath.FindStringSubmatch(r.URL.Path)[1]
		server.WriteError(w, http.StatusBadRequest, "invalid_argument",
			fmt.Sprintf("unknown format %q (one of csv, excel, json)", format), "format")
	}))
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// mux reports a method mismatch inside a subrouter only when no later route matched
		// part of the path; asking again with each method finds every 405.
		if allowed := allowedMethods(r, req); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			server.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this endpoint", "")
			return
		}
		if req.Method == http.MethodPost && unknownFormatPath.MatchString(req.URL.Path) {
			unknownFormat.ServeHTTP(w, req)
			return
		}
		server.WriteError(w, http.StatusNotFound, "not_found", "no such endpoint", "")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		server.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this endpoint", "")
	})
	v1 := r.PathPrefix("/api/v1/exports").Subrouter()
	// Fixed paths first: mux takes the first route that matches, and the patterns at the end
	// would match some of these too.
	v1.Handle("", read(http.HandlerFunc(a.listJobs))).Methods(http.MethodGet)
	v1.Handle("/ws", readWS(a.wsProxy())).Methods(http.MethodGet)
	v1.Handle("/create", write(http.HandlerFunc(a.createFromBody))).Methods(http.MethodPost)
	v1.Handle("/fields/{entity}", read(http.HandlerFunc(a.fields))).Methods(http.MethodGet)
	v1.Handle("/stream/{format}/{entity}", read(http.HandlerFunc(a.stream))).Methods(http.MethodGet)
	v1.Handle("/progress/{task_id}", read(http.HandlerFunc(a.progress))).Methods(http.MethodGet)
	v1.Handle("/schedules", read(http.HandlerFunc(a.listSchedules))).Methods(http.MethodGet)
	v1.Handle("/schedules", write(http.HandlerFunc(a.createSchedule))).Methods(http.MethodPost)
	v1.Handle("/schedules/preview", read(http.HandlerFunc(a.previewSchedule))).Methods(http.MethodPost)
	v1.Handle("/schedules/{id}", read(http.HandlerFunc(a.getSchedule))).Methods(http.MethodGet)
	v1.Handle("/schedules/{id}", write(http.HandlerFunc(a.updateSchedule))).Methods(http.MethodPut)
	v1.Handle("/schedules/{id}", write(http.HandlerFunc(a.deleteSchedule))).Methods(http.MethodDelete)
	v1.Handle("/schedules/{id}/toggle", write(http.HandlerFunc(a.toggleSchedule))).Methods(http.MethodPost)
	v1.Handle("/schedules/{id}/run", write(http.HandlerFunc(a.runSchedule))).Methods(http.MethodPost)
	v1.Handle("/schedules/{id}/next", read(http.HandlerFunc(a.nextRuns))).Methods(http.MethodGet)
	v1.Handle("/schedules/{id}/runs", read(http.HandlerFunc(a.scheduleRuns))).Methods(http.MethodGet)
	v1.Handle("/download/{task_id}", read(http.HandlerFunc(a.download))).Methods(http.MethodGet)
	// Patterns. {format} matches formats only, so POST /{id}/cancel is never an export request
	// whatever the order routes are added in.
	v1.Handle("/{format:csv|excel|json}/{entity}", write(http.HandlerFunc(a.createFromPath))).Methods(http.MethodPost)
	v1.Handle("/{id}", read(http.HandlerFunc(a.getJob))).Methods(http.MethodGet)
	// Job ids only: DELETE /create stays a 405 rather than a search for a job named "create".
	v1.Handle("/{id:"+jobID+"}", write(http.HandlerFunc(a.deleteJob))).Methods(http.MethodDelete)
	v1.Handle("/{id:"+jobID+"}/cancel", write(http.HandlerFunc(a.cancelJob))).Methods(http.MethodPost)

	ops := http.NewServeMux()
	server.Ops(ops, d.Registry, d.Checks, d.Log)
	r.Handle("/healthz", ops)
	r.Handle("/readyz", ops)
	r.Handle("/metrics", ops)
	r.Handle("/", http.HandlerFunc(index)).Methods(http.MethodGet, http.MethodHead)

	return a.instrument(r)
}

// allowedMethods are the methods that have a route for req's path.
func allowedMethods(r *mux.Router, req *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if m == req.Method {
			continue
		}
		var match mux.RouteMatch
		probe := req.Clone(req.Context())
		probe.Method = m
		if r.Match(probe, &match) && match.MatchErr == nil && match.Route != nil {
			out = append(out, m)
		}
	}
	return out
}

// wsProxy forwards the WebSocket (an HTTP upgrade) to the hub, which checks the token and the
// Origin again: the proxy adds no trust.
func (a *api) wsProxy() http.Handler {
	p := httputil.NewSingleHostReverseProxy(a.HubURL)
	p.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		a.Log.Warn("websocket proxy to hub failed", "err", err)
		server.WriteError(w, http.StatusBadGateway, "hub_unavailable", "the progress hub is unreachable; retry shortly", "")
	}
	return p
}

func writeAuthError(w http.ResponseWriter, _ *http.Request, status int, code, message string) {
	server.WriteError(w, status, code, message, "")
}
