package runner_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/exporter/internal/runner"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	waitFor     = 20 * time.Second
	catalogRows = 300
)

// newCatalog is a throwaway products_manager with the real schema and catalogRows products
// whose text holds what people type: quotes, separators, line breaks, emoji, formula starts.
func newCatalog(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgdbtest.NewDatabase(t, "runnertest")
	schema, err := os.ReadFile("../../../dev/sql/catalog.sql")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, string(schema)); err != nil {
		t.Fatal(err)
	}
	// Fixed rows first, then catalogRows generated products (one statement per Exec: arguments
	// need the extended protocol).
	for _, stmt := range []string{
		`INSERT INTO categories (id, parent_id, name, slug, path) VALUES
			(1, NULL, 'Home', 'home', 'Home'), (2, 1, 'Audio; "Hi-Fi"', 'audio', 'Home > Audio; "Hi-Fi"')`,
		`INSERT INTO suppliers (id, code, name, email, phone, country, city) VALUES
			(1, 'S1', 'Acme, "Paris"', 'a@x.fr', '+33 1', 'FR', 'Paris'),
			(2, 'S2', '=cmd|'' /C calc''!A0', 'b@x.de', '0049', 'DE', 'Köln')`,
		`INSERT INTO products (id, sku, name, description, brand, ean, price, stock, status, category_id, weight_grams, attributes)
		SELECT i, 'SKU-' || lpad(i::text, 5, '0'),
			(ARRAY['Câble "Ultra", 2m', '=HYPERLINK("http://x")', E'two\nlines', 'Casque 🎧 sans fil', '+33 plug', '@mention', 'plain', E'cr\r\nlf'])[1 + i % 8],
			CASE WHEN i % 3 = 0 THEN E'-50% promo;\ttab' ELSE '' END,
			(ARRAY['Acme', 'Beta|Pipe'])[1 + i % 2], lpad(i::text, 13, '0'), (i * 1.25)::numeric(12,2), i % 17,
			(ARRAY['active', 'draft', 'archived'])[1 + i % 3], CASE WHEN i % 5 = 0 THEN NULL ELSE 1 + i % 2 END,
			NULLIF(i % 4, 0) * 100, jsonb_build_object('n', i, 'q', 'a "quoted", value')
		FROM generate_series(1, $1::int) AS i`,
		`INSERT INTO product_suppliers (product_id, supplier_id, supplier_sku, cost_price, lead_time_days, is_primary)
		SELECT i, 1 + i % 2, 'X-' || i, 1, 3, true FROM generate_series(1, $1::int) AS i WHERE i % 7 <> 0`,
	} {
		var args []any
		if strings.Contains(stmt, "$1") {
			args = append(args, catalogRows)
		}
		if _, err := pool.Exec(ctx, stmt, args...); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

// jobs is the in-memory job store with a hook counting (and, through failNext, failing) the
// runner's commands by name.
type jobs struct {
	*jobstore.Memory
	mu        sync.Mutex
	count     map[string]int
	fail      map[string]failure
	renewedCh chan struct{} // signalled (non-blocking) on each renewal
}

type failure struct {
	n   int // calls left to fail; negative: all
	err error
}

func newJobs() *jobs {
	j := &jobs{Memory: jobstore.NewMemory(), count: map[string]int{}, fail: map[string]failure{}, renewedCh: make(chan struct{}, 1)}
	j.Before = func(_ string, c job.Command) error {
		j.mu.Lock()
		defer j.mu.Unlock()
		name := job.Name(c)
		j.count[name]++
		if name == "renew" {
			select {
			case j.renewedCh <- struct{}{}:
			default:
			}
		}
		f, ok := j.fail[name]
		if !ok || f.n == 0 {
			return nil
		}
		f.n--
		j.fail[name] = f
		return f.err
	}
	return j
}

// failNext makes the next n calls of a command fail with err (n < 0: every call).
func (j *jobs) failNext(name string, n int, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.fail[name] = failure{n, err}
}

func (j *jobs) calls(name string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.count[name]
}

// eventsOf is what the job's commands wrote to the outbox, decoded, in order.
func (j *jobs) eventsOf(t *testing.T, id string) []events.Event {
	t.Helper()
	msgs, err := j.Pending(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]events.Event, 0, len(msgs))
	for _, m := range msgs {
		ev, err := events.DecodeAny(m.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func eventsOfType[T events.Event](evs []events.Event) []T {
	var out []T
	for _, ev := range evs {
		if e, ok := ev.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

// gatedStore is the in-memory store whose Put waits, before reading anything, until gate is
// closed or the upload's context ends; entered is closed when the first Put starts.
type gatedStore struct {
	*objectstore.Memory
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func newGatedStore() *gatedStore {
	return &gatedStore{Memory: objectstore.NewMemory(), gate: make(chan struct{}), entered: make(chan struct{})}
}

func (s *gatedStore) Put(ctx context.Context, key string, r io.Reader, contentType string) (objectstore.Info, error) {
	s.once.Do(func() { close(s.entered) })
	select {
	case <-s.gate:
	case <-ctx.Done():
	}
	return s.Memory.Put(ctx, key, r, contentType)
}

// failingStore reads part of the upload, then fails it, like a dropped S3 connection.
type failingStore struct {
	*objectstore.Memory
}

var errUpload = errors.New("uploading: connection reset by peer")

func (s failingStore) Put(_ context.Context, _ string, r io.Reader, _ string) (objectstore.Info, error) {
	io.CopyN(io.Discard, r, 100)
	return objectstore.Info{}, errUpload
}

// newJob creates a job, lets edit change its request, and claims it as attempt (earlier
// attempts handed back).
func (e *env) newJob(t *testing.T, attempt int, edit func(*events.ExportRequested)) (jobstore.Job, jobstore.Lease) {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	req := events.ExportRequested{JobID: id, Entity: "products", Format: "csv", FileName: "catalog.csv",
		RequestedBy: "alice", RequestedAt: time.Now().UTC()}
	if edit != nil {
		edit(&req)
	}
	ctx := context.Background()
	if _, err := e.jobs.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	opts := jobstore.ClaimOptions{Owner: "worker-1", TTL: e.cfg.LeaseTTL, MaxAttempts: 3}
	for {
		j, lease, err := e.jobs.Claim(ctx, id, opts)
		if err != nil {
			t.Fatal(err)
		}
		if lease.Attempt == attempt {
			return j, lease
		}
		if _, err := e.jobs.Do(ctx, id, job.Release{Owner: "worker-1", Attempt: lease.Attempt, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

type env struct {
	jobs *jobs
	cfg  runner.Config
}

func newEnv() *env {
	return &env{
		jobs: newJobs(),
		cfg: runner.Config{Worker: "worker-1", Bucket: "exports", LeaseTTL: 10 * time.Second,
			ProgressInterval: time.Nanosecond},
	}
}

func (e *env) runner(t *testing.T, db *pgxpool.Pool, store objectstore.Store) *runner.Runner {
	return runner.New(e.cfg, db, store, e.jobs, slog.New(slog.NewTextHandler(t.Output(), nil)), runner.NewMetrics(nil))
}

// get reads the job as the store holds it.
func (e *env) get(t *testing.T, id string) jobstore.Job {
	t.Helper()
	j, err := e.jobs.GetAny(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// runAsync runs one job and returns a channel closed when Run returned.
func runAsync(ctx context.Context, r *runner.Runner, job jobstore.Job, lease jobstore.Lease) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx, job, lease)
	}()
	return done
}

func waitDone(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatalf("Run did not return after %s", what)
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
	}
}
