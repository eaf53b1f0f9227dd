package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/config"
	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/logging"
	"github.com/productsmanager/exportplatform/pkg/memlimit"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb"
	"github.com/productsmanager/exportplatform/pkg/platformstore"
	"github.com/productsmanager/exportplatform/pkg/refusals"
	"github.com/productsmanager/exportplatform/pkg/relay"
	"github.com/productsmanager/exportplatform/pkg/schedstore"
	"github.com/productsmanager/exportplatform/pkg/server"
	"github.com/productsmanager/exportplatform/pkg/webhook"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
	"github.com/productsmanager/exportplatform/producer-api/internal/auditlog"
	"github.com/productsmanager/exportplatform/producer-api/internal/jobmetrics"
	"github.com/productsmanager/exportplatform/producer-api/internal/ratelimit"
	"github.com/productsmanager/exportplatform/producer-api/internal/retention"
)

// Config is the producer-api's settings, from the environment.
type Config struct {
	Addr        string
	ExportsDB   string
	CatalogDB   string // read by the stream endpoints
	AnalyticsDB string // audit_logs, read by GET /audit
	MaxStreams  int
	Brokers     []string
	Auth        auth.Config
	HubURL      string
	S3          objectstore.MinioConfig
	MaxBodySize int64
	LogLevel    string
	// SweepEvery is how often expired files and those of deleted jobs are removed.
	SweepEvery time.Duration
	// RateLimits are each user's requests per minute by class (ratelimit), shared by replicas.
	RateLimits map[string]int
	// MaxActiveJobs bounds a user's queued and running jobs (API_MAX_ACTIVE_JOBS_PER_USER).
	MaxActiveJobs int
	// StreamsPerUser bounds one user's streams at once across replicas (API_STREAMS_PER_USER).
	StreamsPerUser int
	// MinClientRate (API_MIN_CLIENT_RATE, bytes/s) over ClientRateWindow (API_CLIENT_RATE_WINDOW)
	// is the slowest a stream or download may be taken before it is cut.
	MinClientRate    int
	ClientRateWindow time.Duration
	// Proxies (TRUSTED_PROXIES) are the peers whose X-Forwarded-For names the client.
	Proxies server.Proxies
	// Refusals tune the audit of refused requests: RefusalAudits (API_AUDIT_REFUSALS) per
	// client address and RefusalWindow (API_AUDIT_REFUSAL_WINDOW) one by one, then a summary.
	RefusalAudits int
	RefusalWindow time.Duration
}

