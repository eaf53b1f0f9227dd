package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/logging"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb"
	"github.com/productsmanager/exportplatform/pkg/server"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
	"github.com/productsmanager/exportplatform/producer-api/internal/relay"
)

// Config is the producer-api's settings, from the environment.
type Config struct {
	Addr        string
	ExportsDB   string
	Brokers     []string
	JWTSecret   string
	HubURL      string
	S3          objectstore.MinioConfig
	MaxBodySize int64
	LogLevel    string
}

// LoadConfig reads the settings with their defaults.
func LoadConfig(getenv func(string) string) (Config, error) {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	c := Config{
		Addr:      env("API_ADDR", "127.0.0.1:8080"),
		ExportsDB: env("EXPORTS_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/exports?sslmode=disable"),
		Brokers:   eventbus.ParseBrokers(env("KAFKA_BROKERS", "127.0.0.1:9092")),
		JWTSecret: env("JWT_SECRET", "local-dev-secret"),
		HubURL:    env("HUB_URL", "http://127.0.0.1:8081"),
		S3: objectstore.MinioConfig{
			Endpoint: env("S3_ENDPOINT", "127.0.0.1:9000"), AccessKey: env("S3_ACCESS_KEY", "minioadmin"),
			SecretKey: env("S3_SECRET_KEY", "minioadmin"), Bucket: env("S3_BUCKET", "exports"),
			UseTLS: env("S3_USE_TLS", "false") == "true",
		},
		LogLevel: env("LOG_LEVEL", "info"),
	}
	var err error
	if c.MaxBodySize, err = strconv.ParseInt(env("API_MAX_BODY_BYTES", "1048576"), 10, 64); err != nil {
		return c, fmt.Errorf("API_MAX_BODY_BYTES: %w", err)
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
	if c.JWTSecret == "" {
		errs = append(errs, errors.New("JWT_SECRET is empty"))
	}
	if u, err := url.Parse(c.HubURL); err != nil || u.Host == "" {
		errs = append(errs, fmt.Errorf("HUB_URL %q is not a URL", c.HubURL))
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

	kcl, err := eventbus.NewClient(eventbus.Config{Brokers: cfg.Brokers, ClientID: "producer-api"}, log, reg)
	if err != nil {
		return err
	}
	defer kcl.Close()

	objects, err := objectstore.NewMinio(cfg.S3)
	if err != nil {
		return err
	}
	verifier, err := auth.NewHS256Verifier([]byte(cfg.JWTSecret))
	if err != nil {
		return err
	}
	hub, err := url.Parse(cfg.HubURL)
	if err != nil {
		return err
	}
	rl := relay.New(store, eventbus.NewPublisher(kcl, log), log.With("component", "relay"), reg)
	handler := api.NewServer(api.Deps{
		Jobs: store, Objects: objects, Verifier: verifier, Log: log.With("component", "api"),
		Registry: reg, HubURL: hub, MaxBodySize: cfg.MaxBodySize, Notify: rl.Notify,
		Checks: map[string]server.Check{
			"postgres": pgdb.Check(pool),
			"s3":       objects.Ping,
			// Kafka is not a readiness dependency: requests are accepted into the outbox while
			// it is away and relayed when it is back.
		},
	})
	srv := server.New(cfg.Addr, handler)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return server.Run(gctx, srv, log, 15*time.Second) })
	g.Go(func() error { return rl.Run(gctx) })
	err = g.Wait()
	log.Info("stopped", "err", err)
	return err
}
