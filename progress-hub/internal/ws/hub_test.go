package ws

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/telemetry/telemetrytest"
)

// runHub starts a hub with no network in front of it.
func runHub(t *testing.T) *Hub {
	t.Helper()
	h := NewHub(testLogger(t), NewMetrics(nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return h
}

// fakeClient registers a client with no connection and subscribes it to every job.
func fakeClient(t *testing.T, h *Hub, id uint64, buffer int) *client {
	t.Helper()
	c := newClient(id, auth.Principal{Subject: "alice"}, buffer)
	if !send(h, h.register, c) ||
		!h.beginSubscription(c, nil, true) ||
		!send(h, h.complete, completeReq{c: c, all: true}) {
		t.Fatal("hub stopped")
	}
	return c
}

func recv(t *testing.T, c *client) (job.Progress, bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		c.out.mu.Lock()
		q, closed := c.out.queue, c.out.closed
		if len(q) > 0 {
			c.out.queue = q[1:]
		}
		c.out.mu.Unlock()
		if len(q) > 0 {
			var u job.Progress
			if err := json.Unmarshal(q[0], &u); err != nil {
				t.Fatal(err)
			}
			return u, true
		}
		if closed {
			return job.Progress{}, false
		}
		if time.Now().After(deadline) {
			t.Fatal("no message")
		}
		time.Sleep(time.Millisecond) // polling the fake client's queue, which no writer drains
	}
}

func TestHubDropsSlowClientKeepsFastOne(t *testing.T) {
	t.Parallel()
	h := runHub(t)
	const buffer = 4
	fast := fakeClient(t, h, 1, buffer)
	slow := fakeClient(t, h, 2, buffer)
	for i := range int64(3 * buffer) {
		if err := h.Push(t.Context(), update("job-a", i)); err != nil {
			t.Fatal(err)
		}
		u, ok := recv(t, fast)
		if !ok || u.RowsDone != i {
			t.Fatalf("fast client got %+v (open %v), want rows_done %d", u, ok, i)
		}
	}
	// The slow client got the first messages into its buffer, then was dropped.
	for i := range int64(buffer) {
		if u, ok := recv(t, slow); !ok || u.RowsDone != i {
			t.Fatalf("slow client message %d: %+v (open %v)", i, u, ok)
		}
	}
	if _, ok := recv(t, slow); ok {
		t.Fatal("slow client still open")
	}
	if code, _ := slow.out.closeFrame(); code != websocket.CloseTryAgainLater {
		t.Errorf("close code %d, want %d", code, websocket.CloseTryAgainLater)
	}
	if got := testutil.ToFloat64(h.m.dropped); got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.m.clients); got != 1 {
		t.Errorf("clients = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.m.pushed); got != 3*buffer+buffer {
		t.Errorf("pushed = %v, want %d", got, 3*buffer+buffer)
	}
}

func TestHubPushAfterStopReturns(t *testing.T) {
	t.Parallel()
	h := NewHub(testLogger(t), NewMetrics(nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.Run(ctx)
	}()
	c := fakeClient(t, h, 1, 8)
	cancel()
	<-done
	if _, ok := recv(t, c); ok {
		t.Fatal("client not closed when the hub stopped")
	}
	if code, _ := c.out.closeFrame(); code != websocket.CloseGoingAway {
		t.Errorf("close code %d, want %d", code, websocket.CloseGoingAway)
	}
	// Nobody is connected any more: Push neither blocks nor fails, whatever the buffer holds.
	for i := range int64(200) {
		if err := h.Push(t.Context(), update("job-a", i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHubShutdownRefusesNewClients(t *testing.T) {
	t.Parallel()
	h := runHub(t)
	before := fakeClient(t, h, 1, 8)
	h.Shutdown()
	if _, ok := recv(t, before); ok {
		t.Fatal("client not closed on shutdown")
	}
	after := newClient(2, auth.Principal{Subject: "alice"}, 8)
	send(h, h.register, after)
	if _, ok := recv(t, after); ok {
		t.Fatal("client registered after shutdown")
	}
	// Updates are still accepted while the hub runs.
	if err := h.Push(t.Context(), update("job-a", 1)); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotsOfABigSubscriptionDoNotDropTheClient: a client re-subscribing to more jobs than
// its send buffer holds gets every snapshot (its own request's answer), and its buffer keeps
// room for pushes; only pushes beyond that make it slow.
func TestSnapshotsOfABigSubscriptionDoNotDropTheClient(t *testing.T) {
	t.Parallel()
	h := runHub(t)
	const buffer = 8
	c := newClient(1, auth.Principal{Subject: "alice"}, buffer) // nothing drains its queue
	if !send(h, h.register, c) {
		t.Fatal("hub stopped")
	}
	var ids []string
	var msgs [][]byte
	for i := range 300 {
		id := fmt.Sprintf("job-%03d", i)
		ids = append(ids, id)
		msgs = append(msgs, encode(update(id, 0)))
	}
	if !h.beginSubscription(c, ids, false) || !send(h, h.complete, completeReq{c: c, msgs: msgs, ids: ids}) {
		t.Fatal("hub stopped")
	}
	for i := range int64(buffer) {
		if err := h.Push(t.Context(), update("job-000", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "300 snapshots and 8 pushes queued", func() bool {
		c.out.mu.Lock()
		defer c.out.mu.Unlock()
		return len(c.out.queue) == 300+buffer && !c.out.closed
	})
}

// TestHubEndsEveryPushSpan: a "websocket push" span ends whether its update was handed to
// clients, still queued when the hub stopped, or pushed after (Push may queue into the buffer
// of a stopped hub). Not parallel: it records spans.
func TestHubEndsEveryPushSpan(t *testing.T) {
	rec := telemetrytest.Record(t)
	h := NewHub(testLogger(t), NewMetrics(nil))
	for i := range int64(20) {
		if err := h.Push(t.Context(), update("job-a", i)); err != nil { // queued: Run not started
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range int64(40) {
		if err := h.Push(t.Context(), update("job-a", 100+i)); err != nil {
			t.Fatal(err)
		}
	}
	started, ended := len(rec.Started()), len(rec.Ended())
	if started != 60 || ended != started {
		t.Errorf("%d push spans started, %d ended; want 60 and every one", started, ended)
	}
	if n := len(h.updates); n != 0 {
		t.Errorf("%d updates left queued in a stopped hub", n)
	}
}
