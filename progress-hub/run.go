package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/config"
	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/logging"
	"github.com/productsmanager/exportplatform/pkg/memlimit"
	"github.com/productsmanager/exportplatform/pkg/pgdb"
	"github.com/productsmanager/exportplatform/pkg/refusals"
	"github.com/productsmanager/exportplatform/pkg/server"
	"github.com/productsmanager/exportplatform/progress-hub/internal/fold"
	"github.com/productsmanager/exportplatform/progress-hub/internal/ws"
)

// Config is the progress-hub's settings, from the environment.
type Config struct {
	Addr           string   // HUB_ADDR
	ExportsDB      string   // EXPORTS_DATABASE_URL
	Brokers        []string // KAFKA_BROKERS, comma-separated
	Auth           auth.Config
	AllowedOrigins []string // HUB_ALLOWED_ORIGINS, comma-separated; "*" allows any
	MaxConns       int      // HUB_MAX_CONNECTIONS: connections held at once
	MaxUserConns   int      // HUB_MAX_CONNECTIONS_PER_USER: connections one user holds at once
	// HUB_BROADCAST_LOOKBACK: how far before its start a replica begins reading every
	// partition for its own clients, so that no event produced around its start is missed.
	BroadcastLookback time.Duration
	Pprof             bool   // HUB_PPROF: serve /debug/pprof/ (profiling; off by default)
	LogLevel          string // LOG_LEVEL
	// Proxies (TRUSTED_PROXIES) are the peers whose X-Forwarded-For names the client: the
	// API, which proxies the WebSocket.
	Proxies server.Proxies
	// HUB_AUDIT_REFUSALS per client address and HUB_AUDIT_REFUSAL_WINDOW: refusals audited
	// one by one, the rest summarised (pkg/refusals).
	RefusalAudits int
	RefusalWindow time.Duration
}

// LoadConfig reads the settings with their defaults and validates them.
func LoadConfig(getenv func(string) string) (Config, error) {
	env := config.New(getenv)
	c := Config{
		Addr:         env.String("HUB_ADDR", "127.0.0.1:8081"),
		ExportsDB:    env.String("EXPORTS_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/exports?sslmode=disable"),
		Brokers:      env.List("KAFKA_BROKERS", "127.0.0.1:9092"),
		Auth:         auth.ConfigFrom(env),
		MaxConns:     env.Int("HUB_MAX_CONNECTIONS", 10000),
		MaxUserConns: env.Int("HUB_MAX_CONNECTIONS_PER_USER", 20),
		AllowedOrigins: env.List("HUB_ALLOWED_ORIGINS",
			"http://127.0.0.1:8080,http://localhost:8080,http://127.0.0.1:8081,http://localhost:8081"),
		BroadcastLookback: env.Duration("HUB_BROADCAST_LOOKBACK", 10*time.Second),
		Pprof:             env.Bool("HUB_PPROF", false),
		LogLevel:          env.String("LOG_LEVEL", "info"),
		RefusalAudits:     env.Int("HUB_AUDIT_REFUSALS", refusals.DefaultLimit),
		RefusalWindow:     env.Duration("HUB_AUDIT_REFUSAL_WINDOW", refusals.DefaultWindow),
	}
	proxies, perr := server.ParseProxies(env.String("TRUSTED_PROXIES", ""))
	c.Proxies = proxies
	if err := errors.Join(env.Err(), perr); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks the settings, naming every variable at fault.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("HUB_ADDR %q is not host:port", c.Addr))
	}
	if err := pgdb.ValidateURL(c.ExportsDB); err != nil {
		errs = append(errs, fmt.Errorf("EXPORTS_DATABASE_URL: %w", err))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS is empty"))
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if _, err := ws.NormalizeOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("HUB_ALLOWED_ORIGINS: %w", err))
		}
	}
	if c.MaxConns < 1 || c.MaxUserConns < 1 {
		errs = append(errs, errors.New("HUB_MAX_CONNECTIONS and HUB_MAX_CONNECTIONS_PER_USER must be at least 1"))
	}
	if c.BroadcastLookback < 0 {
		errs = append(errs, fmt.Errorf("HUB_BROADCAST_LOOKBACK %s is negative", c.BroadcastLookback))
	}
	return errors.Join(errs...)
}

// LogValue keeps secrets out of logs: the JWT secret is never shown, the database password is
// masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("exports_database_url", pgdb.RedactURL(c.ExportsDB)),
		slog.String("kafka_brokers", strings.Join(c.Brokers, ",")),
		slog.Any("auth", c.Auth),
		slog.String("allowed_origins", strings.Join(c.AllowedOrigins, ",")),
		slog.Duration("broadcast_lookback", c.BroadcastLookback),
		slog.Bool("pprof", c.Pprof),
		slog.String("log_level", c.LogLevel),
	)
}

