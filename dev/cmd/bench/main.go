// Command bench measures the local stack (make bench): export throughput per format, the
// exporter's peak memory, the streaming endpoints, how late schedules fire, and the host's ceiling (PostgreSQL COPY of
// the exporter's own query). It asserts nothing: it prints one figure per line on stdout,
// `name value unit`, and progress, diagnostics and a summary against the targets of issue 3
// on stderr. It exits non-zero only when it cannot run at all (stack down, no catalog).
//
//	bench [-products N] [-only csv,copy,...] [-runs N] [-timeout 10m] [-up auto|always|never] [-keep]
//
// With -runs N (BENCH_RUNS), the selection runs N times in a row and each figure's median is
// printed after the runs (`name value unit median of N`); the summary judges the medians.
//
// Figures are taken one at a time, never concurrently, so that they do not disturb each other;
// other users of a shared stack still can (a warning says so when other jobs were running).
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benches lists every measurement in the order they run. csv_100k runs before csv so that the
// 1M peak includes whatever the exporter retained from an earlier job; copy runs right before
// csv so that both see the same cache and host load.
var benches = []string{"csv_100k", "jsonl_100k", "xlsx_100k", "copy", "csv", "jsonl", "json_relations", "xlsx", "xlsx_split",
	"ranges", "csv_stream", "jsonl_stream",
	"hub_latency", "hub_idle", "schedule_fire", "api_auth", "delivery"}

// hubBenches need no catalog: selected alone, they run without counting or seeding it.
var hubBenches = []string{"hub_latency", "hub_idle", "schedule_fire", "api_auth"}

// errUsage marks usage errors, already reported on stderr (by the flag package or loadConfig).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// config is the bench's settings: flags, then the stack's environment (dev/env.sh).
type config struct {
	products   int64
	only       []string
	runs       int
	timeout    time.Duration
	up         string
	keep       bool
	root       string
	stackDir   string
	apiURL     string
	catalogURL string
	jwtSecret  string
	readyAddrs map[string]string // service → host:port, for /readyz
	poll       time.Duration
	sample     time.Duration

	hubAddr        string
	hubReplicas    []string // hub_latency: more hub addresses the clients are spread over
	hubSpawn       int      // hub_latency: replicas to start for the run
	exportsURL     string
	brokers        []string
	hubClients     int           // clients following every job during hub_latency
	hubIdleClients int           // idle clients of hub_idle
	hubRate        float64       // ExportProgress events per second during hub_latency
	hubDuration    time.Duration // how long hub_latency produces
	hubJobs        int           // synthetic jobs the events are spread over
	hubSettle      time.Duration // wait before reading the hub's RSS in hub_idle
	hubPID         int           // the hub process to measure; 0: the stack's (.stack/pids)
}

// needsCatalog reports whether a selected bench exports or streams the catalog.
func (c config) needsCatalog() bool {
	for _, name := range c.only {
		if !slices.Contains(hubBenches, name) {
			return true
		}
	}
	return false
}

