package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/productsmanager/exportplatform/pkg/config"
	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/logging"
	"github.com/productsmanager/exportplatform/pkg/pgdb"
	"github.com/productsmanager/exportplatform/pkg/server"
)

// Config is the scheduler's settings, from the environment.
type Config struct {
	Addr      string   // SCHEDULER_ADDR
	ExportsDB string   // EXPORTS_DATABASE_URL
	Brokers   []string // KAFKA_BROKERS, comma-separated
	LogLevel  string   // LOG_LEVEL
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
		Addr:      env.String("SCHEDULER_ADDR", "127.0.0.1:8083"),
		ExportsDB: env.String("EXPORTS_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/exports?sslmode=disable"),
		Brokers:   env.List("KAFKA_BROKERS", "127.0.0.1:9092"),
		LogLevel:  env.String("LOG_LEVEL", "info"),
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
	return errors.Join(errs...)
}

// LogValue is the config as logged: the database password redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("exports_database_url", pgdb.RedactURL(c.ExportsDB)),
		slog.Any("brokers", c.Brokers),
		slog.String("log_level", c.LogLevel),
	)
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := logging.New(stdout, cfg.LogLevel, "scheduler")
	log.Info("starting", "config", cfg)
	reg := server.NewRegistry()

	pool, err := pgdb.Open(ctx, cfg.ExportsDB, 4)
	if err != nil {
		return err
	}
	defer pool.Close()

	// The client that will publish the scheduled exports' requests; for now it is only pinged.
	kafka, err := eventbus.NewClient(eventbus.Config{Brokers: cfg.Brokers, ClientID: "scheduler"}, log, reg)
	if err != nil {
		return err
	}
	defer kafka.Close()
	pctx, cancel := context.WithTimeout(ctx, startTimeout)
	err = kafka.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("reaching kafka %v: %w", cfg.Brokers, err)
	}

	mux := http.NewServeMux()
	server.Ops(mux, reg, map[string]server.Check{
		"postgres_exports": pgdb.Check(pool),
		"kafka":            eventbus.Ping(kafka),
	})
	srv := server.New(cfg.Addr, mux)

	// The schedule loop joins this group in a later issue; the first part to fail stops all.
	// Shutdown: the listener first, then (deferred) the Kafka client, then the pool.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return server.Run(gctx, srv, log, shutdownGrace) })
	log.Info("scheduler started")
	err = g.Wait()
	log.Info("stopped", "err", err)
	return err
}
