package api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/refusals"
	"github.com/productsmanager/exportplatform/pkg/server"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
	"github.com/productsmanager/exportplatform/producer-api/internal/auditlog"
)

// auditLog is an api.Auditor keeping what it is given.
type auditLog struct {
	mu  sync.Mutex
	evs []events.Accessed
}

func (l *auditLog) Audit(_ context.Context, evs ...events.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range evs {
		l.evs = append(l.evs, ev.(events.Accessed))
	}
	return nil
}

func (l *auditLog) actions() map[string][]events.Accessed {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]events.Accessed{}
	for _, ev := range l.evs {
		out[ev.Action] = append(out[ev.Action], ev)
	}
	return out
}

// TestAccessesAudited: one download, one delete, a refused access to another's job and a
// request without a token each queue exactly one access event, with the actor, the bytes and
// where the request came from.
func TestAccessesAudited(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	job := sampleJob(jobstore.StatusCompleted) // alice's
	job.RowsDone = 1
	expires := now.Add(time.Hour)
	job.ExpiresAt = &expires
	job.File = &events.Object{Key: "products/" + job.ID + "/p.csv", FileName: "p.csv", ContentType: "text/csv"}
	log := &auditLog{}
	jobs := newFakeJobs(job)
	e := newEnv(t, jobs, func(d *api.Deps) { d.Auditor, d.Now = log, func() time.Time { return now } })
	if _, err := e.objects.Put(t.Context(), job.File.Key, bytes.NewReader([]byte("sku\nA-1\n")), "text/csv"); err != nil {
		t.Fatal(err)
	}
	alice := token(t, "alice", auth.PermReadExports, auth.PermWriteExports)
	if r := e.do(t, http.MethodGet, "/api/v1/exports/download/"+job.ID, alice, nil); r.status != http.StatusOK {
		t.Fatalf("download: %d %s", r.status, r.body)
	}
	e.do(t, http.MethodGet, "/api/v1/exports/"+job.ID, token(t, "bob", auth.PermReadExports), nil).checkError(t, http.StatusNotFound, "not_found", "")
	e.do(t, http.MethodGet, "/api/v1/exports/"+job.ID, "", nil).checkError(t, http.StatusUnauthorized, auth.CodeUnauthenticated, "")
	if r := e.do(t, http.MethodDelete, "/api/v1/exports/"+job.ID, alice, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	got := log.actions()
	// The delete's audit event goes to the store with the delete (one transaction), not to
	// the Auditor after it.
	if len(got[events.ActionDeleted]) != 0 || len(jobs.deleteAudited()) != 1 {
		t.Fatalf("the delete queued %v and handed the store %v", got[events.ActionDeleted], jobs.deleteAudited())
	}
	got[events.ActionDeleted] = jobs.deleteAudited()
	if len(got) != 3 || len(got[events.ActionDownloaded]) != 1 || len(got[events.ActionDenied]) != 2 {
		t.Fatalf("audited %v", got)
	}
	d := got[events.ActionDownloaded][0]
	if d.ActorID != "alice" || d.ResourceID != job.ID || d.Owner != "alice" || *d.Bytes != 8 || !*d.Complete ||
		d.ClientIP != "127.0.0.1" || d.ID == "" || !d.At.Equal(now) || d.Entity != "products" {
		t.Errorf("download audited as %+v", d)
	}
	refused := got[events.ActionDenied]
	if refused[0].ActorID != "bob" || refused[0].ResourceID != job.ID || refused[0].Owner != "alice" || refused[0].Status != 404 {
		t.Errorf("bob's refusal audited as %+v", refused[0])
	}
	if refused[1].ActorID != "" || refused[1].Status != 401 || refused[1].ResourceID != "/api/v1/exports/"+job.ID {
		t.Errorf("the tokenless request audited as %+v", refused[1])
	}
	if del := got[events.ActionDeleted][0]; del.ActorID != "alice" || del.ID == "" || !del.At.Equal(now) || del.ClientIP != "127.0.0.1" {
		t.Errorf("delete audited as %+v", del)
	}
}

type fakeAuditLog struct{ got auditlog.Filter }

func (f *fakeAuditLog) List(_ context.Context, filter auditlog.Filter) ([]auditlog.Row, string, error) {
	f.got = filter
	return []auditlog.Row{{ID: 7, Action: events.ActionDownloaded, RiskLevel: "medium"}}, "", nil
}

// TestAuditList: the audit is MANAGE_EXPORTS only; its filters reach the store.
func TestAuditList(t *testing.T) {
	t.Parallel()
	logs := &fakeAuditLog{}
	e := newEnv(t, newFakeJobs(), func(d *api.Deps) { d.AuditLog = logs })
	e.do(t, http.MethodGet, "/api/v1/exports/audit", token(t, "alice", auth.PermReadExports, auth.PermWriteExports), nil).
		checkError(t, http.StatusForbidden, auth.CodePermissionDenied, "")
	mia := token(t, "mia", auth.PermManageExports)
	r := e.do(t, http.MethodGet, "/api/v1/exports/audit?actor=alice&risk=high&from=2026-12-01T00:00:00Z&limit=10", mia, nil)
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`"action":"export.downloaded"`)) {
		t.Fatalf("audit: %d %s", r.status, r.body)
	}
	if logs.got.Actor != "alice" || logs.got.Risk != "high" || logs.got.Limit != 10 || !logs.got.From.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("filter %+v", logs.got)
	}
	e.do(t, http.MethodGet, "/api/v1/exports/audit?risk=extreme", mia, nil).checkError(t, http.StatusBadRequest, "invalid_argument", "risk")
	// CONTRACT §4's names for the time range.
	r = e.do(t, http.MethodGet, "/api/v1/exports/audit?since=2026-11-01T00:00:00Z&until=2026-11-02T00:00:00Z", mia, nil)
	if r.status != http.StatusOK || !logs.got.From.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) ||
		!logs.got.To.Equal(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("since/until: %d, filter %+v", r.status, logs.got)
	}
	e.do(t, http.MethodGet, "/api/v1/exports/audit?since=2026-11-01T00:00:00Z&from=2026-11-01T00:00:00Z", mia, nil).
		checkError(t, http.StatusBadRequest, "invalid_argument", "from")
	e.do(t, http.MethodGet, "/api/v1/exports/audit?until=yesterday", mia, nil).checkError(t, http.StatusBadRequest, "invalid_argument", "until")
}