func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	products := fs.Int64("products", 1000000, "catalog size to measure; seeds the catalog when it holds fewer products")
	only := fs.String("only", "", "comma-separated subset to run: "+strings.Join(benches, ","))
	defRuns, err := strconv.Atoi(cmp.Or(getenv("BENCH_RUNS"), "1"))
	if err != nil {
		fmt.Fprintln(stderr, "bench: BENCH_RUNS must be a number")
		return config{}, fmt.Errorf("%w: BENCH_RUNS %q", errUsage, getenv("BENCH_RUNS"))
	}
	runs := fs.Int("runs", defRuns, "run the selection this many times and print each figure's median (BENCH_RUNS)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up on one export (or stream) after this long")
	up := fs.String("up", "auto", "auto: run dev/stack.sh up only when a service does not answer /readyz; always: run it anyway (rebuilds and restarts changed services); never")
	keep := fs.Bool("keep", false, "keep the exported files (default: DELETE each job once measured)")
	hubClients := fs.Int("hub-clients", 1000, "hub_latency: WebSocket clients following every job")
	hubIdle := fs.Int("hub-idle-clients", 10000, "hub_idle: idle WebSocket clients")
	hubRate := fs.Float64("hub-rate", 20, "hub_latency: ExportProgress events produced per second")
	hubDuration := fs.Duration("hub-duration", 15*time.Second, "hub_latency: how long events are produced")
	hubJobs := fs.Int("hub-jobs", 4, "hub_latency: synthetic jobs the events are spread over")
	hubPID := fs.Int("hub-pid", 0, "hub benches: pid of the hub at HUB_ADDR to measure (default: the stack's progress-hub)")
	hubReplicas := fs.String("hub-replicas", "", "hub_latency: comma-separated addresses of more hub replicas; the clients are spread over HUB_ADDR and these")
	hubSpawn := fs.Int("hub-spawn", 0, "hub_latency: start this many more hub replicas (.stack/bin/progress-hub on 127.0.0.1:18181...) for the run, and spread the clients over them too")
	hubSettle := fs.Duration("hub-settle", 5*time.Second, "hub_idle: wait once every client is connected before reading the hub's RSS")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: bench [flags]\n\nBenchmarks the local stack; one figure per line on stdout: name value unit.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	usage := func(format string, a ...any) error {
		msg := fmt.Sprintf(format, a...)
		fmt.Fprintln(stderr, "bench:", msg)
		return fmt.Errorf("%w: %s", errUsage, msg)
	}
	if fs.NArg() > 0 {
		return config{}, usage("unexpected arguments %q", fs.Args())
	}
	cfg := config{
		products: *products,
		runs:     *runs,
		timeout:  *timeout,
		up:       *up,
		keep:     *keep,
		poll:     100 * time.Millisecond,
		sample:   20 * time.Millisecond,

		hubClients:     *hubClients,
		hubIdleClients: *hubIdle,
		hubRate:        *hubRate,
		hubDuration:    *hubDuration,
		hubJobs:        *hubJobs,
		hubSettle:      *hubSettle,
		hubPID:         *hubPID,
		hubSpawn:       *hubSpawn,
	}
	for a := range strings.SplitSeq(*hubReplicas, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.hubReplicas = append(cfg.hubReplicas, a)
		}
	}
	if cfg.hubClients < 1 || cfg.hubIdleClients < 1 || cfg.hubJobs < 1 || cfg.hubRate <= 0 || cfg.hubDuration <= 0 {
		return config{}, usage("-hub-clients, -hub-idle-clients, -hub-jobs, -hub-rate and -hub-duration must be positive")
	}
	if cfg.runs < 1 || cfg.runs > 9 {
		return config{}, usage("-runs must be from 1 to 9")
	}
	if cfg.products < 1 {
		return config{}, usage("-products must be at least 1")
	}
	if cfg.timeout <= 0 {
		return config{}, usage("-timeout must be positive")
	}
	switch cfg.up {
	case "auto", "always", "never":
	default:
		return config{}, usage("-up must be auto, always or never")
	}
	cfg.only = benches
	if *only != "" {
		cfg.only = nil
		for name := range strings.SplitSeq(*only, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if !slices.Contains(benches, name) {
				return config{}, usage("-only: unknown %q (known: %s)", name, strings.Join(benches, ","))
			}
			cfg.only = append(cfg.only, name)
		}
	}

	cfg.root = getenv("EXPORTPLATFORM_ROOT")
	if cfg.root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return config{}, err
		}
		cfg.root = wd
	}
	cfg.stackDir = env("STACK_DIR", filepath.Join(cfg.root, ".stack"))
	cfg.apiURL = "http://" + env("API_ADDR", "127.0.0.1:8080")
	cfg.catalogURL = env("CATALOG_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/products_manager?sslmode=disable")
	cfg.jwtSecret = env("JWT_SECRET", "local-dev-secret")
	cfg.hubAddr = env("HUB_ADDR", "127.0.0.1:8081")
	cfg.exportsURL = env("EXPORTS_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/exports?sslmode=disable")
	for br := range strings.SplitSeq(env("KAFKA_BROKERS", "127.0.0.1:9092"), ",") {
		if br = strings.TrimSpace(br); br != "" {
			cfg.brokers = append(cfg.brokers, br)
		}
	}
	cfg.readyAddrs = map[string]string{
		"producer-api": env("API_ADDR", "127.0.0.1:8080"),
		"progress-hub": env("HUB_ADDR", "127.0.0.1:8081"),
		"exporter":     env("EXPORTER_ADDR", "127.0.0.1:8082"),
		"scheduler":    env("SCHEDULER_ADDR", "127.0.0.1:8083"),
		"audit-sink":   env("AUDIT_ADDR", "127.0.0.1:8084"),
	}
	return cfg, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	b := newBench(cfg, stdout, stderr)
	if err := b.prepare(ctx); err != nil {
		return err
	}
	for run := 1; run <= cfg.runs; run++ {
		if cfg.runs > 1 {
			b.logf("==== run %d of %d", run, cfg.runs)
		}
		if err := b.runOnce(ctx); err != nil {
			return err
		}
		b.derived()
		b.endRun()
	}
	b.medians()
	b.summary()
	return nil
}

// runOnce takes every selected measurement once.
func (b *bench) runOnce(ctx context.Context) error {
	for _, name := range b.cfg.only {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.logf("---- %s (load average %s)", name, loadavg())
		switch name {
		case "csv_100k":
			b.bench100k(ctx, name, "csv", nil)
		case "jsonl_100k":
			b.bench100k(ctx, name, "json", map[string]any{"options": map[string]any{"lines": true}})
		case "xlsx_100k":
			b.bench100k(ctx, name, "excel", nil)
		case "copy":
			b.benchCopy(ctx)
		case "csv":
			b.benchExport(ctx, exportSpec{name: "csv", format: "csv"})
		case "jsonl":
			b.benchExport(ctx, exportSpec{name: "jsonl", format: "json", body: map[string]any{"options": map[string]any{"lines": true}}})
		case "json_relations":
			b.benchExport(ctx, exportSpec{name: "json_relations", format: "json", body: map[string]any{"options": map[string]any{"include_relations": true}}})
		case "xlsx":
			b.benchExport(ctx, exportSpec{name: "xlsx", format: "excel"})
		case "xlsx_split":
			b.benchXLSXSplit(ctx)
		case "ranges":
			b.benchRanges(ctx)
		case "csv_stream":
			b.benchStream(ctx, "csv_stream", "/api/v1/exports/stream/csv/products", false)
		case "jsonl_stream":
			b.benchStream(ctx, "jsonl_stream", "/api/v1/exports/stream/json/products?lines=true", true)
		case "hub_latency":
			b.benchHubLatency(ctx)
		case "hub_idle":
			b.benchHubIdle(ctx)
		case "schedule_fire":
			b.benchScheduleFire(ctx)
		case "api_auth":
			b.benchAPIAuth(ctx)
		case "delivery":
			b.benchDelivery(ctx)
		}
	}
	return nil
}

// loadavg is the host's 1, 5 and 15 minute load averages: the figures share the host's CPUs
// with whatever else runs (other tests, builds), which they do not measure.
func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ") + fmt.Sprintf(" on %d CPUs", runtime.NumCPU())
}
