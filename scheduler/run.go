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

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/productsmanager/exportplatform/pkg/config"
	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/logging"
	"github.com/productsmanager/exportplatform/pkg/memlimit"
	"github.com/productsmanager/exportplatform/pkg/pgdb"
	"github.com/productsmanager/exportplatform/pkg/relay"
	"github.com/productsmanager/exportplatform/pkg/schedstore"
	"github.com/productsmanager/exportplatform/pkg/server"
	"github.com/productsmanager/exportplatform/scheduler/internal/firing"
	"github.com/productsmanager/exportplatform/scheduler/internal/outcomes"
)

// Config is the scheduler's settings, from the environment.
type Config struct {
	Addr      string   // SCHEDULER_ADDR
	ExportsDB string   // EXPORTS_DATABASE_URL
	Brokers   []string // KAFKA_BROKERS, comma-separated
	LogLevel  string   // LOG_LEVEL
	// Group is the consumer group that folds the jobs' events into the run log (SCHEDULER_GROUP).
	Group string
	// CatchUpWindow: missed fire times older than this are neither run nor logged one by one
	// (SCHEDULER_CATCHUP_WINDOW).
	CatchUpWindow time.Duration
	// MisfireGrace: a fire time found later than this counts as missed (SCHEDULER_MISFIRE_GRACE).
	MisfireGrace time.Duration
	// Poll is the longest sleep between two decisions (SCHEDULER_POLL).
	Poll time.Duration
	// Workers is how many decisions the scheduler makes at once (SCHEDULER_WORKERS): 200
	// schedules due the same minute fire sooner when several transactions run together.
	Workers int
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
		Addr:          env.String("SCHEDULER_ADDR", "127.0.0.1:8083"),
		ExportsDB:     env.String("EXPORTS_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/exports?sslmode=disable"),
		Brokers:       env.List("KAFKA_BROKERS", "127.0.0.1:9092"),
		LogLevel:      env.String("LOG_LEVEL", "info"),
		Group:         env.String("SCHEDULER_GROUP", "scheduler"),
		CatchUpWindow: env.Duration("SCHEDULER_CATCHUP_WINDOW", 24*time.Hour),
		MisfireGrace:  env.Duration("SCHEDULER_MISFIRE_GRACE", 10*time.Second),
		Poll:          env.Duration("SCHEDULER_POLL", 500*time.Millisecond),
		Workers:       env.Int("SCHEDULER_WORKERS", 4),
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
		errs = append(errs, fmt.Errorf("SCHEDULER_ADDR %q: %w", c.Addr, err))
	}
	if err := pgdb.ValidateURL(c.ExportsDB); err != nil {
		errs = append(errs, fmt.Errorf("EXPORTS_DATABASE_URL: %w", err))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS is empty"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("SCHEDULER_GROUP is empty"))
	}
	if c.CatchUpWindow <= 0 {
		errs = append(errs, fmt.Errorf("SCHEDULER_CATCHUP_WINDOW %s: must be positive", c.CatchUpWindow))
	}
	if c.MisfireGrace <= 0 || c.MisfireGrace > c.CatchUpWindow {
		errs = append(errs, fmt.Errorf("SCHEDULER_MISFIRE_GRACE %s: must be positive and within the catch-up window", c.MisfireGrace))
	}
	if c.Workers < 1 || c.Workers > 64 {
		errs = append(errs, fmt.Errorf("SCHEDULER_WORKERS %d: must be from 1 to 64", c.Workers))
	}
	if c.Poll < 10*time.Millisecond || c.Poll > time.Minute {
		errs = append(errs, fmt.Errorf("SCHEDULER_POLL %s: must be from 10ms to 1m", c.Poll))
	}
	return errors.Join(errs...)
}

// LogValue is the config as logged: the database password redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("exports_database_url", pgdb.RedactURL(c.ExportsDB)),
		slog.Any("brokers", c.Brokers),
		slog.String("log_level", c.LogLevel),
		slog.String("group", c.Group),
		slog.String("catchup_window", c.CatchUpWindow.String()),
		slog.String("misfire_grace", c.MisfireGrace.String()),
		slog.String("poll", c.Poll.String()),
		slog.Int("workers", c.Workers),
	)
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := logging.New(stdout, cfg.LogLevel, "scheduler")
	memlimit.Apply(getenv, log) // 90 % of the container's memory limit, unless GOMEMLIMIT is set
	log.Info("starting", "config", cfg)
	reg := server.NewRegistry()

	pool, err := pgdb.Open(ctx, cfg.ExportsDB, int32(cfg.Workers+4))
	if err != nil {
		return err
	}
	defer pool.Close()
	mctx, cancel := context.WithTimeout(ctx, startTimeout)
	err = jobstore.Migrate(mctx, pool)
	cancel()
	if err != nil {
		return err
	}
	store := schedstore.New(pool)

	// The scheduler writes its jobs' requests to the outbox, relayed by whichever of the
	// platform's relays (this one included) holds the relay lock; its other Kafka client
	// consumes the jobs' events, in its own group.
	producer, err := eventbus.NewClient(eventbus.Config{Brokers: cfg.Brokers, ClientID: "scheduler-relay"}, log, nil)
	if err != nil {
		return err
	}
	defer producer.Close()
	rl := relay.New(jobstore.New(pool), eventbus.NewPublisher(producer, log), log.With("component", "relay"), reg)
	kafka, err := eventbus.NewClient(eventbus.Config{Brokers: cfg.Brokers, ClientID: "scheduler"}, log, reg,
		eventbus.ConsumerOpts(cfg.Group, events.TopicEvents)...)
	if err != nil {
		return err
	}
	closeKafka := sync.OnceFunc(func() { eventbus.CloseGroup(kafka, 3*time.Second) })
	defer closeKafka()
	reg.MustRegister(eventbus.NewLagCollector(producer, cfg.Group)) // asked of Kafka at each scrape
	pctx, cancel := context.WithTimeout(ctx, startTimeout)
	err = kafka.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("reaching kafka %v: %w", cfg.Brokers, err)
	}
	newID := func() (string, error) {
		id, err := uuid.NewV7()
		return id.String(), err
	}
	loop := firing.New(store, firing.Config{Grace: cfg.MisfireGrace, Window: cfg.CatchUpWindow, Poll: cfg.Poll, Workers: cfg.Workers},
		time.Now, newID, log.With("component", "firing"), firing.NewMetrics(reg))
	consumer := eventbus.NewConsumer(kafka, log.With("component", "outcomes"),
		outcomes.Handler(store, time.Now, log.With("component", "outcomes"), reg)).WithDeadLetter(cfg.Group)

	mux := http.NewServeMux()
	server.Ops(mux, reg, map[string]server.Check{
		"postgres_exports": pgdb.Check(pool),
		"kafka":            eventbus.Ping(kafka),
	}, log)
	srv := server.New(cfg.Addr, mux)

	// The first part to fail stops all. Shutdown: the listener, the firing loop (between two
	// decisions: a decision is one transaction, committed or rolled back whole) and the
	// consumer stop together; the consumer commits what it folded and leaves the group, then
	// the pool closes (deferred).
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return server.Run(gctx, srv, log, shutdownGrace) })
	g.Go(func() error { return loop.Run(gctx) })
	g.Go(func() error { return rl.Run(gctx) })
	g.Go(func() error {
		err := consumer.Run(gctx)
		closeKafka()
		return err
	})
	log.Info("scheduler started", "group", cfg.Group)
	err = g.Wait()
	log.Info("stopped", "err", err)
	return err
}
