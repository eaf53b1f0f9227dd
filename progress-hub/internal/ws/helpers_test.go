package ws

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testSecret = "test-secret"
	waitFor    = 10 * time.Second
)

// fakeJobs is the in-memory twin of the job store for snapshots.
type fakeJobs struct {
	mu      sync.Mutex
	jobs    map[string]jobstore.Job
	listErr error
	// gate, when set, holds Get until it is closed, after signalling entered.
	gate    chan struct{}
	entered chan string
}

func newFakeJobs(jobs ...jobstore.Job) *fakeJobs {
	f := &fakeJobs{jobs: map[string]jobstore.Job{}}
	for _, j := range jobs {
		f.jobs[j.ID] = j
	}
	return f
}

func (f *fakeJobs) Get(ctx context.Context, id string) (jobstore.Job, error) {
	f.mu.Lock()
	gate, entered := f.gate, f.entered
	f.mu.Unlock()
	if gate != nil {
		entered <- id
		select {
		case <-gate:
		case <-ctx.Done():
			return jobstore.Job{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return jobstore.Job{}, jobstore.ErrNotFound
	}
	return j, nil
}

func (f *fakeJobs) List(_ context.Context, filter jobstore.ListFilter) ([]jobstore.Job, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, "", f.listErr
	}
	out := make([]jobstore.Job, 0, len(f.jobs))
	for _, j := range f.jobs {
		if filter.RequestedBy == "" || j.RequestedBy == filter.RequestedBy {
			out = append(out, j)
		}
	}
	slices.SortFunc(out, func(a, b jobstore.Job) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if filter.Limit > 0 && len(out) > filter.Limit {
		out = out[:filter.Limit]
	}
	return out, "", nil
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// runningJob is a running job created i minutes after base.
func runningJob(id string, i int) jobstore.Job {
	total := int64(1000)
	return jobstore.Job{
		ID: id, TaskID: id, Entity: "products", Format: "csv", Status: jobstore.StatusRunning,
		RowsTotal: &total, Fields: []string{}, ExcludeFields: []string{}, RequestedBy: "alice",
		CreatedAt: base.Add(time.Duration(i) * time.Minute), UpdatedAt: base.Add(time.Duration(i) * time.Minute),
	}
}

// update is the progress of job id at rows, stamped rows seconds after base.
func update(id string, rows int64) job.Progress {
	total := int64(1000)
	return job.Progress{
		Type: job.TypeProgress, TaskID: id, JobID: id, Status: jobstore.StatusRunning,
		Progress: float64(rows) / 10, RowsDone: rows, RowsTotal: &total,
		UpdatedAt: base.Add(time.Hour + time.Duration(rows)*time.Second), Owner: "alice",
	}
}

// testEnv is a running hub behind an httptest server.
type testEnv struct {
	hub     *Hub
	srv     *httptest.Server
	ws      *Server
	jobs    *fakeJobs
	m       *Metrics
	stopHub context.CancelFunc
	hubDone chan struct{}
}

func newEnv(t *testing.T, jobs *fakeJobs, opts Options) *testEnv {
	t.Helper()
	log := testLogger(t)
	m := NewMetrics(prometheus.NewRegistry())
	hub := NewHub(log.With("component", "hub"), m)
	if opts.AllowedOrigins == nil {
		opts.AllowedOrigins = []string{"http://127.0.0.1:8080"}
	}
	s, err := NewServer(hub, jobs, mustVerifier(t), log.With("component", "ws"), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &testEnv{hub: hub, ws: s, jobs: jobs, m: m, stopHub: cancel, hubDone: make(chan struct{})}
	go func() {
		defer close(e.hubDone)
		_ = hub.Run(ctx)
	}()
	mux := http.NewServeMux()
	mux.Handle("/api/v1/exports/ws", s)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		cancel()
		<-e.hubDone
		wctx, wcancel := context.WithTimeout(context.Background(), waitFor)
		defer wcancel()
		if err := s.Wait(wctx); err != nil {
			t.Error(err)
		}
		e.srv.Close()
	})
	return e
}

func mustVerifier(t *testing.T) *auth.Verifier {
	t.Helper()
	v, err := auth.NewHS256Verifier([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func token(t *testing.T, perms ...string) string {
	t.Helper()
	return tokenFor(t, "alice", time.Hour, perms...)
}

func tokenFor(t *testing.T, sub string, ttl time.Duration, perms ...string) string {
	t.Helper()
	tok, err := auth.Mint([]byte(testSecret), auth.Principal{Subject: sub, Permissions: perms}, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *testEnv) url() string {
	return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/api/v1/exports/ws"
}

// wsClient is a test's WebSocket client.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

// serverMsg holds any message the server sends.
type serverMsg struct {
	Type     string          `json:"type"`
	TaskID   string          `json:"task_id"`
	JobID    string          `json:"job_id"`
	Status   jobstore.Status `json:"status"`
	RowsDone int64           `json:"rows_done"`
	Job      *jobstore.Job   `json:"job"`
	Error    *errorBody      `json:"error"`
	TaskIDs  []string        `json:"task_ids"`
	All      bool            `json:"all"`
}

func (e *testEnv) dial(t *testing.T) *wsClient {
	t.Helper()
	return e.dialWith(t, token(t, auth.PermReadExports))
}

func (e *testEnv) dialWith(t *testing.T, tok string) *wsClient {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + tok}}
	conn, resp, err := websocket.DefaultDialer.Dial(e.url(), h)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	return &wsClient{t: t, conn: conn}
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	var err error
	if s, ok := v.(string); ok {
		err = c.conn.WriteMessage(websocket.TextMessage, []byte(s))
	} else {
		err = c.conn.WriteJSON(v)
	}
	if err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *wsClient) next() serverMsg {
	c.t.Helper()
	if err := c.conn.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		c.t.Fatal(err)
	}
	_, data, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m serverMsg
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("decoding %s: %v", data, err)
	}
	return m
}

// expect reads the next message and checks its type and task id (job id for snapshots).
func (c *wsClient) expect(typ, id string) serverMsg {
	c.t.Helper()
	m := c.next()
	got := m.TaskID
	if m.Job != nil {
		got = m.Job.ID
	}
	if m.Error != nil && m.Error.TaskID != "" {
		got = m.Error.TaskID
	}
	if m.Type != typ || got != id {
		c.t.Fatalf("got %s for %q (%+v), want %s for %q", m.Type, got, m, typ, id)
	}
	return m
}

// closeErr reads until the connection ends and returns why.
func (c *wsClient) closeErr() error {
	c.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		if err := c.conn.SetReadDeadline(deadline); err != nil {
			return err
		}
		if _, _, err := c.conn.ReadMessage(); err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatal("connection still open")
			}
			return err
		}
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
