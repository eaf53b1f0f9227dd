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
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
	"github.com/productsmanager/exportplatform/pkg/refusals"
	"github.com/productsmanager/exportplatform/pkg/server"
	"github.com/productsmanager/exportplatform/producer-api/internal/auditlog"
	"github.com/productsmanager/exportplatform/producer-api/internal/ratelimit"
)

// Jobs is what the API needs of the job store.
type Jobs interface {
	CreateWithin(ctx context.Context, req events.ExportRequested, maxActive int) (jobstore.Job, error)
	Get(ctx context.Context, id string) (jobstore.Job, error)
	List(ctx context.Context, f jobstore.ListFilter) ([]jobstore.Job, string, error)
	Cancel(ctx context.Context, id, by string) (jobstore.Job, error)
	Delete(ctx context.Context, id, by string, audit *events.Accessed) (jobstore.Job, error)
	// Do applies a command to a job (pkg/job), under its row lock.
	Do(ctx context.Context, id string, c job.Command) (jobstore.Job, error)
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
	// Platforms is the platforms' repository; nil: platforms are unknown.
	Platforms Platforms
	// Webhooks is the webhook deliveries' repository (the log, the endpoints' state).
	Webhooks Webhooks
	// Auditor queues the audit's access events; nil: none.
	Auditor Auditor
	// Refusals audits refused requests, a bounded number per client (pkg/refusals); nil
	// audits each through Auditor.
	Refusals *refusals.Gate
	// Proxies are the peers whose X-Forwarded-For names the client (audit, logs).
	Proxies server.Proxies
	// AuditLog reads the audit (db_analytics) for GET /audit; nil answers 503.
	AuditLog AuditLog
	// Limiter counts each user's requests per class (shared by the replicas); nil: no limits.
	Limiter Limiter
	// MaxActiveJobs bounds a user's queued and running jobs; 0 is no bound.
	MaxActiveJobs int
	// UserStreams bounds the streams one user runs at once across replicas; nil: no bound
	// besides MaxStreams.
	UserStreams Slots
	// MinClientRate is the slowest a stream or download may be taken (bytes per second over
	// ClientRateWindow) before it is cut; 0 is no bound.
	MinClientRate    int64
	ClientRateWindow time.Duration
}

// Slots are per-user stream slots; *ratelimit.Slots implements them.
type Slots interface {
	Acquire(ctx context.Context, subject string) (release func(), ok bool, err error)
}

// AuditLog reads the audit; *auditlog.Store implements it.
type AuditLog interface {
	List(ctx context.Context, f auditlog.Filter) ([]auditlog.Row, string, error)
}

// Limiter is the rate limiter; *ratelimit.Limiter implements it.
type Limiter interface {
	Take(ctx context.Context, subject, class string) (ratelimit.Decision, error)
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
	a, r := newRouter(d)
	return a.instrument(r)
}

