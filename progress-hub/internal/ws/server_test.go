package ws

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/server"
)

const (
	jobA = "0195a000-0000-7000-8000-00000000000a"
	jobB = "0195a000-0000-7000-8000-00000000000b"
	jobC = "0195a000-0000-7000-8000-00000000000c"
	jobD = "0195a000-0000-7000-8000-00000000000d"
)

func push(t *testing.T, e *testEnv, id string, rows int64) {
	t.Helper()
	if err := e.hub.Push(t.Context(), update(id, rows)); err != nil {
		t.Fatal(err)
	}
}

func TestSubscribeByIDsSnapshotThenPushes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs(runningJob(jobA, 1), runningJob(jobB, 2)), Options{})
	c := e.dial(t)
	c.send(map[string]any{"type": "subscribe", "task_ids": []string{jobA, "nope", jobA}})
	snap := c.expect("snapshot", jobA)
	if snap.Job.Entity != "products" || snap.Job.Status != jobstore.StatusRunning {
		t.Errorf("snapshot job = %+v", snap.Job)
	}
	if m := c.expect("error", "nope"); m.Error.Code != codeNotFound {
		t.Errorf("unknown id: %+v", m.Error)
	}
	push(t, e, jobB, 5) // not subscribed
	push(t, e, jobA, 10)
	if m := c.expect("progress", jobA); m.RowsDone != 10 || m.JobID != jobA || m.Status != jobstore.StatusRunning {
		t.Errorf("push = %+v", m)
	}
	push(t, e, jobA, 20)
	if m := c.expect("progress", jobA); m.RowsDone != 20 {
		t.Errorf("push = %+v", m)
	}
}

func TestSubscribeAllGetsRecentSnapshotsAndEveryPush(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs(runningJob(jobA, 1), runningJob(jobB, 2), runningJob(jobC, 3)), Options{AllSnapshots: 2})
	all := e.dial(t)
	one := e.dial(t)
	all.send(map[string]any{"type": "subscribe", "all": true})
	all.expect("snapshot", jobC) // newest first, at most AllSnapshots
	all.expect("snapshot", jobB)
	one.send(map[string]any{"type": "subscribe", "task_ids": []string{jobA}})
	one.expect("snapshot", jobA)

	push(t, e, jobD, 1) // a job no snapshot showed
	push(t, e, jobA, 2)
	all.expect("progress", jobD)
	all.expect("progress", jobA)
	one.expect("progress", jobA)
	if got := testutil.ToFloat64(e.m.pushed); got != 3 {
		t.Errorf("pushed = %v, want 3", got)
	}
	if got := testutil.ToFloat64(e.m.clients); got != 2 {
		t.Errorf("clients = %v, want 2", got)
	}
}

func TestUnsubscribedJobsAreNotPushed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs(runningJob(jobA, 1), runningJob(jobB, 2)), Options{})
	c := e.dial(t)
	c.send(map[string]any{"type": "subscribe", "task_ids": []string{jobA, jobB}})
	c.expect("snapshot", jobA)
	c.expect("snapshot", jobB)
	c.send(map[string]any{"type": "unsubscribe", "task_ids": []string{jobB}})
	if m := c.next(); m.Type != "unsubscribed" || len(m.TaskIDs) != 1 || m.TaskIDs[0] != jobB {
		t.Fatalf("unsubscribe answer = %+v", m)
	}
	push(t, e, jobB, 1)
	push(t, e, jobA, 2)
	c.expect("progress", jobA)

	c.send(map[string]any{"type": "subscribe", "all": true})
	c.expect("snapshot", jobB)
	c.expect("snapshot", jobA)
	c.send(map[string]any{"type": "unsubscribe", "all": true})
	if m := c.next(); m.Type != "unsubscribed" || !m.All {
		t.Fatalf("unsubscribe answer = %+v", m)
	}
	push(t, e, jobA, 3)
	push(t, e, jobB, 3)
	c.send(map[string]any{"type": "ping"})
	c.expect("pong", "") // nothing was pushed before it
}

