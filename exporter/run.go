package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/productsmanager/exportplatform/exporter/internal/delivery"
	"github.com/productsmanager/exportplatform/exporter/internal/intake"
	"github.com/productsmanager/exportplatform/exporter/internal/runner"
	"github.com/productsmanager/exportplatform/exporter/internal/webhooks"
	"github.com/productsmanager/exportplatform/pkg/config"
	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/logging"
	"github.com/productsmanager/exportplatform/pkg/memlimit"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb"
	"github.com/productsmanager/exportplatform/pkg/platformstore"
	"github.com/productsmanager/exportplatform/pkg/relay"
	"github.com/productsmanager/exportplatform/pkg/server"
	"github.com/productsmanager/exportplatform/pkg/webhook"
)

// Config is the exporter's settings, from the environment.
type Config struct {
	Addr           string
	CatalogDB      string
	ExportsDB      string
	Brokers        []string
	Group          string
	S3             objectstore.MinioConfig
	WorkerID       string
	Concurrency    int
	LeaseTTL       time.Duration
	RescueInterval time.Duration
	// RangeRows: a CSV or JSON Lines export of more rows is written in ranges of this many
	// rows by the whole exporter group (EXPORTER_CHUNK_ROWS; 0 never splits).
	RangeRows        int64
	ProgressInterval time.Duration
	MaxAttempts      int
	CancelPoll       time.Duration
	Retention        time.Duration
	UploadStall      time.Duration
	LogLevel         string
	// Pprof serves net/http/pprof on the ops address, to profile a running export.
	Pprof bool
	// Failpoint, for fault tests only (make chaos): the point of a job where the exporter
	// kills itself with SIGKILL, once ("after_upload"); empty in production.
	Failpoint string
	// Deliveries to platforms' destinations: EXPORTER_DELIVERY_CONCURRENCY at once, each under a
	// lease of EXPORTER_DELIVERY_LEASE_TTL, retried after each wait of EXPORTER_DELIVERY_BACKOFF
	// (comma-separated durations), looked for at least every EXPORTER_DELIVERY_POLL.
	DeliveryConcurrency int
	DeliveryLeaseTTL    time.Duration
	DeliveryBackoff     []time.Duration
	DeliveryPoll        time.Duration
}

// LoadConfig reads the settings with their defaults.
func LoadConfig(getenv func(string) string) (Config, error) {
	env := config.New(getenv)
	host, _ := os.Hostname()
	c := Config{
		Addr:      env.String("EXPORTER_ADDR", "127.0.0.1:8082"),
		CatalogDB: env.String("CATALOG_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/products_manager?sslmode=disable"),
		ExportsDB: env.String("EXPORTS_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/exports?sslmode=disable"),
		Brokers:   env.List("KAFKA_BROKERS", "127.0.0.1:9092"),
		Group:     env.String("EXPORTER_GROUP", "exporter"),
		S3: objectstore.MinioConfig{
			Endpoint: env.String("S3_ENDPOINT", "127.0.0.1:9000"), AccessKey: env.String("S3_ACCESS_KEY", "minioadmin"),
			SecretKey: env.String("S3_SECRET_KEY", "minioadmin"), Bucket: env.String("S3_BUCKET", "exports"),
			UseTLS:   env.Bool("S3_USE_TLS", false),
			PartSize: uint64(env.Int("EXPORTER_PART_SIZE_MIB", 16)) << 20,
		},
		// The id names the lease owner: host and pid, so an operator can find the process.
		WorkerID:         env.String("EXPORTER_ID", fmt.Sprintf("%s-%d", host, os.Getpid())),
		Concurrency:      env.Int("EXPORTER_CONCURRENCY", 2),
		MaxAttempts:      env.Int("EXPORTER_MAX_ATTEMPTS", 3),
		LeaseTTL:         env.Duration("EXPORTER_LEASE_TTL", 15*time.Second),
		RescueInterval:   env.Duration("EXPORTER_RESCUE_INTERVAL", time.Second),
		RangeRows:        int64(env.Int("EXPORTER_CHUNK_ROWS", 2_000_000)),
		ProgressInterval: env.Duration("EXPORTER_PROGRESS_INTERVAL", 250*time.Millisecond),
		CancelPoll:       env.Duration("EXPORTER_CANCEL_POLL", 250*time.Millisecond),
		Retention:        env.Duration("EXPORT_RETENTION", 30*24*time.Hour),
		UploadStall:      env.Duration("EXPORTER_UPLOAD_STALL", time.Minute),
		LogLevel:         env.String("LOG_LEVEL", "info"),
		Pprof:            env.Bool("EXPORTER_PPROF", false),
		Failpoint:        env.String("EXPORTER_FAILPOINT", ""),

		DeliveryConcurrency: env.Int("EXPORTER_DELIVERY_CONCURRENCY", 2),
		DeliveryLeaseTTL:    env.Duration("EXPORTER_DELIVERY_LEASE_TTL", time.Minute),
		DeliveryPoll:        env.Duration("EXPORTER_DELIVERY_POLL", time.Second),
	}
	var berr error
	for _, s := range env.List("EXPORTER_DELIVERY_BACKOFF", "1m,5m,15m,1h,6h") {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			berr = fmt.Errorf("EXPORTER_DELIVERY_BACKOFF: %q is not a positive duration", s)
			break
		}
		c.DeliveryBackoff = append(c.DeliveryBackoff, d)
	}
	if err := errors.Join(env.Err(), berr); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks the settings.
