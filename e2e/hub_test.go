package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// hubMsg is what the hub sends: a snapshot (job) or a push (the other fields).
type hubMsg struct {
	Type      string          `json:"type"`
	TaskID    string          `json:"task_id"`
	Status    string          `json:"status"`
	RowsDone  int64           `json:"rows_done"`
	RowsTotal *int64          `json:"rows_total"`
	Progress  float64         `json:"progress"`
	UpdatedAt time.Time       `json:"updated_at"`
	File      json.RawMessage `json:"file"`
	Job       *hubJob         `json:"job"`
}

// hubJob is the part of a job (snapshot, or GET /api/v1/exports/{id}) the hub tests compare.
type hubJob struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Progress  float64   `json:"progress"`
	RowsDone  int64     `json:"rows_done"`
	RowsTotal *int64    `json:"rows_total"`
	Phase     string    `json:"phase"`
	UpdatedAt time.Time `json:"updated_at"`
}

// dialHub opens a WebSocket straight to a hub at addr (host:port), not through the API.
func (s stack) dialHub(t *testing.T, addr string) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+s.token(t, "e2e-writer", auth.PermReadExports))
	url := "ws://" + addr + "/api/v1/exports/ws"
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, resp, err := websocket.DefaultDialer.Dial(url, h)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		if time.Now().After(deadline) {
			t.Fatalf("dialing %s: %v (HTTP %d)", url, err, status)
		}
		time.Sleep(200 * time.Millisecond) // the hub is (re)starting
	}
}

// nextMsg reads the next message within timeout.
func nextMsg(t *testing.T, c *websocket.Conn, timeout time.Duration) (hubMsg, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var m hubMsg
	_, data, err := c.ReadMessage()
	if err != nil {
		return m, err
	}
	checkPush(data)
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("message is not JSON: %v: %s", err, data)
	}
	return m, nil
}

// waitPush reads until a message about job satisfies ok, failing after timeout.
func waitPush(t *testing.T, c *websocket.Conn, name, job string, timeout time.Duration, ok func(hubMsg) bool) hubMsg {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("%s: no message of job %s as wanted within %s", name, job, timeout)
		}
		m, err := nextMsg(t, c, left)
		if err != nil {
			t.Fatalf("%s: reading: %v", name, err)
		}
		if m.TaskID == job && ok(m) {
			return m
		}
	}
}

// startHub runs a second progress-hub process beside the stack's, on addr, logging to
// .stack/logs/e2e-ID.log; it shares the stack's settings (database, Kafka, fold group).
func (s stack) startHub(t *testing.T, id, addr string) {
	t.Helper()
	s.startService(t, "progress-hub", id, addr, "HUB_ADDR="+addr)
}

func hubAddr() string { return env("HUB_ADDR", "127.0.0.1:8081") }

// TestHubReplicasEachPushEveryEvent: with two hubs running, a client of each receives the
// progress and the completion of one export (each hub reads every partition itself).
func TestHubReplicasEachPushEveryEvent(t *testing.T) {
	s := getStack(t)
	const second = "127.0.0.1:18081"
	s.startHub(t, "e2e-hub-second", second)
	a, b := s.dialHub(t, hubAddr()), s.dialHub(t, second)
	for _, c := range []*websocket.Conn{a, b} {
		if err := c.WriteJSON(map[string]any{"type": "subscribe", "all": true}); err != nil {
			t.Fatal(err)
		}
	}
	job := s.requestCSV(t, s.writer(t))
	t.Logf("job %s", job.JobID)
	for name, c := range map[string]*websocket.Conn{"stack hub": a, "second hub": b} {
		running := waitPush(t, c, name, job.JobID, 2*time.Minute, func(m hubMsg) bool {
			return m.Type == "progress" && m.Status == "running"
		})
		done := waitPush(t, c, name, job.JobID, 5*time.Minute, func(m hubMsg) bool {
			return m.Type != "progress" && m.Type != "snapshot"
		})
		if done.Type != "completed" || done.Status != "completed" || len(done.File) == 0 || done.File[0] != '{' {
			t.Fatalf("%s: end of job %+v", name, done)
		}
		if done.RowsTotal == nil || done.RowsDone != *done.RowsTotal || done.Progress != 100 {
			t.Errorf("%s: completed push rows %d of %v, progress %v", name, done.RowsDone, done.RowsTotal, done.Progress)
		}
		t.Logf("%s: running at rows %d, then completed with %d rows", name, running.RowsDone, done.RowsDone)
	}
}

