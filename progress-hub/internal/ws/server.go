package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/google/uuid"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/refusals"
	"github.com/productsmanager/exportplatform/pkg/server"
)

// Jobs reads jobs for snapshots; *jobstore.Store implements it.
type Jobs interface {
	Get(ctx context.Context, id string) (jobstore.Job, error)
	List(ctx context.Context, f jobstore.ListFilter) ([]jobstore.Job, string, error)
}

// Verifier checks bearer tokens; *auth.Verifier implements it.
type Verifier interface {
	Verify(token string) (auth.Principal, error)
}

// Options tune the connections; zero values take the defaults.
type Options struct {
	// AllowedOrigins are the browser origins ("http://127.0.0.1:8080") allowed to connect;
	// "*" allows any. A request without an Origin header (not a browser) is always allowed.
	AllowedOrigins []string
	SendBuffer     int           // messages queued per client before it is dropped; 256
	ReadLimit      int64         // largest client message in bytes; 64 KiB
	PingInterval   time.Duration // between server pings; 25 s
	PongWait       time.Duration // silence after which a client is gone; 60 s
	WriteWait      time.Duration // budget of one write; 10 s
	ReadTimeout    time.Duration // budget of one snapshot read from the database; 5 s
	MaxSubscribed  int           // task ids one connection may follow; 1000
	MaxIDs         int           // task ids in one message; 100
	AllSnapshots   int           // jobs in the snapshot of {"all": true}; 50
	MaxConns       int           // connections this hub holds at once; 10000
	MaxUserConns   int           // connections one user holds at once on this hub; 20
	// Refusals audits refused connections and subscriptions (bad token, missing permission,
	// origin, the per-user cap, another user's job), a bounded number per client; nil: none.
	Refusals *refusals.Gate
	// Proxies are the peers whose X-Forwarded-For names the client (the API, proxying).
	Proxies server.Proxies
}

func (o *Options) defaults() {
	set := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	setInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setInt(&o.SendBuffer, 256)
	if o.ReadLimit <= 0 {
		o.ReadLimit = 64 << 10
	}
	set(&o.PingInterval, 25*time.Second)
	set(&o.PongWait, 60*time.Second)
	set(&o.WriteWait, 10*time.Second)
	set(&o.ReadTimeout, 5*time.Second)
	setInt(&o.MaxSubscribed, 1000)
	setInt(&o.MaxIDs, 100)
	setInt(&o.AllSnapshots, 50)
	setInt(&o.MaxConns, 10000)
	setInt(&o.MaxUserConns, 20)
}

// Server is the WebSocket endpoint: an http.Handler for GET /api/v1/exports/ws.
type Server struct {
	hub      *Hub
	jobs     Jobs
	verifier Verifier
	log      *slog.Logger
	m        *Metrics
	opts     Options
	upgrader websocket.Upgrader

	anyOrigin bool
	origins   map[string]struct{}

	listMu   sync.Mutex
	listings map[string]*listings // by owner ("": everyone's), the reads of the recent jobs, see recentJobs

	nextID atomic.Uint64
	mu     sync.Mutex
	closed bool
	conns  sync.WaitGroup
	open   int            // connections held, under mu
	byUser map[string]int // connections held per subject, under mu
}

// NewServer builds the endpoint. It rejects an allowed origin that is not a URL.
func NewServer(hub *Hub, jobs Jobs, verifier Verifier, log *slog.Logger, m *Metrics, opts Options) (*Server, error) {
	opts.defaults()
	s := &Server{hub: hub, jobs: jobs, verifier: verifier, log: log, m: m, opts: opts, origins: map[string]struct{}{},
		listings: map[string]*listings{}, byUser: map[string]int{}}
	for _, o := range opts.AllowedOrigins {
		if o == "*" {
			s.anyOrigin = true
			continue
		}
		n, err := NormalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		s.origins[n] = struct{}{}
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// Memory per connection, which bounds how many clients a hub holds: clients send a few
		// small messages, so 1 KiB of read buffer (a longer message is read in several calls;
		// SetReadLimit bounds it); writing borrows a buffer from a pool for the time of one
		// message, so an idle connection holds no write buffer. No compression.
		ReadBufferSize:    1024,
		WriteBufferSize:   4096,
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: false,
		// Checked before upgrading (so the refusal is JSON); checked again here in case the
		// handler's order ever changes.
		CheckOrigin: s.originAllowed,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			server.WriteError(w, status, "bad_handshake", reason.Error(), "")
		},
	}
	return s, nil
}

// NormalizeOrigin returns origin as browsers send it: lower-case scheme://host[:port].
func NormalizeOrigin(origin string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(origin))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("origin %q is not scheme://host[:port]", origin)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || s.anyOrigin {
		return true
	}
	n, err := NormalizeOrigin(origin)
	if err != nil {
		return false
	}
	_, ok := s.origins[n]
	return ok
}

