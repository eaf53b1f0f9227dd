package runner_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/exporter/internal/runner"
	"github.com/productsmanager/exportplatform/pkg/events"
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

// fakeLeases records what the runner asks of the job store; Renew can be told to report the
// lease lost.
type fakeLeases struct {
	mu        sync.Mutex
	renewErr  error
	renewals  int
	releases  []jobstore.Lease
	applied   []events.Event
	renewedCh chan struct{} // signalled (non-blocking) on each Renew
	cancelled bool          // what Cancelled answers; a cancelled job cannot be sealed
	seals     int
}

func (f *fakeLeases) Seal(_ context.Context, _ jobstore.Lease, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seals++
	if f.cancelled {
		return jobstore.ErrLeaseLost
	}
	return f.renewErr
}

func (f *fakeLeases) Cancelled(context.Context, string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cancelled, nil
}

func (f *fakeLeases) cancel() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = true
}

func newFakeLeases() *fakeLeases { return &fakeLeases{renewedCh: make(chan struct{}, 1)} }

func (f *fakeLeases) Renew(_ context.Context, l jobstore.Lease, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renewals++
	select {
	case f.renewedCh <- struct{}{}:
	default:
	}
	return f.renewErr
}

func (f *fakeLeases) Release(_ context.Context, l jobstore.Lease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releases = append(f.releases, l)
	return nil
}

func (f *fakeLeases) Apply(_ context.Context, ev events.Event) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, ev)
	return true, nil
}

func (f *fakeLeases) snapshot() (releases []jobstore.Lease, applied []events.Event, renewals int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.releases), slices.Clone(f.applied), f.renewals
}

// fakePublisher records the events published (Publish) and sent (Send), per topic.
type fakePublisher struct {
	mu         sync.Mutex
	published  []events.Event
	sent       []events.Event
	topics     []string
	publishErr error
}

func (p *fakePublisher) Publish(_ context.Context, topic string, evs ...events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.publishErr != nil {
		return p.publishErr
	}
	for range evs {
		p.topics = append(p.topics, topic)
	}
	p.published = append(p.published, evs...)
	return nil
}

func (p *fakePublisher) Send(_ context.Context, topic string, ev events.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.topics = append(p.topics, topic)
	p.sent = append(p.sent, ev)
}

func (p *fakePublisher) snapshot() (published, sent []events.Event, topics []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.published), slices.Clone(p.sent), slices.Clone(p.topics)
}

func publishedOf[T events.Event](p *fakePublisher) []T {
	published, _, _ := p.snapshot()
	var out []T
	for _, ev := range published {
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

func newJob(t *testing.T, attempt int) (jobstore.Job, jobstore.Lease) {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	now := time.Now().UTC()
	job := jobstore.Job{
		ID: id, TaskID: id, Entity: "products", Format: "csv", Status: jobstore.StatusRunning,
		Fields: []string{}, ExcludeFields: []string{}, Filters: map[string]any{}, Options: map[string]any{},
		FileName: "catalog.csv", RequestedBy: "alice", CreatedAt: now, UpdatedAt: now, Attempt: attempt,
	}
	return job, jobstore.Lease{JobID: id, Owner: "worker-1", Attempt: attempt}
}

type env struct {
	leases *fakeLeases
	pub    *fakePublisher
	cfg    runner.Config
}

func newEnv() *env {
	return &env{
		leases: newFakeLeases(), pub: &fakePublisher{},
		cfg: runner.Config{Worker: "worker-1", Bucket: "exports", LeaseTTL: 10 * time.Second,
			ProgressInterval: time.Nanosecond, MaxAttempts: 3},
	}
}

func (e *env) runner(t *testing.T, db *pgxpool.Pool, store objectstore.Store) *runner.Runner {
	return runner.New(e.cfg, db, store, e.leases, e.pub, slog.New(slog.NewTextHandler(t.Output(), nil)), runner.NewMetrics(nil))
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

func newRunnerWith(t *testing.T, e *env, db *pgxpool.Pool, store objectstore.Store, pub runner.Publisher) *runner.Runner {
	return runner.New(e.cfg, db, store, e.leases, pub, slog.New(slog.NewTextHandler(t.Output(), nil)), runner.NewMetrics(nil))
}