// TestHubRestartMidJob: the hub restarts while a job runs. Its clients are closed with 1001
// (going away); a client reconnecting gets a snapshot equal to the job row, then the
// completion.
func TestHubRestartMidJob(t *testing.T) {
	s := getStack(t)
	c := s.dialHub(t, hubAddr())
	// Excel is the slowest format: the job outlives the restart on any catalog the tests seed.
	job := s.requestExport(t, s.writer(t), "excel", "products", map[string]any{})
	t.Logf("job %s", job.JobID)
	if err := c.WriteJSON(map[string]any{"type": "subscribe", "task_ids": []string{job.JobID}}); err != nil {
		t.Fatal(err)
	}
	waitPush(t, c, "before restart", job.JobID, 2*time.Minute, func(m hubMsg) bool {
		return m.Type == "progress" && m.Status == "running"
	})

	s.stackCmd(t, "restart", "progress-hub")
	// The old connection ends with a close frame: 1001 going away.
	var closeErr *websocket.CloseError
	for {
		_, err := nextMsg(t, c, 30*time.Second)
		if err == nil {
			continue // pushes sent before the close
		}
		if !errors.As(err, &closeErr) {
			t.Fatalf("old connection ended without a close frame: %v", err)
		}
		break
	}
	if closeErr.Code != websocket.CloseGoingAway {
		t.Errorf("close code %d (%q), want %d going away", closeErr.Code, closeErr.Text, websocket.CloseGoingAway)
	}

	c = s.dialHub(t, hubAddr())
	if err := c.WriteJSON(map[string]any{"type": "subscribe", "task_ids": []string{job.JobID}}); err != nil {
		t.Fatal(err)
	}
	snap, err := nextMsg(t, c, 30*time.Second)
	if err != nil || snap.Type != "snapshot" || snap.Job == nil || snap.Job.ID != job.JobID {
		t.Fatalf("first message after reconnecting: %+v, %v", snap, err)
	}
	row := s.jobJSON(t, job.JobID)
	switch {
	case row.UpdatedAt.Equal(snap.Job.UpdatedAt):
		if !sameJob(*snap.Job, row) {
			t.Errorf("snapshot %+v differs from the job row %+v", *snap.Job, row)
		}
	case row.UpdatedAt.After(snap.Job.UpdatedAt):
		// The job moved on between the snapshot and the GET: the snapshot must not be older
		// than what came before the restart, and the next push must be newer than it.
		t.Logf("job moved on after the snapshot (%s → %s)", snap.Job.UpdatedAt, row.UpdatedAt)
	default:
		t.Fatalf("snapshot updated_at %s is newer than the job row's %s", snap.Job.UpdatedAt, row.UpdatedAt)
	}
	if snap.Job.Status == "completed" {
		t.Logf("the job completed during the restart: the snapshot is the completion")
		return
	}
	if snap.Job.Status != "running" && snap.Job.Status != "queued" {
		t.Fatalf("snapshot status %s", snap.Job.Status)
	}
	done := waitPush(t, c, "after restart", job.JobID, 5*time.Minute, func(m hubMsg) bool {
		if m.Type == "snapshot" {
			return false
		}
		if !m.UpdatedAt.After(snap.Job.UpdatedAt) {
			t.Errorf("push %+v not newer than the snapshot (%s)", m, snap.Job.UpdatedAt)
		}
		return m.Type != "progress"
	})
	if done.Type != "completed" || len(done.File) == 0 {
		t.Fatalf("end of job %+v", done)
	}
	final := s.jobJSON(t, job.JobID)
	if final.Status != "completed" || final.RowsDone != done.RowsDone || !final.UpdatedAt.Equal(done.UpdatedAt) {
		t.Errorf("completion push %+v differs from the job row %+v", done, final)
	}
}

func sameJob(a, b hubJob) bool {
	total := func(p *int64) int64 {
		if p == nil {
			return -1
		}
		return *p
	}
	return a.ID == b.ID && a.Status == b.Status && a.Progress == b.Progress && a.RowsDone == b.RowsDone &&
		total(a.RowsTotal) == total(b.RowsTotal) && a.Phase == b.Phase && a.UpdatedAt.Equal(b.UpdatedAt)
}

// jobJSON is GET /api/v1/exports/{id}.
func (s stack) jobJSON(t *testing.T, id string) hubJob {
	t.Helper()
	code, body := s.do(t, http.MethodGet, "/api/v1/exports/"+id, s.token(t, "e2e-writer", auth.PermReadExports), nil)
	if code != http.StatusOK {
		t.Fatalf("GET job = %d %s", code, body)
	}
	var j hubJob
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	return j
}