// ServeHTTP checks the method, the Origin, the token and READ_EXPORTS, answering refusals with
// the JSON error shape before any upgrade, then serves the connection until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		s.refuse(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET with a WebSocket upgrade", "method")
		return
	}
	who := visitor{client: s.opts.Proxies.ClientIP(r), agent: r.UserAgent()}
	if len(who.agent) > 256 {
		who.agent = who.agent[:256]
	}
	if !s.originAllowed(r) {
		s.audit(who, auth.Principal{}, events.Accessed{Action: events.ActionDenied, Status: http.StatusForbidden, Reason: "origin_not_allowed"})
		s.refuse(w, http.StatusForbidden, "origin_not_allowed", "origin "+r.Header.Get("Origin")+" is not allowed", "origin")
		return
	}
	p, err := s.authenticate(r)
	if err != nil {
		s.audit(who, auth.Principal{}, events.Accessed{Action: events.ActionDenied, Status: http.StatusUnauthorized, Reason: auth.CodeUnauthenticated})
		challenge, msg := `Bearer realm="exports"`, "missing bearer token"
		if !errors.Is(err, auth.ErrMissingToken) {
			challenge += `, error="invalid_token"`
			msg = auth.MsgInvalidToken
			s.log.Info("token refused", "err", err)
		}
		w.Header().Set("WWW-Authenticate", challenge)
		s.refuse(w, http.StatusUnauthorized, auth.CodeUnauthenticated, msg, "unauthenticated")
		return
	}
	if !p.Has(auth.PermReadExports) {
		s.audit(who, p, events.Accessed{Action: events.ActionDenied, Status: http.StatusForbidden, Reason: auth.CodePermissionDenied})
		w.Header().Set("WWW-Authenticate", `Bearer realm="exports", error="insufficient_scope"`)
		s.refuse(w, http.StatusForbidden, auth.CodePermissionDenied, "missing permission "+auth.PermReadExports, "permission_denied")
		return
	}
	switch s.track(p.Subject) {
	case trackClosed:
		s.refuse(w, http.StatusServiceUnavailable, codeUnavailable, "server shutting down", "shutting_down")
		return
	case trackFull:
		w.Header().Set("Retry-After", "5")
		s.refuse(w, http.StatusServiceUnavailable, codeUnavailable,
			fmt.Sprintf("this hub holds its %d connections; retry shortly", s.opts.MaxConns), "too_many_connections")
		return
	case trackUserFull:
		s.audit(who, p, events.Accessed{Action: events.ActionRateLimited, Status: http.StatusTooManyRequests, Reason: "too_many_connections"})
		w.Header().Set("Retry-After", "5")
		s.refuse(w, http.StatusTooManyRequests, "too_many_connections",
			fmt.Sprintf("you already hold %d connections to this hub; close one (one connection follows every job)", s.opts.MaxUserConns),
			"too_many_user_connections")
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.untrack(p.Subject)
		s.m.rejected.WithLabelValues("bad_handshake").Inc()
		s.log.Debug("upgrade failed", "err", err)
		return // the upgrader answered
	}
	// The connection is served by a goroutine of its own, and this handler returns: the HTTP
	// server's goroutine would otherwise stay parked for the connection's whole life, holding
	// its deep stack and its 4 KiB response buffer (thousands of idle clients make that count).
	// The request's context ends when the handler returns, hence WithoutCancel; the hub's
	// shutdown is what ends connections.
	ctx := context.WithoutCancel(r.Context())
	go func() {
		defer s.untrack(p.Subject)
		s.serve(ctx, conn, p, who)
	}()
}

// visitor is where a connection comes from, for the audit.
type visitor struct{ client, agent string }

// audit records a refusal through the refusal gate (a bounded number per client).
func (s *Server) audit(who visitor, p auth.Principal, ev events.Accessed) {
	if s.opts.Refusals == nil {
		return
	}
	ev.ID, ev.At = uuid.NewString(), time.Now().UTC()
	ev.ActorID, ev.ActorName, ev.Manager = p.Subject, p.Name, p.Manager()
	ev.ClientIP, ev.UserAgent = who.client, who.agent
	if ev.ResourceID == "" {
		ev.ResourceType, ev.ResourceID = "api", "/api/v1/exports/ws"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.opts.Refusals.Refused(ctx, ev)
}

func (s *Server) refuse(w http.ResponseWriter, status int, code, msg, reason string) {
	s.m.rejected.WithLabelValues(reason).Inc()
	server.WriteError(w, status, code, msg, "")
}

func (s *Server) authenticate(r *http.Request) (auth.Principal, error) {
	token, err := auth.TokenFromRequest(r, true)
	if err != nil {
		return auth.Principal{}, err
	}
	return s.verifier.Verify(token)
}

type trackResult int

const (
	tracked trackResult = iota
	trackClosed
	trackFull
	trackUserFull
)

// track counts a connection of subject about to be upgraded, within the caps.
func (s *Server) track(subject string) trackResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return trackClosed
	case s.open >= s.opts.MaxConns:
		return trackFull
	case s.byUser[subject] >= s.opts.MaxUserConns:
		return trackUserFull
	}
	s.open++
	s.byUser[subject]++
	s.conns.Add(1)
	return tracked
}

func (s *Server) untrack(subject string) {
	s.mu.Lock()
	s.open--
	if s.byUser[subject]--; s.byUser[subject] <= 0 {
		delete(s.byUser, subject)
	}
	s.mu.Unlock()
	s.conns.Done()
}

// Wait refuses new connections and waits until every connection's goroutines have ended (the
// hub closes them on shutdown), or ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for websocket connections: %w", ctx.Err())
	}
}
