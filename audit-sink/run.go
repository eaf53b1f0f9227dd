package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/productsmanager/exportplatform/audit-sink/internal/audit"
	"github.com/productsmanager/exportplatform/audit-sink/internal/store"
	"github.com/productsmanager/exportplatform/pkg/config"
	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/logging"
	"github.com/productsmanager/exportplatform/pkg/memlimit"
	"github.com/productsmanager/exportplatform/pkg/pgdb"
	"github.com/productsmanager/exportplatform/pkg/server"
)

// Config is the audit sink's settings, from the environment.
type Config struct {
	Addr        string   // AUDIT_ADDR
	AnalyticsDB string   // ANALYTICS_DATABASE_URL
	Brokers     []string // KAFKA_BROKERS, comma-separated
	Group       string   // AUDIT_GROUP
	Topics      []string // AUDIT_TOPICS, comma-separated: the topics audited
	LogLevel    string   // LOG_LEVEL
}

// Budgets of the lifecycle.
const (
	startTimeout  = 10 * time.Second // a dependency that does not answer by then fails the start
	shutdownGrace = 5 * time.Second  // in-flight HTTP requests
)

// LoadConfig reads the settings with their defaults and validates them.
func LoadConfig(getenv func(string) string) (Config, error) {
	env := config.New(getenv)
	c := Config{
		Addr:        env.String("AUDIT_ADDR", "127.0.0.1:8084"),
		AnalyticsDB: env.String("ANALYTICS_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/db_analytics?sslmode=disable"),
		Brokers:     env.List("KAFKA_BROKERS", "127.0.0.1:9092"),
		Group:       env.String("AUDIT_GROUP", "audit-sink"),
		Topics:      env.List("AUDIT_TOPICS", events.TopicRequested+","+events.TopicEvents),
		LogLevel:    env.String("LOG_LEVEL", "info"),
	}
	if err := env.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks the settings, naming every variable at fault.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("AUDIT_ADDR %q: %w", c.Addr, err))
	}
	if err := pgdb.ValidateURL(c.AnalyticsDB); err != nil {
		errs = append(errs, fmt.Errorf("ANALYTICS_DATABASE_URL: %w", err))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS is empty"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("AUDIT_GROUP is empty"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("AUDIT_TOPICS is empty"))
	}
	return errors.Join(errs...)
}

// LogValue is the config as logged: the database password redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("analytics_database_url", pgdb.RedactURL(c.AnalyticsDB)),
		slog.Any("brokers", c.Brokers),
		slog.String("group", c.Group),
		slog.Any("topics", c.Topics),
		slog.String("log_level", c.LogLevel),
	)
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := logging.New(stdout, cfg.LogLevel, "audit-sink")
	memlimit.Apply(getenv, log) // 90 % of the container's memory limit, unless GOMEMLIMIT is set
	log.Info("starting", "config", cfg)
	reg := server.NewRegistry()

	pool, err := pgdb.Open(ctx, cfg.AnalyticsDB, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := store.New(pool)
	mctx, cancel := context.WithTimeout(ctx, startTimeout)
	err = st.Migrate(mctx)
	cancel()
	if err != nil {
		return err
	}

	cl, err := eventbus.NewClient(eventbus.Config{Brokers: cfg.Brokers, ClientID: "audit-sink"}, log, reg,
		eventbus.ConsumerOpts(cfg.Group, cfg.Topics...)...)
	if err != nil {
		return err
	}
	closeKafka := sync.OnceFunc(func() { eventbus.CloseGroup(cl, 3*time.Second) })
	defer closeKafka()
	reg.MustRegister(eventbus.NewLagCollector(cl, cfg.Group)) // asked of Kafka at each scrape
	pctx, cancel := context.WithTimeout(ctx, startTimeout)
	err = cl.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("reaching kafka %v: %w", cfg.Brokers, err)
	}

	sink := audit.NewSink(st, audit.NewMetrics(reg))
	consumer := eventbus.NewConsumer(cl, log.With("component", "consumer"), handler(sink)).WithDeadLetter(cfg.Group)

	mux := http.NewServeMux()
	server.Ops(mux, reg, map[string]server.Check{
		"postgres_analytics": pgdb.Check(pool),
		"kafka":              eventbus.Ping(cl),
	}, log)
	srv := server.New(cfg.Addr, mux)

	// Shutdown: the listener and the poll loop stop together; the consumer commits what it
	// recorded, then the client leaves the group (partitions move at once), then the pool
	// closes (deferred).
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return server.Run(gctx, srv, log, shutdownGrace) })
	g.Go(func() error {
		err := consumer.Run(gctx)
		closeKafka()
		return err
	})
	log.Info("audit-sink started", "group", cfg.Group, "topics", cfg.Topics)
	err = g.Wait()
	log.Info("stopped", "err", err)
	return err
}

// handler adapts the sink to the consumer: an event that can never be recorded is skipped
// (and logged by the consumer) instead of retried forever.
func handler(sink *audit.Sink) eventbus.Handler {
	return func(ctx context.Context, env events.Envelope) error {
		err := sink.Handle(ctx, env)
		if errors.Is(err, audit.ErrMalformed) {
			return eventbus.Permanent(err)
		}
		return err
	}
}