// Budgets of the shutdown steps.
const (
	httpGrace = 10 * time.Second
	wsGrace   = 5 * time.Second
)

// run wires the hub and serves until ctx is cancelled.
//
// One Kafka client, group-less, reads every partition of the job topics from just before this
// replica started and pushes the state each event carries to this replica's clients (every
// replica sees every event). The hub writes nothing: a job's state is decided and saved by its
// one writer (pkg/jobstore), which puts it in the event. The database serves snapshots only.
//
// Shutdown order: the listener stops and the hub closes every WebSocket with 1001 going away
// (srv.RegisterOnShutdown), then the Kafka client and the pool close (deferred, in reverse
// order of opening).
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	started := time.Now()
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := logging.New(stdout, cfg.LogLevel, "progress-hub")
	memlimit.Apply(getenv, log) // 90 % of the container's memory limit, unless GOMEMLIMIT is set
	log.Info("starting", "config", cfg)
	if soft, hard, err := raiseNoFile(); err != nil {
		log.Warn("raising the open file limit", "err", err)
	} else {
		log.Info("open file limit", "soft", soft, "hard", hard)
	}
	reg := server.NewRegistry()

	pool, err := pgdb.Open(ctx, cfg.ExportsDB, 10)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := jobstore.Migrate(ctx, pool); err != nil {
		return err
	}
	store := jobstore.New(pool)

	bcl, err := eventbus.NewClient(eventbus.Config{Brokers: cfg.Brokers, ClientID: "progress-hub-broadcast"},
		log, reg, eventbus.BroadcastOpts(started.Add(-cfg.BroadcastLookback), events.TopicEvents, events.TopicRequested)...)
	if err != nil {
		return err
	}
	defer bcl.Close()

	verifier, err := auth.NewVerifier(ctx, cfg.Auth, log.With("component", "auth"))
	if err != nil {
		return fmt.Errorf("token verifier: %w", err)
	}
	metrics := ws.NewMetrics(reg)
	metrics.SetMaxClients(cfg.MaxConns) // the limit the alerts compare the clients with
	hub := ws.NewHub(log.With("component", "hub"), metrics)
	refused := refusals.New(store, log.With("component", "refusals"), refusals.Options{Limit: cfg.RefusalAudits, Window: cfg.RefusalWindow})
	wsSrv, err := ws.NewServer(hub, store, verifier, log.With("component", "ws"), metrics,
		ws.Options{AllowedOrigins: cfg.AllowedOrigins, MaxConns: cfg.MaxConns, MaxUserConns: cfg.MaxUserConns,
			Refusals: refused, Proxies: cfg.Proxies})
	if err != nil {
		return err
	}
	handler := fold.New(store, hub, log.With("component", "fold"), reg)
	broadcast := eventbus.NewConsumer(bcl, log.With("component", "consumer", "consumer", "broadcast"), handler.Handle)

	srv := server.New(cfg.Addr, server.Traced("progress-hub", routes(wsSrv, reg, cfg.Pprof, map[string]server.Check{
		"postgres": pgdb.Check(pool),
		"kafka":    eventbus.Ping(bcl),
	}, log)))
	// Server.Shutdown does not close hijacked connections: the hub does.
	srv.RegisterOnShutdown(hub.Shutdown)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return hub.Run(gctx) })
	g.Go(func() error { return refused.Run(gctx) })
	g.Go(func() error { return server.Run(gctx, srv, log.With("component", "http"), httpGrace) })
	g.Go(func() error {
		if err := broadcast.Run(gctx); err != nil {
			return fmt.Errorf("reading job events: %w", err)
		}
		return nil
	})
	err = g.Wait()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wsGrace)
	defer cancel()
	if werr := wsSrv.Wait(wctx); werr != nil {
		log.Warn("websockets still open at exit", "err", werr)
	}
	log.Info("stopped", "err", err)
	return err
}

// raiseNoFile lifts the soft limit of open files to the hard one: each WebSocket client holds a
// socket, and the usual soft limit (1024) would refuse clients long before memory runs out.
func raiseNoFile() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, 0, fmt.Errorf("setrlimit %d: %w", lim.Max, err)
		}
	}
	return lim.Cur, lim.Max, nil
}

// routes maps the hub's HTTP surface: the WebSocket (and its /ws alias), the ops endpoints,
// /debug/pprof/ when asked for, and JSON 404s for the rest.
func routes(wsSrv http.Handler, reg *prometheus.Registry, withPprof bool, checks map[string]server.Check, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	server.Ops(mux, reg, checks, log)
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	// No method in the pattern: the WebSocket handler answers other methods with a JSON 405.
	mux.Handle("/api/v1/exports/ws", wsSrv)
	mux.Handle("/ws", wsSrv)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		server.WriteError(w, http.StatusNotFound, "not_found", "no route for "+r.Method+" "+r.URL.Path, "")
	})
	return mux
}
