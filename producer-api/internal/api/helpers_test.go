package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testSecret  = "api-test-secret"
	maxBodySize = 4096
)

// fakeJobs is the in-memory twin of the job store: Create records what it was given, Get and
// List serve a map, and each can be told to fail.
type fakeJobs struct {
	mu        sync.Mutex
	jobs      map[string]jobstore.Job
	created   []events.ExportRequested
	lists     []jobstore.ListFilter
	listJobs  []jobstore.Job
	listNext  string
	createErr error
	getErr    error
	listErr   error
	deleted   []string
	removed   []string // jobs whose file was recorded removed
	// deleteAudits: the audit events handed to Delete.
	deleteAudits []events.Accessed
}

func (f *fakeJobs) deleteAudited() []events.Accessed {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]events.Accessed(nil), f.deleteAudits...)
}

func newFakeJobs(jobs ...jobstore.Job) *fakeJobs {
	f := &fakeJobs{jobs: map[string]jobstore.Job{}}
	for _, j := range jobs {
		f.jobs[j.ID] = j
	}
	return f
}

func (f *fakeJobs) Create(_ context.Context, req events.ExportRequested) (jobstore.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.createErr != nil {
		return jobstore.Job{}, f.createErr
	}
	f.created = append(f.created, req)
	j := jobstore.Job{
		ID: req.JobID, TaskID: req.JobID, Entity: req.Entity, Format: req.Format, Status: jobstore.StatusQueued,
		Fields: req.Fields, ExcludeFields: req.ExcludeFields, Filters: req.Filters, Options: req.Options,
		FileName: req.FileName, RequestedBy: req.RequestedBy, RequesterName: req.RequesterName,
		CreatedAt: req.RequestedAt, UpdatedAt: req.RequestedAt,
	}
	f.jobs[j.ID] = j
	return j, nil
}

// CreateWithin is Create bounded by the requester's queued and running jobs, as the store's.
func (f *fakeJobs) CreateWithin(ctx context.Context, req events.ExportRequested, maxActive int) (jobstore.Job, error) {
	if maxActive > 0 {
		f.mu.Lock()
		active := 0
		for _, j := range f.jobs {
			if j.RequestedBy == req.RequestedBy && !j.Status.Terminal() {
				active++
			}
		}
		f.mu.Unlock()
		if active >= maxActive {
			return jobstore.Job{}, jobstore.ErrTooManyActive
		}
	}
	return f.Create(ctx, req)
}

func (f *fakeJobs) Get(_ context.Context, id string) (jobstore.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.getErr != nil {
		return jobstore.Job{}, f.getErr
	}
	j, ok := f.jobs[id]
	if !ok {
		return jobstore.Job{}, jobstore.ErrNotFound
	}
	return j, nil
}

func (f *fakeJobs) List(_ context.Context, filter jobstore.ListFilter) ([]jobstore.Job, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, filter)
	if f.listErr != nil {
		return nil, "", f.listErr
	}
	if filter.Cursor == "bogus" {
		return nil, "", jobstore.ErrBadCursor
	}
	return f.listJobs, f.listNext, nil
}

// Cancel and Delete follow the store's rules on the map: a terminal job cannot be cancelled,
// a deleted one is gone.
func (f *fakeJobs) Cancel(_ context.Context, id, by string) (jobstore.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return jobstore.Job{}, jobstore.ErrNotFound
	}
	if j.Status.Terminal() {
		return j, jobstore.ErrFinished
	}
	j.Status, j.Phase, j.CancelledBy = jobstore.StatusCancelled, "done", &by
	f.jobs[id] = j
	return j, nil
}

// Do applies c to the job in the map, as the store does under its lock.
func (f *fakeJobs) Do(_ context.Context, id string, c job.Command) (jobstore.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return jobstore.Job{}, jobstore.ErrNotFound
	}
	next, _, err := job.Apply(j, c)
	if err != nil {
		return j, err
	}
	f.jobs[id] = next
	return next, nil
}

