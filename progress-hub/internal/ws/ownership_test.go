package ws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/refusals"
	"github.com/productsmanager/exportplatform/pkg/server"
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

// TestConnectionCaps: a user past their connections gets 429, everyone past the hub's gets
// 503; a closed connection frees its place.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs(), Options{MaxConns: 3, MaxUserConns: 2})
	dial := func(sub string) (*websocket.Conn, int) {
		h := http.Header{"Authorization": {"Bearer " + tokenFor(t, sub, time.Hour, auth.PermReadExports)}}
		c, resp, err := websocket.DefaultDialer.Dial(e.url(), h)
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return nil, resp.StatusCode
		}
		t.Cleanup(func() { c.Close() })
		return c, http.StatusSwitchingProtocols
	}
	a1, _ := dial("alice")
	if _, code := dial("alice"); code != http.StatusSwitchingProtocols {
		t.Fatalf("alice's second: %d", code)
	}
	if _, code := dial("alice"); code != http.StatusTooManyRequests {
		t.Errorf("alice's third: %d, want 429", code)
	}
	if _, code := dial("bob"); code != http.StatusSwitchingProtocols {
		t.Fatalf("bob's first: %d", code)
	}
	if _, code := dial("carol"); code != http.StatusServiceUnavailable {
		t.Errorf("a fourth connection: %d, want 503", code)
	}
	a1.Close()
	eventually(t, "alice's closed connection freed", func() bool {
		c, code := dial("carol")
		if c != nil {
			c.Close()
		}
		return code == http.StatusSwitchingProtocols
	})
	if got := testutil.ToFloat64(e.m.rejected.WithLabelValues("too_many_connections")); got < 1 {
		t.Errorf("refused as too many connections: %v, want at least 1", got)
	}
	rejectedFromStart(t, e.m)
}

// auditQueue keeps the audit events a refusal gate queues.
type auditQueue struct {
	mu  sync.Mutex
	got []events.Accessed
}

func (q *auditQueue) Audit(_ context.Context, evs ...events.Event) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, ev := range evs {
		q.got = append(q.got, ev.(events.Accessed))
	}
	return nil
}

func (q *auditQueue) reasons() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for _, ev := range q.got {
		out = append(out, fmt.Sprintf("%s %d %s %s %s", ev.Action, ev.Status, ev.Reason, ev.ActorID, ev.ClientIP))
	}
	return out
}

// TestRefusalsAudited: the hub audits its own refusals (a bad token, a missing permission, a
// foreign origin, the per-user cap, another user's job subscribed by id), each with the
// client's address as the trusted proxy (the API) names it.
func TestRefusalsAudited(t *testing.T) {
	t.Parallel()
	q := &auditQueue{}
	proxies, _ := server.ParseProxies("127.0.0.1")
	bobs := runningJob(jobB, 2)
	bobs.RequestedBy = "bob"
	e := newEnv(t, newFakeJobs(runningJob(jobA, 1), bobs), Options{MaxUserConns: 1, Proxies: proxies,
		Refusals: refusals.New(q, testLogger(t), refusals.Options{})})
	dial := func(h http.Header) int {
		h.Set("X-Forwarded-For", "203.0.113.9")
		c, resp, err := websocket.DefaultDialer.Dial(e.url(), h)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return http.StatusSwitchingProtocols
		}
		return resp.StatusCode
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	statuses := []int{
		dial(bearer("not-a-token")),
		dial(bearer(tokenFor(t, "rita", time.Hour))),
		dial(http.Header{"Authorization": {"Bearer " + tokenFor(t, "bob", time.Hour, auth.PermReadExports)}, "Origin": {"http://evil.example"}}),
	}
	bob := e.dialWith(t, tokenFor(t, "bob", time.Hour, auth.PermReadExports))
	statuses = append(statuses, dial(bearer(tokenFor(t, "bob", time.Hour, auth.PermReadExports))))
	if !slices.Equal(statuses, []int{401, 403, 403, 429}) {
		t.Fatalf("statuses %v", statuses)
	}
	bob.send(map[string]any{"type": "subscribe", "task_ids": []string{jobA}})
	bob.expect("error", jobA)
	want := []string{
		"access.denied 401 unauthenticated  203.0.113.9",
		"access.denied 403 permission_denied rita 203.0.113.9",
		"access.denied 403 origin_not_allowed  203.0.113.9",
		"rate.limited 429 too_many_connections bob 203.0.113.9",
		"access.denied 404 not_owner bob 127.0.0.1", // e.dialWith sends no X-Forwarded-For
	}
	if got := q.reasons(); !slices.Equal(got, want) {
		t.Errorf("audited\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