func TestSnapshotHoldsBackOlderUpdates(t *testing.T) {
	t.Parallel()
	jobs := newFakeJobs()
	snap := runningJob(jobA, 1)
	snap.RowsDone = 30
	snap.UpdatedAt = update(jobA, 30).UpdatedAt
	jobs.jobs[jobA] = snap
	jobs.gate, jobs.entered = make(chan struct{}), make(chan string, 1)
	e := newEnv(t, jobs, Options{})
	c := e.dial(t)
	c.send(map[string]any{"type": "subscribe", "task_ids": []string{jobA}})
	<-jobs.entered       // the snapshot is being read: updates now are held back
	push(t, e, jobA, 20) // older than the snapshot: dropped
	push(t, e, jobA, 30) // the snapshot's own state: dropped
	push(t, e, jobA, 40) // newer: follows the snapshot
	close(jobs.gate)
	if m := c.expect("snapshot", jobA); m.Job.RowsDone != 30 {
		t.Fatalf("snapshot rows_done %d", m.Job.RowsDone)
	}
	if m := c.expect("progress", jobA); m.RowsDone != 40 {
		t.Fatalf("first push rows_done %d, want 40", m.RowsDone)
	}
}

func TestBadMessagesAreAnsweredAndTheConnectionStays(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs(runningJob(jobA, 1)), Options{MaxIDs: 2})
	c := e.dial(t)
	tests := []struct {
		name      string
		msg       string
		wantField string
	}{
		{"not json", "hello", ""},
		{"wrong shape", `{"type": "subscribe", "task_ids": "x"}`, ""},
		{"no type", `{"task_ids": ["x"]}`, "type"},
		{"unknown type", `{"type": "subscribe_everything"}`, "type"},
		{"nothing to subscribe", `{"type": "subscribe"}`, "task_ids"},
		{"too many ids", `{"type": "subscribe", "task_ids": ["a", "b", "c"]}`, "task_ids"},
	}
	for _, tt := range tests {
		c.send(tt.msg)
		m := c.next()
		if m.Type != "error" || m.Error == nil || m.Error.Code != codeInvalidArgument || m.Error.Field != tt.wantField {
			t.Errorf("%s: got %+v (error %+v), want invalid_argument on %q", tt.name, m, m.Error, tt.wantField)
		}
	}
	c.send(map[string]any{"type": "subscribe", "task_ids": []string{jobA}})
	c.expect("snapshot", jobA)
}

func TestSubscribeAllWhenListingFails(t *testing.T) {
	t.Parallel()
	jobs := newFakeJobs(runningJob(jobA, 1))
	jobs.listErr = errors.New("database down")
	e := newEnv(t, jobs, Options{})
	c := e.dial(t)
	c.send(map[string]any{"type": "subscribe", "all": true})
	if m := c.next(); m.Type != "error" || m.Error.Code != codeUnavailable {
		t.Fatalf("got %+v", m)
	}
	push(t, e, jobA, 1) // not subscribed: the subscription failed
	c.send(map[string]any{"type": "ping"})
	c.expect("pong", "")
}

func TestHandshakeRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs(), Options{})
	tests := []struct {
		name       string
		method     string
		url        string
		header     http.Header
		wantStatus int
		wantCode   string
	}{
		{name: "no token", wantStatus: 401, wantCode: auth.CodeUnauthenticated},
		{name: "bad token", header: http.Header{"Authorization": {"Bearer not.a.jwt"}}, wantStatus: 401, wantCode: auth.CodeUnauthenticated},
		{name: "not a bearer", header: http.Header{"Authorization": {"Basic YTpi"}}, wantStatus: 401, wantCode: auth.CodeUnauthenticated},
		{name: "wrong secret", header: http.Header{"Authorization": {"Bearer " + foreignToken(t)}}, wantStatus: 401, wantCode: auth.CodeUnauthenticated},
		{name: "no READ_EXPORTS", header: http.Header{"Authorization": {"Bearer " + token(t, auth.PermWriteExports)}}, wantStatus: 403, wantCode: auth.CodePermissionDenied},
		{name: "origin not allowed", header: http.Header{"Authorization": {"Bearer " + token(t, auth.PermReadExports)}, "Origin": {"http://evil.example"}}, wantStatus: 403, wantCode: "origin_not_allowed"},
		{name: "POST", method: http.MethodPost, header: http.Header{"Authorization": {"Bearer " + token(t, auth.PermReadExports)}}, wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "plain GET, no upgrade", method: http.MethodGet, header: http.Header{"Authorization": {"Bearer " + token(t, auth.PermReadExports)}}, wantStatus: 400, wantCode: "bad_handshake"},
		{name: "allowed origin", header: http.Header{"Authorization": {"Bearer " + token(t, auth.PermReadExports)}, "Origin": {"HTTP://127.0.0.1:8080"}}, wantStatus: 101},
		{name: "token in query", url: "?access_token=" + token(t, auth.PermReadExports), wantStatus: 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *http.Response
			if tt.method != "" {
				req, err := http.NewRequestWithContext(t.Context(), tt.method, e.srv.URL+"/api/v1/exports/ws"+tt.url, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header = tt.header
				if resp, err = http.DefaultClient.Do(req); err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
			} else {
				conn, r, err := websocket.DefaultDialer.Dial(e.url()+tt.url, tt.header)
				if err == nil {
					conn.Close()
				}
				if r == nil {
					t.Fatalf("no response: %v", err)
				}
				resp = r
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus == 101 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("content type %q", ct)
			}
			body, _ := io.ReadAll(resp.Body)
			var eb server.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != tt.wantCode || eb.Error.Message == "" {
				t.Errorf("body %s, want code %s", body, tt.wantCode)
			}
		})
	}
	rejectedFromStart(t, e.m)
}