// Delete keeps the audit event it is given, as the store writes it with the delete.
func (f *fakeJobs) Delete(_ context.Context, id, by string, audit *events.Accessed) (jobstore.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return jobstore.Job{}, jobstore.ErrNotFound
	}
	if audit != nil {
		f.deleteAudits = append(f.deleteAudits, *audit)
	}
	if !j.Status.Terminal() {
		j.Status = jobstore.StatusCancelled
	}
	delete(f.jobs, id)
	f.deleted = append(f.deleted, id)
	return j, nil
}

func (f *fakeJobs) FileRemoved(_ context.Context, id string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeJobs) createdRequests() []events.ExportRequested {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]events.ExportRequested(nil), f.created...)
}

func (f *fakeJobs) listCalls() []jobstore.ListFilter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]jobstore.ListFilter(nil), f.lists...)
}

// failingStore is an object store whose every call fails with a revealing message.
type failingStore struct {
	objectstore.Store
	err error
}

func (s failingStore) Get(context.Context, string) (io.ReadCloser, objectstore.Info, error) {
	return nil, objectstore.Info{}, s.err
}

// env is one API server under test with its collaborators.
type env struct {
	jobs     *fakeJobs
	objects  *objectstore.Memory
	registry *prometheus.Registry
	srv      *httptest.Server
	notified atomic.Int64
	hub      *url.URL
	active   atomic.Int64 // requests inside the handler now
}

type envOpt func(*api.Deps)

// withCatalog gives the server a catalog database for the streams.
func withCatalog(db catalog.Querier) envOpt { return func(d *api.Deps) { d.Catalog = db } }

func newEnv(t *testing.T, jobs *fakeJobs, opts ...envOpt) *env {
	t.Helper()
	return newEnvServer(t, jobs, nil, opts...)
}

// newEnvServer is newEnv with configure applied to the http.Server before it starts.
func newEnvServer(t *testing.T, jobs *fakeJobs, configure func(*http.Server), opts ...envOpt) *env {
	t.Helper()
	e := &env{jobs: jobs, objects: objectstore.NewMemory(), registry: prometheus.NewRegistry()}
	d := testDeps(t, e.registry)
	d.Jobs, d.Objects, d.Notify = jobs, e.objects, func() { e.notified.Add(1) }
	for _, o := range opts {
		o(&d)
	}
	e.hub = d.HubURL
	h := api.NewServer(d)
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.active.Add(1)
		defer e.active.Add(-1)
		h.ServeHTTP(w, r)
	}))
	if configure != nil {
		configure(e.srv.Config)
	}
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

