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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
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
}

type envOpt func(*api.Deps)

func newEnv(t *testing.T, jobs *fakeJobs, opts ...envOpt) *env {
	t.Helper()
	v, err := auth.NewHS256Verifier([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{jobs: jobs, objects: objectstore.NewMemory(), registry: prometheus.NewRegistry()}
	// A hub nobody should reach unless a test points HubURL at a real fake.
	hub, _ := url.Parse("http://127.0.0.1:1")
	d := api.Deps{
		Jobs: jobs, Objects: e.objects, Verifier: v,
		Log:      slog.New(slog.NewTextHandler(t.Output(), nil)),
		Registry: e.registry, HubURL: hub, MaxBodySize: maxBodySize,
		Notify: func() { e.notified.Add(1) },
	}
	for _, o := range opts {
		o(&d)
	}
	e.hub = d.HubURL
	e.srv = httptest.NewServer(api.NewServer(d))
	t.Cleanup(e.srv.Close)
	return e
}

func token(t *testing.T, sub string, perms ...string) string {
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
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
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
