package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// bench holds what every measurement shares; figures are printed as they are taken and kept
// for the summary.
type bench struct {
	cfg     config
	stdout  io.Writer
	stderr  io.Writer
	http    *http.Client
	token   string
	count   int64              // products in the catalog
	figures map[string]float64 // name → value of the current run (the medians, once the runs are over)
	failed  map[string]string  // bench name → why

	samples map[string][]float64 // name → its value in each run so far
	formats map[string]figureFormat
	order   []string // figure names in the order first emitted
	warmPID int      // the exporter process warmed up by an unmeasured export (bench100k)
}

// figureFormat is how a figure prints.
type figureFormat struct {
	unit string
	prec int
}

func newBench(cfg config, stdout, stderr io.Writer) *bench {
	// No compression: stream sizes are what travels, and decoding would cost the client time.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	return &bench{
		cfg:     cfg,
		stdout:  stdout,
		stderr:  stderr,
		http:    &http.Client{Transport: tr},
		figures: map[string]float64{},
		failed:  map[string]string{},
		samples: map[string][]float64{},
		formats: map[string]figureFormat{},
	}
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.stderr, "[bench] "+format+"\n", a...)
}

// emit prints one figure, `name value unit`, with prec decimals.
func (b *bench) emit(name string, v float64, unit string, prec int) {
	b.figures[name] = v
	if _, ok := b.formats[name]; !ok {
		b.formats[name] = figureFormat{unit, prec}
		b.order = append(b.order, name)
	}
	fmt.Fprintf(b.stdout, "%s %.*f %s\n", name, prec, v, unit)
}

// endRun keeps the run's figures as samples and starts the next run afresh.
func (b *bench) endRun() {
	for name, v := range b.figures {
		b.samples[name] = append(b.samples[name], v)
	}
	b.figures = map[string]float64{}
}

// medians makes each figure's median over the runs the figure the summary judges; with more
// than one run, it prints them: `name value unit median of N` (N: the runs that measured it).
func (b *bench) medians() {
	for _, name := range b.order {
		vs := slices.Clone(b.samples[name])
		if len(vs) == 0 {
			continue
		}
		slices.Sort(vs)
		m := vs[len(vs)/2]
		if len(vs)%2 == 0 {
			m = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
		}
		b.figures[name] = m
		if b.cfg.runs > 1 {
			f := b.formats[name]
			fmt.Fprintf(b.stdout, "%s %.*f %s median of %d\n", name, f.prec, m, f.unit, len(vs))
		}
	}
}

// fail reports a measurement that could not be taken, and goes on.
func (b *bench) fail(name string, why string) {
	b.logf("%s: FAILED: %s", name, why)
	b.failed[name] = why
	fmt.Fprintf(b.stdout, "%s_failed 1 bool\n", name)
}

// prepare makes sure the stack answers, the catalog holds enough products, and mints a token.
func (b *bench) prepare(ctx context.Context) error {
	down := b.notReady(ctx)
	switch {
	case b.cfg.up == "always" || (b.cfg.up == "auto" && len(down) > 0):
		if len(down) > 0 {
			b.logf("not ready: %s; running dev/stack.sh up", strings.Join(down, ", "))
		} else {
			b.logf("running dev/stack.sh up (-up=always)")
		}
		cmd := exec.CommandContext(ctx, filepath.Join(b.cfg.root, "dev", "stack.sh"), "up")
		cmd.Stdout, cmd.Stderr = b.stderr, b.stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("dev/stack.sh up: %w", err)
		}
		if down = b.notReady(ctx); len(down) > 0 {
			return fmt.Errorf("not ready after dev/stack.sh up: %s", strings.Join(down, ", "))
		}
	case len(down) > 0:
		return fmt.Errorf("not ready: %s (run make up, or drop -up=never)", strings.Join(down, ", "))
	default:
		b.logf("stack ready (every /readyz answers); not running dev/stack.sh up (-up=always does)")
	}

	if err := b.prepareCatalog(ctx); err != nil {
		return err
	}

	var err error
	b.token, err = auth.Mint([]byte(b.cfg.jwtSecret), auth.Principal{
		Subject:     "bench",
		Name:        "make bench",
		Permissions: []string{auth.PermReadExports, auth.PermWriteExports},
	}, 12*time.Hour, time.Now())
	if err != nil {
		return fmt.Errorf("minting a token: %w", err)
	}
	return nil
}

// prepareCatalog counts the catalog and seeds it when it holds fewer products than measured;
// the hub benches need no catalog, so with only them selected it is left alone.
func (b *bench) prepareCatalog(ctx context.Context) error {
	if !b.cfg.needsCatalog() {
		b.logf("only hub benches selected: the catalog is neither counted nor seeded")
		return nil
	}
	n, err := b.countProducts(ctx)
	if err != nil {
		return err
	}
	if n < b.cfg.products {
		b.logf("catalog has %d products, fewer than %d: seeding %d (this takes a while)", n, b.cfg.products, b.cfg.products)
		seed := filepath.Join(b.cfg.stackDir, "bin", "seed")
		cmd := exec.CommandContext(ctx, seed, "-products", strconv.FormatInt(b.cfg.products, 10))
		cmd.Env = append(os.Environ(), "CATALOG_DATABASE_URL="+b.cfg.catalogURL)
		cmd.Stdout, cmd.Stderr = b.stderr, b.stderr // stdout is for figures only
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("seeding with %s: %w (make tools builds it)", seed, err)
		}
		b.logf("seeded in %s", time.Since(t0).Round(time.Second))
		if n, err = b.countProducts(ctx); err != nil {
			return err
		}
	}
	b.count = n
	b.logf("catalog: %d products", n)
	return nil
}

// notReady lists the services whose /readyz does not answer 200.
func (b *bench) notReady(ctx context.Context) []string {
	var down []string
	for name, addr := range b.cfg.readyAddrs {
		if !httpOK(ctx, b.http, "http://"+addr+"/readyz") {
			down = append(down, name)
		}
	}
	slices.Sort(down)
	return down
}

func httpOK(ctx context.Context, c *http.Client, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (b *bench) catalogConn(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, b.cfg.catalogURL)
	if err != nil {
		return nil, fmt.Errorf("connecting to the catalog: %w", err)
	}
	return conn, nil
}

func (b *bench) countProducts(ctx context.Context) (int64, error) {
	conn, err := b.catalogConn(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n); err != nil {
		return 0, fmt.Errorf("counting products: %w", err)
	}
	return n, nil
}

// servicePID is the pid dev/stack.sh recorded for a service (.stack/pids/NAME.pid), checked
// against the process's command line as dev/lib/common.sh does, re-read before each
// measurement since a colleague may have restarted the service.
func (b *bench) servicePID(name string) (int, error) {
	pf := filepath.Join(b.cfg.stackDir, "pids", name+".pid")
	raw, err := os.ReadFile(pf)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", pf, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", pf, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, fmt.Errorf("%s: pid %d: %w", name, pid, err)
	}
	if !strings.Contains(string(cmdline), filepath.Join("bin", name)) {
		return 0, fmt.Errorf("%s: pid %d runs %q, not %s", name, pid, strings.ReplaceAll(string(cmdline), "\x00", " "), name)
	}
	return pid, nil
}