// testDeps are the server's collaborators with in-memory twins; the catalog is left nil.
func testDeps(t testing.TB, reg *prometheus.Registry) api.Deps {
	t.Helper()
	v, err := auth.NewHS256Verifier([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	// A hub nobody should reach unless a test points HubURL at a real fake.
	hub, _ := url.Parse("http://127.0.0.1:1")
	return api.Deps{
		Jobs: newFakeJobs(), Objects: objectstore.NewMemory(), Verifier: v,
		Log:      slog.New(slog.NewTextHandler(t.Output(), nil)),
		Registry: reg, HubURL: hub, MaxBodySize: maxBodySize,
	}
}

func token(t testing.TB, sub string, perms ...string) string {
	t.Helper()
	tok, err := auth.Mint([]byte(testSecret), auth.Principal{Subject: sub, Name: "Alice Liddell", Permissions: perms}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object (%v): %s", err, r.body)
	}
	return m
}

// apiError is the CONTRACT §3 error shape; fields are pointers so a missing key is visible.
type apiError struct {
	Error *struct {
		Code    string  `json:"code"`
		Message string  `json:"message"`
		Field   *string `json:"field"`
	} `json:"error"`
}

// checkError asserts the JSON error shape with its code and field ("" = no field key).
func (r response) checkError(t *testing.T, status int, code, field string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e apiError
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == nil {
		t.Fatalf("not the JSON error shape (%v): %s", err, r.body)
	}
	if e.Error.Code != code {
		t.Errorf("error code = %q, want %q (body %s)", e.Error.Code, code, r.body)
	}
	if e.Error.Message == "" {
		t.Errorf("error without a message: %s", r.body)
	}
	switch {
	case field == "" && e.Error.Field != nil:
		t.Errorf("error field = %q, want none (body %s)", *e.Error.Field, r.body)
	case field != "" && (e.Error.Field == nil || *e.Error.Field != field):
		t.Errorf("error field = %v, want %q (body %s)", derefOr(e.Error.Field), field, r.body)
	}
}

func derefOr(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

func (e *env) do(t *testing.T, method, path, tok string, body []byte) response {
	t.Helper()
	return e.doWith(t, method, path, tok, nil, body)
}

// doWith is do with more request headers.
func (e *env) doWith(t *testing.T, method, path, tok string, h http.Header, body []byte) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	// Plain bytes unless a test asks otherwise (Go's client would ask for gzip and hide it).
	req.Header.Set("Accept-Encoding", "identity")
	for k, v := range h {
		req.Header[k] = v
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

var errRevealing = errors.New("dial tcp 10.0.0.7:5432: password authentication failed for user exports password=hunter2")

// waitFor polls cond until it holds, failing the test after a deadline (never a bare sleep).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newCatalogDB is a throwaway products_manager with the real schema (dev/sql/catalog.sql) and a
// few rows that are hard to export: quotes, separators, line breaks, emoji, formula starts,
// NULLs, a product with two suppliers.
func newCatalogDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := pgdbtest.NewDatabase(t, "apitest")
	schema, err := os.ReadFile("../../../dev/sql/catalog.sql")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, string(schema)); err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `
		INSERT INTO categories (id, parent_id, name, slug, path) VALUES
			(1, NULL, 'Home', 'home', 'Home'), (2, 1, 'Audio', 'audio', 'Home > Audio');
		INSERT INTO suppliers (id, code, name, email, phone, country, city, active, created_at, updated_at) VALUES
			(1, 'S1', 'Acme "Paris"', 'a@x.fr', '+33 1', 'FR', 'Paris', true, '2025-01-01Z', '2025-06-01Z'),
			(2, 'S2', 'Beta', 'b@x.de', '0049', 'DE', 'Köln', false, '2025-01-01Z', '2026-02-01T08:30:00+01:00');
		INSERT INTO products (id, sku, name, description, brand, ean, price, currency, stock, status, category_id,
		                      weight_grams, attributes, created_at, updated_at) VALUES
			(1, 'SKU-1', 'Câble "Ultra", 2m', E'line1\nline2', 'Acme', '4006381333931', 12.5, 'EUR', 3, 'active', 2, 120, '{"color":"red"}', '2025-01-01Z', '2026-03-01T10:00:00Z'),
			(2, 'SKU-2', '=HYPERLINK("x")', '', 'Beta', '0000000000017', 1000000.00, 'EUR', 0, 'draft', NULL, NULL, '{}', '2025-01-01Z', '2025-03-01Z'),
			(3, 'SKU-3', 'Casque 🎧 sans fil', '-50% promo', 'Acme', '4006381333948', 0.5, 'EUR', 10, 'archived', 1, 5, '{}', '2025-01-01Z', '2025-03-01Z'),
			(4, 'SKU-4', '+33 Adapter; EU', E'@home\r', 'Acme, Inc', '', 7, 'EUR', 1, 'active', 1, NULL, '{"tags":["a;b"]}', '2025-01-01Z', '2025-03-01Z');
		INSERT INTO product_suppliers VALUES (1, 1, 'A-1', 5.00, 3, true), (1, 2, 'B-1', 6.00, 9, false), (3, 2, 'B-3', 0.1, 1, true);`)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// exportBytes is what export.Run writes for req: the bytes a stream must send.
func exportBytes(t testing.TB, db catalog.Querier, req export.Request) (*export.Spec, []byte) {
	t.Helper()
	spec, err := export.Prepare(req)
	if err != nil {
		t.Fatalf("Prepare(%+v): %v", req, err)
	}
	var buf bytes.Buffer
	if _, err := export.Run(context.Background(), db, spec, &buf, nil); err != nil {
		t.Fatalf("Run(%+v): %v", req, err)
	}
	return spec, buf.Bytes()
}
