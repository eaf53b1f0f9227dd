package ws

import (
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// TestSubscriptionsReachOwnJobsOnly: without MANAGE_EXPORTS, {"all": true} shows and streams
// the caller's own jobs, and another's job subscribed by id is "not found"; a manager's
// {"all": true} covers everyone's.
func TestSubscriptionsReachOwnJobsOnly(t *testing.T) {
	t.Parallel()
	bobs := runningJob(jobB, 2)
	bobs.RequestedBy = "bob"
	e := newEnv(t, newFakeJobs(runningJob(jobA, 1), bobs), Options{})
	bob := e.dialWith(t, tokenFor(t, "bob", time.Hour, auth.PermReadExports))
	manager := e.dialWith(t, tokenFor(t, "mia", time.Hour, auth.PermReadExports, auth.PermManageExports))

	bob.send(map[string]any{"type": "subscribe", "all": true})
	bob.expect("snapshot", jobB) // alice's jobA is not in it
	bob.send(map[string]any{"type": "subscribe", "task_ids": []string{jobA}})
	if m := bob.expect("error", jobA); m.Error.Code != codeNotFound {
		t.Errorf("bob subscribing to alice's job: %+v", m.Error)
	}
	manager.send(map[string]any{"type": "subscribe", "all": true})
	manager.expect("snapshot", jobB)
	manager.expect("snapshot", jobA)

	push(t, e, jobA, 7) // alice's
	u := update(jobB, 8)
	u.Owner = "bob"
	if err := e.hub.Push(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	manager.expect("progress", jobA)
	manager.expect("progress", jobB)
	if m := bob.expect("progress", jobB); m.RowsDone != 8 {
		t.Errorf("bob got %+v", m) // had alice's push reached bob, it would come first
	}
}

// TestConnectionClosedWhenTokenExpires: the hub closes the connection with 4401 at the token's
// expiry, even while the client keeps it busy.
func TestConnectionClosedWhenTokenExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs(runningJob(jobA, 1)), Options{})
	tok := tokenFor(t, "alice", 2*time.Second, auth.PermReadExports) // exp is whole seconds
	c := e.dialWith(t, tok)
	p, err := mustVerifier(t).Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	c.send(map[string]any{"type": "subscribe", "task_ids": []string{jobA}})
	c.expect("snapshot", jobA)
	err = c.closeErr()
	closedAt := time.Now()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseTokenExpired {
		t.Fatalf("connection ended with %v, want close code %d", err, CloseTokenExpired)
	}
	if closedAt.Before(p.Expires) || closedAt.After(p.Expires.Add(time.Second)) {
		t.Errorf("closed at %v, token expired at %v: want within 1 s after", closedAt, p.Expires)
	}
}