// newRouter is the API and its routes table (every route has its operation in openapi.yaml:
// TestEveryRouteDocumented walks this table).
func newRouter(d Deps) (*api, *mux.Router) {
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
	read := d.Verifier.Require(auth.PermReadExports, false, a.authError)
	readWS := d.Verifier.Require(auth.PermReadExports, true, a.authError)
	write := d.Verifier.Require(auth.PermWriteExports, false, a.authError)
	manage := d.Verifier.Require(auth.PermManageExports, false, a.authError)

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
	// The API's and the events' descriptions are public: no token, no rate class.
	r.Handle("/api/v1/openapi.json", a.document("OpenAPI", OpenAPI)).Methods(http.MethodGet)
	r.Handle("/api/v1/asyncapi.json", a.document("AsyncAPI", asyncAPI)).Methods(http.MethodGet)
	v1 := r.PathPrefix("/api/v1/exports").Subrouter()
	// Fixed paths first: mux takes the first route that matches, and the patterns at the end
	// would match some of these too.
	// Each route's rate class (ratelimit): the limit is checked after the token, so a 401 or
	// 403 costs nothing of the caller's quota.
	h := func(perm func(http.Handler) http.Handler, class string, fn http.HandlerFunc) http.Handler {
		return perm(a.limit(class, fn))
	}
	const (
		exports, streams, downloads = ratelimit.Exports, ratelimit.Streams, ratelimit.Downloads
		schedules, reads            = ratelimit.Schedules, ratelimit.Reads
	)
	v1.Handle("", h(read, reads, a.listJobs)).Methods(http.MethodGet)
	v1.Handle("/ws", readWS(a.limit(reads, a.wsProxy()))).Methods(http.MethodGet)
	v1.Handle("/create", h(write, exports, a.createFromBody)).Methods(http.MethodPost)
	v1.Handle("/fields/{entity}", h(read, reads, a.fields)).Methods(http.MethodGet)
	v1.Handle("/stream/{format}/{entity}", h(read, streams, a.stream)).Methods(http.MethodGet)
	v1.Handle("/progress/{task_id}", h(read, reads, a.progress)).Methods(http.MethodGet)
	v1.Handle("/schedules", h(read, reads, a.listSchedules)).Methods(http.MethodGet)
	v1.Handle("/schedules", h(write, schedules, a.createSchedule)).Methods(http.MethodPost)
	v1.Handle("/schedules/preview", h(read, reads, a.previewSchedule)).Methods(http.MethodPost)
	v1.Handle("/schedules/{id}", h(read, reads, a.getSchedule)).Methods(http.MethodGet)
	v1.Handle("/schedules/{id}", h(write, schedules, a.updateSchedule)).Methods(http.MethodPut)
	v1.Handle("/schedules/{id}", h(write, schedules, a.deleteSchedule)).Methods(http.MethodDelete)
	v1.Handle("/schedules/{id}/toggle", h(write, schedules, a.toggleSchedule)).Methods(http.MethodPost)
	v1.Handle("/schedules/{id}/run", h(write, schedules, a.runSchedule)).Methods(http.MethodPost)
	v1.Handle("/schedules/{id}/next", h(read, reads, a.nextRuns)).Methods(http.MethodGet)
	v1.Handle("/schedules/{id}/runs", h(read, reads, a.scheduleRuns)).Methods(http.MethodGet)
	v1.Handle("/platforms", h(read, reads, a.listPlatforms)).Methods(http.MethodGet)
	v1.Handle("/platforms", h(write, schedules, a.createPlatform)).Methods(http.MethodPost)
	v1.Handle("/platforms/{id}", h(read, reads, a.getPlatform)).Methods(http.MethodGet)
	v1.Handle("/platforms/{id}", h(write, schedules, a.updatePlatform)).Methods(http.MethodPut)
	v1.Handle("/platforms/{id}", h(write, schedules, a.deletePlatform)).Methods(http.MethodDelete)
	v1.Handle("/platforms/{id}/test", h(write, schedules, a.testPlatform)).Methods(http.MethodPost)
	v1.Handle("/platforms/{id}/webhook-deliveries", h(read, reads, a.webhookDeliveries)).Methods(http.MethodGet)
	v1.Handle("/download/{task_id}", h(read, downloads, a.download)).Methods(http.MethodGet)
	v1.Handle("/audit", h(manage, reads, a.listAudit)).Methods(http.MethodGet)
	// Patterns. {format} matches formats only, so POST /{id}/cancel is never an export request
	// whatever the order routes are added in.
	v1.Handle("/{format:csv|excel|json}/{entity}", h(write, exports, a.createFromPath)).Methods(http.MethodPost)
	v1.Handle("/{id}", h(read, reads, a.getJob)).Methods(http.MethodGet)
	// Job ids only: DELETE /create stays a 405 rather than a search for a job named "create".
	v1.Handle("/{id:"+jobID+"}", h(write, exports, a.deleteJob)).Methods(http.MethodDelete)
	v1.Handle("/{id:"+jobID+"}/cancel", h(write, exports, a.cancelJob)).Methods(http.MethodPost)
	v1.Handle("/{id:"+jobID+"}/deliver", h(write, exports, a.retryDelivery)).Methods(http.MethodPost)

	ops := http.NewServeMux()
	server.Ops(ops, d.Registry, d.Checks, d.Log)
	r.Handle("/healthz", ops)
	r.Handle("/readyz", ops)
	r.Handle("/metrics", ops)
	r.Handle("/", http.HandlerFunc(index)).Methods(http.MethodGet, http.MethodHead)

	return a, r
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

// authError answers a refused token (401) or permission (403), and audits the refusal.
func (a *api) authError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	a.refused(r, events.Accessed{Action: events.ActionDenied, Status: status, Reason: code})
	server.WriteError(w, status, code, message, "")
}

// limit counts the request in class for its caller and answers 429 past the limit, with the
// X-RateLimit-* headers on every answer (CONTRACT §3). When the counter cannot be reached the
// request goes through: an outage of the limiter must not become an outage of the API.
func (a *api) limit(class string, next http.Handler) http.Handler {
	if a.Limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principal(r)
		d, err := a.Limiter.Take(r.Context(), p.Subject, class)
		if err != nil {
			a.Log.Warn("rate limiter unavailable; request let through", "class", class, "sub", p.Subject, "err", err)
			next.ServeHTTP(w, r)
			return
		}
		if d.Limit > 0 {
			h := w.Header()
			h.Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
			h.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(d.Reset.Unix(), 10))
		}
		if !d.Allowed {
			now := a.Now()
			w.Header().Set("Retry-After", strconv.Itoa(int(d.RetryAfter(now).Seconds())))
			a.metrics.rateLimited.WithLabelValues(class).Inc()
			a.refused(r, events.Accessed{Action: events.ActionRateLimited, Status: http.StatusTooManyRequests, Reason: class})
			a.Log.Info("rate limited", "class", class, "sub", p.Subject, "limit", d.Limit)
			server.WriteError(w, http.StatusTooManyRequests, "rate_limited",
				fmt.Sprintf("more than %d %s requests this minute; retry after %s", d.Limit, class, d.Reset.Format(time.RFC3339)), "")
			return
		}
		next.ServeHTTP(w, r)
	})
}