func (c Config) Validate() error {
	var errs []error
	if c.Concurrency < 1 || c.Concurrency > 64 {
		errs = append(errs, errors.New("EXPORTER_CONCURRENCY must be 1..64"))
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, errors.New("EXPORTER_LEASE_TTL must be at least 1s"))
	}
	if c.S3.PartSize < 5<<20 {
		errs = append(errs, errors.New("EXPORTER_PART_SIZE_MIB must be at least 5 (the S3 minimum)"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS is empty"))
	}
	for name, u := range map[string]string{"CATALOG_DATABASE_URL": c.CatalogDB, "EXPORTS_DATABASE_URL": c.ExportsDB} {
		if err := pgdb.ValidateURL(u); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if c.CancelPoll < 10*time.Millisecond || c.CancelPoll > 5*time.Second {
		errs = append(errs, errors.New("EXPORTER_CANCEL_POLL must be 10ms..5s (a cancelled job stops within it)"))
	}
	if c.Retention < time.Minute {
		errs = append(errs, errors.New("EXPORT_RETENTION must be at least 1m (e.g. 720h for 30 days)"))
	}
	if c.RangeRows < 0 {
		errs = append(errs, fmt.Errorf("EXPORTER_CHUNK_ROWS %d: must be 0 (never split) or positive", c.RangeRows))
	}
	if c.RescueInterval <= 0 || c.ProgressInterval <= 0 {
		errs = append(errs, errors.New("EXPORTER_RESCUE_INTERVAL and EXPORTER_PROGRESS_INTERVAL must be positive"))
	}
	if c.UploadStall < time.Second {
		errs = append(errs, errors.New("EXPORTER_UPLOAD_STALL must be at least 1s"))
	}
	if c.Failpoint != "" && c.Failpoint != "after_upload" {
		errs = append(errs, fmt.Errorf("EXPORTER_FAILPOINT %q: the only point is after_upload", c.Failpoint))
	}
	if c.DeliveryConcurrency < 1 || c.DeliveryConcurrency > 64 {
		errs = append(errs, errors.New("EXPORTER_DELIVERY_CONCURRENCY must be 1..64"))
	}
	if c.DeliveryLeaseTTL < time.Second || c.DeliveryPoll <= 0 {
		errs = append(errs, errors.New("EXPORTER_DELIVERY_LEASE_TTL must be at least 1s, EXPORTER_DELIVERY_POLL positive"))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, errors.New("EXPORTER_MAX_ATTEMPTS must be at least 1"))
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := logging.New(stdout, cfg.LogLevel, "exporter").With("worker", cfg.WorkerID)
	if getenv("GOGC") == "" {
		// The heap is mostly big byte buffers (the upload's part, the workbook's chunk) that
		// the collector does not scan, so collecting at +50% instead of +100% costs little CPU
		// and lowers a job's peak RSS by about a sixth (make bench: XLSX 138 → 111 MiB,
		// CSV 77 → 65 MiB at 1M rows). GOGC, when set, wins.
		debug.SetGCPercent(50)
	}
	// Under a container memory limit the collector works harder near 90 % of it rather than
	// the kernel killing the exporter past it (the part buffers of concurrent jobs are what
	// grows). GOMEMLIMIT, when set, wins.
	memlimit.Apply(getenv, log)
	reg := server.NewRegistry()

	exportsPool, err := pgdb.Open(ctx, cfg.ExportsDB, int32(cfg.Concurrency*2+cfg.DeliveryConcurrency*2+4))
	if err != nil {
		return err
	}
	defer exportsPool.Close()
	if err := jobstore.Migrate(ctx, exportsPool); err != nil {
		return err
	}
	catalogPool, err := pgdb.Open(ctx, cfg.CatalogDB, int32(cfg.Concurrency+2))
	if err != nil {
		return err
	}
	defer catalogPool.Close()
	store := jobstore.New(exportsPool)

	objects, err := objectstore.NewMinio(cfg.S3)
	if err != nil {
		return err
	}
	producer, err := eventbus.NewClient(eventbus.Config{Brokers: cfg.Brokers, ClientID: "exporter-producer"}, log, reg)
	if err != nil {
		return err
	}
	defer producer.Close()
	// How far this service's two consumer groups are behind, asked of Kafka at each scrape.
	reg.MustRegister(eventbus.NewLagCollector(producer, cfg.Group, "webhooks"))
	consumerCl, err := eventbus.NewClient(eventbus.Config{Brokers: cfg.Brokers, ClientID: "exporter"}, log, nil,
		eventbus.ConsumerOpts(cfg.Group, events.TopicRequested)...)
	if err != nil {
		return err
	}

	// The webhook worker's consumer group of exports.events (see webhooks).
	hookCl, err := eventbus.NewClient(eventbus.Config{Brokers: cfg.Brokers, ClientID: "exporter-webhooks"}, log, nil,
		eventbus.ConsumerOpts("webhooks", events.TopicEvents)...)
	if err != nil {
		return err
	}
	// Jobs outlive the intake's context: at shutdown intake stops first, then jobs are
	// cancelled (their uploads aborted and leases released), then the clients close.
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	rn := runner.New(runner.Config{
		Worker: cfg.WorkerID, Bucket: cfg.S3.Bucket, LeaseTTL: cfg.LeaseTTL,
		ProgressInterval: cfg.ProgressInterval, CancelPoll: cfg.CancelPoll, Retention: cfg.Retention,
		UploadStall: cfg.UploadStall, Crash: failpoint(cfg.Failpoint, log),
	}, catalogPool, objects, store, log.With("component", "runner"), runner.NewMetrics(reg)).
		WithRanges(store, catalogPool, cfg.RangeRows, cfg.MaxAttempts)
	in := intake.New(jobCtx, store, rn.Run, jobstore.ClaimOptions{Owner: cfg.WorkerID, TTL: cfg.LeaseTTL, MaxAttempts: cfg.MaxAttempts},
		cfg.Concurrency, cfg.RescueInterval, log.With("component", "intake")).
		WithRanges(func(ctx context.Context) (string, func(context.Context), bool) {
			rg, err := store.ClaimRange(ctx, "", cfg.WorkerID, cfg.LeaseTTL, cfg.MaxAttempts)
			if err != nil {
				if !errors.Is(err, jobstore.ErrNotClaimed) && ctx.Err() == nil {
					log.Warn("claiming a range failed", "err", err)
				}
				return "", nil, false
			}
			return rg.JobID, func(ctx context.Context) { rn.WriteRange(ctx, rg) }, true
		})
	// The jobs' events leave through the outbox; this relay (one of the platform's, one at a
	// time) outlives the jobs, so their last events are relayed before the exporter exits.
	rl := relay.New(store, eventbus.NewPublisher(producer, log), log.With("component", "relay"), reg)
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	relayDone := make(chan struct{})
	go func() { defer close(relayDone); _ = rl.Run(relayCtx) }()
	consumer := eventbus.NewConsumer(consumerCl, log.With("component", "consumer"), in.Handle).WithDeadLetter(cfg.Group)

	mux := http.NewServeMux()
	server.Ops(mux, reg, map[string]server.Check{
		"postgres_exports": pgdb.Check(exportsPool),
		"postgres_catalog": pgdb.Check(catalogPool),
		"kafka":            eventbus.Ping(producer),
		"s3":               objects.Ping,
	}, log)
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := server.New(cfg.Addr, mux)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return server.Run(gctx, srv, log, 5*time.Second) })
	g.Go(func() error {
		err := consumer.Run(gctx)
		eventbus.CloseGroup(consumerCl, 3*time.Second) // leave the group now, so partitions move to other instances
		return err
	})
	g.Go(func() error { return in.Poll(gctx) })
	deliveries := delivery.New(delivery.Config{Owner: cfg.WorkerID, Concurrency: cfg.DeliveryConcurrency,
		LeaseTTL: cfg.DeliveryLeaseTTL, Backoff: cfg.DeliveryBackoff, Poll: cfg.DeliveryPoll},
		store, platformstore.New(exportsPool), objects, log.With("component", "delivery"), reg)
	g.Go(func() error { return deliveries.Run(gctx) })
	// Webhooks: queued from exports.events by a consumer group of their own, sent by a worker.
	hooks := webhooks.New(webhooks.Config{Owner: cfg.WorkerID, Backoff: cfg.DeliveryBackoff, Poll: cfg.DeliveryPoll},
		webhook.NewStore(exportsPool), platformstore.New(exportsPool), store, log.With("component", "webhooks"))
	g.Go(func() error {
		err := eventbus.NewConsumer(hookCl, log.With("component", "webhook-consumer"), hooks.Handle).Run(gctx)
		eventbus.CloseGroup(hookCl, 3*time.Second)
		return err
	})
	g.Go(func() error { return hooks.Run(gctx) })
	log.Info("exporter started", "concurrency", cfg.Concurrency, "lease_ttl", cfg.LeaseTTL.String())
	err = g.Wait()
	cancelJobs()
	in.Wait()
	stopRelay()
	<-relayDone
	fctx, cancelFlush := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if ferr := rl.Flush(fctx); ferr != nil {
		log.Warn("relaying the last events at exit; another process will", "err", ferr)
	}
	cancelFlush()
	log.Info("stopped", "err", err)
	return err
}

// failpoint kills the process with SIGKILL when a job reaches point: a crash at the worst
// moment, for make chaos. Nothing when point is empty.
func failpoint(point string, log *slog.Logger) func(string) {
	if point == "" {
		return nil
	}
	log.Warn("failpoint armed: this exporter kills itself there (fault tests only)", "failpoint", point)
	return func(at string) {
		if at == point {
			log.Warn("failpoint reached: SIGKILL", "failpoint", at)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}
