package api_test

import (
	"bytes"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
)

func TestCancel(t *testing.T) {
	t.Parallel()
	queued, running, completed := sampleJob(jobstore.StatusQueued), sampleJob(jobstore.StatusRunning), sampleJob(jobstore.StatusCompleted)
	e := newEnv(t, newFakeJobs(queued, running, completed))
	write := token(t, "alice", auth.PermReadExports, auth.PermWriteExports)
	read := token(t, "alice", auth.PermReadExports)

	for _, j := range []jobstore.Job{queued, running} {
		r := e.do(t, "POST", "/api/v1/exports/"+j.ID+"/cancel", write, nil)
		if r.status != 200 {
			t.Fatalf("cancel %s: %d %s", j.Status, r.status, r.body)
		}
		body := r.json(t)
		if body["status"] != "cancelled" || body["task_id"] != j.ID || body["cancelled_by"] != "alice" {
			t.Errorf("cancel %s answered %v", j.Status, body)
		}
	}
	if n := e.notified.Load(); n != 2 {
		t.Errorf("the outbox relay was woken %d times, want 2 (its ExportCancelled waits there)", n)
	}
	e.do(t, "POST", "/api/v1/exports/"+completed.ID+"/cancel", write, nil).checkError(t, 409, "already_finished", "")
	e.do(t, "POST", "/api/v1/exports/"+queued.ID+"/cancel", write, nil).checkError(t, 409, "already_finished", "")
	e.do(t, "POST", "/api/v1/exports/5f1c2b9e-0000-4000-8000-000000000000/cancel", write, nil).checkError(t, 404, "not_found", "")
	e.do(t, "POST", "/api/v1/exports/"+running.ID+"/cancel", read, nil).checkError(t, 403, "permission_denied", "")
	e.do(t, "GET", "/api/v1/exports/"+running.ID+"/cancel", read, nil).checkError(t, 405, "method_not_allowed", "")
	m := e.do(t, "GET", "/metrics", "", nil)
	if !bytes.Contains(m.body, []byte("export_jobs_cancelled_total 2")) {
		t.Errorf("/metrics lacks export_jobs_cancelled_total 2:\n%s", grepLines(m.body, "cancelled"))
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	completed, running := sampleJob(jobstore.StatusCompleted), sampleJob(jobstore.StatusRunning)
	completed.File = &events.Object{Key: "products/" + completed.ID + "/products.csv", FileName: "products.csv"}
	jobs := newFakeJobs(completed, running)
	e := newEnv(t, jobs)
	if _, err := e.objects.Put(t.Context(), completed.File.Key, bytes.NewReader([]byte("sku\n")), "text/csv"); err != nil {
		t.Fatal(err)
	}
	write := token(t, "alice", auth.PermReadExports, auth.PermWriteExports)

	for _, j := range []jobstore.Job{completed, running} {
		if r := e.do(t, "DELETE", "/api/v1/exports/"+j.ID, write, nil); r.status != 204 || len(r.body) != 0 {
			t.Fatalf("delete %s: %d %s", j.Status, r.status, r.body)
		}
		e.do(t, "GET", "/api/v1/exports/"+j.ID, write, nil).checkError(t, 404, "not_found", "")
	}
	if keys, _ := e.objects.List(t.Context(), ""); len(keys) != 0 {
		t.Errorf("the deleted job's file stays: %q", keys)
	}
	jobs.mu.Lock()
	removed := slices.Clone(jobs.removed)
	jobs.mu.Unlock()
	if !slices.Equal(removed, []string{completed.ID}) {
		t.Errorf("file removals recorded for %q, want the completed job's alone", removed)
	}
	e.do(t, "DELETE", "/api/v1/exports/"+completed.ID, write, nil).checkError(t, 404, "not_found", "")
	e.do(t, "DELETE", "/api/v1/exports/"+running.ID, token(t, "alice", auth.PermReadExports), nil).checkError(t, 403, "permission_denied", "")
}

// TestDownloadAfterExpiry: the API's clock decides, even before the sweeper removed the file.
func TestDownloadAfterExpiry(t *testing.T) {
	t.Parallel()
	job := sampleJob(jobstore.StatusCompleted)
	expires := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	job.ExpiresAt = &expires
	job.File = &events.Object{Key: "products/" + job.ID + "/products.csv", FileName: "products.csv", ContentType: "text/csv"}
	var now time.Time
	e := newEnv(t, newFakeJobs(job), func(d *api.Deps) { d.Now = func() time.Time { return now } })
	if _, err := e.objects.Put(t.Context(), job.File.Key, bytes.NewReader([]byte("sku\n")), "text/csv"); err != nil {
		t.Fatal(err)
	}
	tok := token(t, "alice", auth.PermReadExports)
	now = expires.Add(-time.Second)
	if r := e.do(t, "GET", "/api/v1/exports/download/"+job.ID, tok, nil); r.status != 200 || string(r.body) != "sku\n" {
		t.Errorf("a second before expiry: %d %q", r.status, r.body)
	}
	now = expires
	e.do(t, "GET", "/api/v1/exports/download/"+job.ID, tok, nil).checkError(t, 410, "expired", "")
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs())
	tok := token(t, "mia", auth.PermReadExports, auth.PermManageExports)
	q := url.Values{"status": {"running"}, "entity": {"suppliers"}, "format": {"excel"}, "requested_by": {"bob"},
		"schedule_id": {"nightly"}, "created_after": {"2026-01-01T00:00:00Z"}, "created_before": {"2026-02-01T00:00:00+01:00"}}
	if r := e.do(t, "GET", "/api/v1/exports?"+q.Encode(), tok, nil); r.status != 200 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	calls := e.jobs.listCalls()
	got := calls[len(calls)-1]
	want := jobstore.ListFilter{Status: "running", Entity: "suppliers", Format: "excel", RequestedBy: "bob", ScheduleID: "nightly",
		CreatedAfter: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), CreatedBefore: time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC), Limit: 50}
	if !got.CreatedAfter.Equal(want.CreatedAfter) || !got.CreatedBefore.Equal(want.CreatedBefore) {
		t.Errorf("created range %v..%v, want %v..%v", got.CreatedAfter, got.CreatedBefore, want.CreatedAfter, want.CreatedBefore)
	}
	got.CreatedAfter, got.CreatedBefore, want.CreatedAfter, want.CreatedBefore = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got != want {
		t.Errorf("filter %+v, want %+v", got, want)
	}
	for _, bad := range []struct{ query, field string }{
		{"entity=categories", "entity"}, {"format=xml", "format"}, {"created_after=yesterday", "created_after"},
		{"created_before=2026-01-01", "created_before"}, {"colour=red", "colour"}, {"status=done", "status"},
	} {
		e.do(t, "GET", "/api/v1/exports?"+bad.query, tok, nil).checkError(t, 400, "invalid_argument", bad.field)
	}
}