func foreignToken(t *testing.T) string {
	tok, err := auth.Mint([]byte("another-secret"), auth.Principal{Subject: "mallory", Permissions: []string{auth.PermReadExports}}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSlowConnectionIsDroppedFastOneKeepsReceiving(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs(runningJob(jobA, 1)), Options{SendBuffer: 8, WriteWait: 300 * time.Millisecond})
	fast, slow := e.dial(t), e.dial(t)
	for _, c := range []*wsClient{fast, slow} {
		c.send(map[string]any{"type": "subscribe", "task_ids": []string{jobA}})
		c.expect("snapshot", jobA)
	}
	// Big updates fill the slow client's socket buffers quickly; it never reads again.
	big := update(jobA, 0)
	big.Error = &jobstore.JobError{Code: "x", Message: strings.Repeat("x", 32<<10)}
	deadline := time.Now().Add(waitFor)
	var rows int64
	for testutil.ToFloat64(e.m.dropped) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("slow client not dropped after %d updates", rows)
		}
		rows++
		big.RowsDone = rows
		if err := e.hub.Push(t.Context(), big); err != nil {
			t.Fatal(err)
		}
		if m := fast.next(); m.RowsDone != rows { // lockstep, so the fast one is never behind
			t.Fatalf("fast client got rows_done %d, want %d", m.RowsDone, rows)
		}
	}
	push(t, e, jobA, rows+1)
	if m := fast.expect("progress", jobA); m.RowsDone != rows+1 {
		t.Fatalf("fast client got rows_done %d after the drop", m.RowsDone)
	}
	// The slow client's connection ends: what was on the wire, then the end.
	if err := slow.closeErr(); err == nil {
		t.Fatal("slow connection still open")
	}
	eventually(t, "clients gauge at 1", func() bool { return testutil.ToFloat64(e.m.clients) == 1 })
}

func TestServerPingsIdleConnections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs(), Options{PingInterval: 20 * time.Millisecond})
	c := e.dial(t)
	pinged := make(chan struct{}, 1)
	c.conn.SetPingHandler(func(data string) error {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return c.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	readDone := make(chan error, 1)
	go func() {
		_, _, err := c.conn.ReadMessage() // control frames are handled while reading
		readDone <- err
	}()
	select {
	case <-pinged:
	case <-time.After(waitFor):
		t.Fatal("no ping")
	}
	c.conn.Close()
	<-readDone
}

func TestShutdownClosesConnectionsWithGoingAway(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs(), Options{})
	c := e.dial(t)
	c.send(map[string]any{"type": "ping"})
	c.expect("pong", "")
	e.hub.Shutdown()
	err := c.closeErr()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("close error %v, want going away", err)
	}
	eventually(t, "clients gauge at 0", func() bool { return testutil.ToFloat64(e.m.clients) == 0 })
}

func TestReadLimitClosesConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs(), Options{ReadLimit: 1024})
	c := e.dial(t)
	c.send(`{"type": "subscribe", "task_ids": ["` + strings.Repeat("x", 2048) + `"]}`)
	if err := c.closeErr(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("close error %v, want message too big", err)
	}
}