// TestRefusalFloodBounded: a client sending bad tokens has its first refusals of a window
// audited one by one and the rest summarised in one event with their count; the client is
// the address the trusted proxy names.
func TestRefusalFloodBounded(t *testing.T) {
	t.Parallel()
	log := &auditLog{}
	gate := refusals.New(log, slog.New(slog.NewTextHandler(io.Discard, nil)), refusals.Options{Limit: 5})
	proxies, _ := server.ParseProxies("127.0.0.1")
	e := newEnv(t, newFakeJobs(), func(d *api.Deps) { d.Auditor, d.Refusals, d.Proxies = log, gate, proxies })
	for range 30 {
		r := e.doWith(t, http.MethodGet, "/api/v1/exports", "not-a-token", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, nil)
		r.checkError(t, http.StatusUnauthorized, auth.CodeUnauthenticated, "")
	}
	if got := log.actions()[events.ActionDenied]; len(got) != 5 || got[0].ClientIP != "203.0.113.9" {
		t.Fatalf("audited one by one: %d %+v", len(got), got)
	}
	gate.Flush(t.Context(), true)
	got := log.actions()[events.ActionDenied]
	if len(got) != 6 || got[5].Suppressed != 25 || got[5].ResourceID != "refusals:203.0.113.9" {
		t.Errorf("summary %+v", got[len(got)-1])
	}
}
