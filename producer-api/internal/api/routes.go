// Package api is the producer-api's HTTP surface (CONTRACT §4): one routes table, handlers that
// decode and validate requests, and the JSON error shape for every failure.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/auth"
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
}

type api struct {
	Deps
	metrics *metrics
}

// NewServer returns the whole HTTP surface: the REST API, the WebSocket proxy and the ops
// endpoints.
func NewServer(d Deps) http.Handler {
	if d.Notify == nil {
		d.Notify = func() {}
	}
	a := &api{Deps: d, metrics: newMetrics(d.Registry)}
	read := d.Verifier.Require(auth.PermReadExports, false, writeAuthError)
	readWS := d.Verifier.Require(auth.PermReadExports, true, writeAuthError)
	write := d.Verifier.Require(auth.PermWriteExports, false, writeAuthError)

	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		server.WriteError(w, http.StatusNotFound, "not_found", "no such endpoint", "")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		server.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this endpoint", "")
	})
	v1 := r.PathPrefix("/api/v1/exports").Subrouter()
	v1.Handle("/ws", readWS(a.wsProxy())).Methods(http.MethodGet)
	v1.Handle("", read(http.HandlerFunc(a.listJobs))).Methods(http.MethodGet)
	v1.Handle("/create", write(http.HandlerFunc(a.createFromBody))).Methods(http.MethodPost)
	v1.Handle("/progress/{task_id}", read(http.HandlerFunc(a.progress))).Methods(http.MethodGet)
	v1.Handle("/download/{task_id}", read(http.HandlerFunc(a.download))).Methods(http.MethodGet)
	v1.Handle("/{format}/{entity}", write(http.HandlerFunc(a.createFromPath))).Methods(http.MethodPost)
	v1.Handle("/{id}", read(http.HandlerFunc(a.getJob))).Methods(http.MethodGet)

	ops := http.NewServeMux()
	server.Ops(ops, d.Registry, d.Checks)
	r.Handle("/healthz", ops)
	r.Handle("/readyz", ops)
	r.Handle("/metrics", ops)
	r.Handle("/", http.HandlerFunc(index)).Methods(http.MethodGet)

	return a.instrument(r)
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