// LoadConfig reads the settings with their defaults.
func LoadConfig(getenv func(string) string) (Config, error) {
	env := config.New(getenv)
	c := Config{
		Addr:        env.String("API_ADDR", "127.0.0.1:8080"),
		ExportsDB:   env.String("EXPORTS_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/exports?sslmode=disable"),
		CatalogDB:   env.String("CATALOG_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/products_manager?sslmode=disable"),
		AnalyticsDB: env.String("ANALYTICS_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/db_analytics?sslmode=disable"),
		Brokers:     env.List("KAFKA_BROKERS", "127.0.0.1:9092"),
		Auth:        auth.ConfigFrom(env),
		HubURL:      env.String("HUB_URL", "http://127.0.0.1:8081"),
		S3: objectstore.MinioConfig{
			Endpoint: env.String("S3_ENDPOINT", "127.0.0.1:9000"), AccessKey: env.String("S3_ACCESS_KEY", "minioadmin"),
			SecretKey: env.String("S3_SECRET_KEY", "minioadmin"), Bucket: env.String("S3_BUCKET", "exports"),
			UseTLS: env.Bool("S3_USE_TLS", false),
		},
		MaxBodySize: int64(env.Int("API_MAX_BODY_BYTES", 1<<20)),
		// Each stream holds a catalog connection for its whole length.
		MaxStreams: env.Int("API_MAX_STREAMS", 8),
		LogLevel:   env.String("LOG_LEVEL", "info"),
		SweepEvery: env.Duration("EXPORT_SWEEP_INTERVAL", time.Minute),
		RateLimits: map[string]int{
			ratelimit.Exports:   env.Int("API_RATE_EXPORTS", 50),
			ratelimit.Streams:   env.Int("API_RATE_STREAMS", 50),
			ratelimit.Downloads: env.Int("API_RATE_DOWNLOADS", 50),
			ratelimit.Schedules: env.Int("API_RATE_SCHEDULES", 50),
			ratelimit.Reads:     env.Int("API_RATE_READS", 1000),
		},
		MaxActiveJobs:    env.Int("API_MAX_ACTIVE_JOBS_PER_USER", 10),
		StreamsPerUser:   env.Int("API_STREAMS_PER_USER", 2),
		MinClientRate:    env.Int("API_MIN_CLIENT_RATE", 16<<10),
		ClientRateWindow: env.Duration("API_CLIENT_RATE_WINDOW", 30*time.Second),
		RefusalAudits:    env.Int("API_AUDIT_REFUSALS", refusals.DefaultLimit),
		RefusalWindow:    env.Duration("API_AUDIT_REFUSAL_WINDOW", refusals.DefaultWindow),
	}
	proxies, perr := server.ParseProxies(env.String("TRUSTED_PROXIES", ""))
	c.Proxies = proxies
	if err := errors.Join(env.Err(), perr); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks the settings.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("API_ADDR is empty"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS is empty"))
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := pgdb.ValidateURL(c.ExportsDB); err != nil {
		errs = append(errs, fmt.Errorf("EXPORTS_DATABASE_URL: %w", err))
	}
	if err := pgdb.ValidateURL(c.CatalogDB); err != nil {
		errs = append(errs, fmt.Errorf("CATALOG_DATABASE_URL: %w", err))
	}
	if err := pgdb.ValidateURL(c.AnalyticsDB); err != nil {
		errs = append(errs, fmt.Errorf("ANALYTICS_DATABASE_URL: %w", err))
	}
	if c.MaxStreams < 1 || c.MaxStreams > 256 {
		errs = append(errs, errors.New("API_MAX_STREAMS must be 1..256"))
	}
	if u, err := url.Parse(c.HubURL); err != nil || u.Host == "" {
		errs = append(errs, fmt.Errorf("HUB_URL %q is not a URL", c.HubURL))
	}
	if c.SweepEvery < time.Second {
		errs = append(errs, errors.New("EXPORT_SWEEP_INTERVAL must be at least 1s"))
	}
	for class, n := range c.RateLimits {
		if n < 0 {
			errs = append(errs, fmt.Errorf("API_RATE_%s must be 0 (no limit) or more", strings.ToUpper(class)))
		}
	}
	if c.StreamsPerUser < 0 || c.MinClientRate < 0 {
		errs = append(errs, errors.New("API_STREAMS_PER_USER and API_MIN_CLIENT_RATE must be 0 (no limit) or more"))
	}
	if c.ClientRateWindow < time.Second {
		errs = append(errs, errors.New("API_CLIENT_RATE_WINDOW must be at least 1s"))
	}
	if c.MaxActiveJobs < 0 {
		errs = append(errs, errors.New("API_MAX_ACTIVE_JOBS_PER_USER must be 0 (no limit) or more"))
	}
	if c.MaxBodySize < 1024 {
		errs = append(errs, errors.New("API_MAX_BODY_BYTES must be at least 1024"))
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := logging.New(stdout, cfg.LogLevel, "producer-api")
	memlimit.Apply(getenv, log) // 90 % of the container's memory limit, unless GOMEMLIMIT is set
	reg := server.NewRegistry()

	pool, err := pgdb.Open(ctx, cfg.ExportsDB, 20)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := jobstore.Migrate(ctx, pool); err != nil {
		return err
	}
	store := jobstore.New(pool)
	// The queue's state (jobs by status, oldest, lapsed leases): producer-api owns the jobs.
	reg.MustRegister(jobmetrics.New(store))
	// The catalog serves only the streams: jobs are created without it, so it is opened lazily
	// and left out of readiness (a stream answers 503 catalog_unavailable while it is down).
	// Two connections per stream (its rows, and its relations fetched a batch ahead).
	catalogPool, err := pgdb.OpenLazy(cfg.CatalogDB, int32(2*cfg.MaxStreams+1))
	if err != nil {
		return err
	}
	defer catalogPool.Close()
	// The audit is read only by GET /audit: opened lazily, out of readiness.
	analyticsPool, err := pgdb.OpenLazy(cfg.AnalyticsDB, 4)
	if err != nil {
		return err
	}
	defer analyticsPool.Close()

	kcl, err := eventbus.NewClient(eventbus.Config{Brokers: cfg.Brokers, ClientID: "producer-api"}, log, reg)
	if err != nil {
		return err
	}
	defer kcl.Close()

	objects, err := objectstore.NewMinio(cfg.S3)
	if err != nil {
		return err
	}
	verifier, err := auth.NewVerifier(ctx, cfg.Auth, log.With("component", "auth"))
	if err != nil {
		return err
	}
	hub, err := url.Parse(cfg.HubURL)
	if err != nil {
		return err
	}
	limiter := ratelimit.New(pool, cfg.RateLimits)
	rl := relay.New(store, eventbus.NewPublisher(kcl, log), log.With("component", "relay"), reg)
	refused := refusals.New(store, log.With("component", "refusals"), refusals.Options{Limit: cfg.RefusalAudits, Window: cfg.RefusalWindow})
	handler := api.NewServer(api.Deps{
		Jobs: store, Auditor: store, Refusals: refused, Proxies: cfg.Proxies, AuditLog: auditlog.New(analyticsPool), Objects: objects, Verifier: verifier, Log: log.With("component", "api"),
		Registry: reg, HubURL: hub, MaxBodySize: cfg.MaxBodySize, Notify: rl.Notify,
		Catalog: catalogPool, MaxStreams: cfg.MaxStreams, Schedules: schedstore.New(pool), Platforms: platformstore.New(pool), Webhooks: webhook.NewStore(pool),
		Limiter: limiter, MaxActiveJobs: cfg.MaxActiveJobs, UserStreams: ratelimit.NewSlots(pool, cfg.StreamsPerUser),
		MinClientRate: int64(cfg.MinClientRate), ClientRateWindow: cfg.ClientRateWindow,
		Checks: map[string]server.Check{
			"postgres": pgdb.Check(pool),
			"s3":       objects.Ping,
			// Kafka is not a readiness dependency: requests are accepted into the outbox while
			// it is away and relayed when it is back.
		},
	})
	srv := server.New(cfg.Addr, server.Traced("producer-api", handler))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return server.Run(gctx, srv, log, 15*time.Second) })
	g.Go(func() error { return rl.Run(gctx) })
	g.Go(func() error { return refused.Run(gctx) })
	g.Go(func() error {
		limiter.Run(gctx, time.Minute, func(err error) { log.Warn("sweeping rate limit windows failed", "err", err) })
		return nil
	})
	sweeper := retention.New(retention.Config{Every: cfg.SweepEvery}, store, objects, log.With("component", "retention"), reg)
	g.Go(func() error { return sweeper.Run(gctx) })
	err = g.Wait()
	log.Info("stopped", "err", err)
	return err
}
