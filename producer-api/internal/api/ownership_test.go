package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
)

// TestJobsOwnership: without MANAGE_EXPORTS another user's job answers 404 on every endpoint
// (nothing about it is revealed, nothing is changed), a list holds only the caller's jobs;
// MANAGE_EXPORTS reaches every job.
func TestJobsOwnership(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	completed, running := sampleJob(jobstore.StatusCompleted), sampleJob(jobstore.StatusRunning) // alice's
	expires := now.Add(time.Hour)
	completed.ExpiresAt = &expires
	completed.File = &events.Object{Key: "exports/" + completed.ID + ".csv", FileName: "products.csv", ContentType: "text/csv"}
	jobs := newFakeJobs(completed, running)
	e := newEnv(t, jobs, func(d *api.Deps) { d.Now = func() time.Time { return now } })
	if _, err := e.objects.Put(t.Context(), completed.File.Key, bytes.NewReader([]byte("sku\n")), "text/csv"); err != nil {
		t.Fatal(err)
	}
	bob := token(t, "bob", auth.PermReadExports, auth.PermWriteExports)
	rita := token(t, "rita", auth.PermReadExports)
	for _, tok := range []string{bob, rita} {
		for _, c := range []struct{ method, path string }{
			{http.MethodGet, "/api/v1/exports/" + completed.ID},
			{http.MethodGet, "/api/v1/exports/progress/" + completed.ID},
			{http.MethodGet, "/api/v1/exports/download/" + completed.ID},
		} {
			e.do(t, c.method, c.path, tok, nil).checkError(t, http.StatusNotFound, "not_found", "")
		}
	}
	e.do(t, http.MethodPost, "/api/v1/exports/"+running.ID+"/cancel", bob, nil).checkError(t, http.StatusNotFound, "not_found", "")
	e.do(t, http.MethodDelete, "/api/v1/exports/"+completed.ID, bob, nil).checkError(t, http.StatusNotFound, "not_found", "")
	if got, _ := jobs.Get(t.Context(), running.ID); got.Status != jobstore.StatusRunning {
		t.Errorf("bob's refused cancel changed alice's job: %s", got.Status)
	}
	if keys, _ := e.objects.List(t.Context(), ""); len(keys) != 1 {
		t.Errorf("bob's refused delete removed alice's file: %q", keys)
	}

	// Lists: one's own only; naming another requester finds nothing.
	if r := e.do(t, http.MethodGet, "/api/v1/exports", rita, nil); r.status != http.StatusOK {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	if calls := jobs.listCalls(); calls[len(calls)-1].RequestedBy != "rita" {
		t.Errorf("rita's list asked the store for %+v", calls[len(calls)-1])
	}
	before := len(jobs.listCalls())
	r := e.do(t, http.MethodGet, "/api/v1/exports?requested_by=alice", rita, nil)
	var page struct {
		Items []jobstore.Job `json:"items"`
	}
	if err := json.Unmarshal(r.body, &page); r.status != http.StatusOK || err != nil || len(page.Items) != 0 {
		t.Errorf("rita listing alice's jobs: %d %s", r.status, r.body)
	}
	if len(jobs.listCalls()) != before {
		t.Error("rita's list of alice's jobs reached the store")
	}

	// The owner and a manager reach the job.
	alice := token(t, "alice", auth.PermReadExports, auth.PermWriteExports)
	manager := token(t, "mia", auth.PermReadExports, auth.PermWriteExports, auth.PermManageExports)
	for _, tok := range []string{alice, manager} {
		if r := e.do(t, http.MethodGet, "/api/v1/exports/download/"+completed.ID, tok, nil); r.status != http.StatusOK || string(r.body) != "sku\n" {
			t.Errorf("download: %d %s", r.status, r.body)
		}
	}
	e.do(t, http.MethodGet, "/api/v1/exports?requested_by=alice", manager, nil)
	if calls := jobs.listCalls(); calls[len(calls)-1].RequestedBy != "alice" {
		t.Errorf("a manager's list of alice's jobs asked the store for %+v", calls[len(calls)-1])
	}
	e.do(t, http.MethodGet, "/api/v1/exports", manager, nil)
	if calls := jobs.listCalls(); calls[len(calls)-1].RequestedBy != "" {
		t.Errorf("a manager's list asked the store for %+v", calls[len(calls)-1])
	}
	if r := e.do(t, http.MethodPost, "/api/v1/exports/"+running.ID+"/cancel", manager, nil); r.status != http.StatusOK {
		t.Errorf("a manager's cancel: %d %s", r.status, r.body)
	}
}

// TestSchedulesOwnership: the same rule for schedules, on the real schedule store.
func TestSchedulesOwnership(t *testing.T) {
	t.Parallel()
	e := scheduleEnv(t, time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC))
	alice := token(t, "alice", auth.PermReadExports, auth.PermWriteExports)
	bob := token(t, "bob", auth.PermReadExports, auth.PermWriteExports)
	manager := token(t, "mia", auth.PermReadExports, auth.PermWriteExports, auth.PermManageExports)
	r := e.do(t, http.MethodPost, "/api/v1/exports/schedules", alice, []byte(nightly))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id, _ := r.json(t)["id"].(string)
	path := "/api/v1/exports/schedules/" + id
	for _, c := range []struct {
		method, path string
		body         string
	}{
		{http.MethodGet, path, ""},
		{http.MethodGet, path + "/next", ""},
		{http.MethodGet, path + "/runs", ""},
		{http.MethodPut, path, nightly},
		{http.MethodPost, path + "/toggle", ""},
		{http.MethodPost, path + "/run", ""},
		{http.MethodDelete, path, ""},
	} {
		e.do(t, c.method, c.path, bob, []byte(c.body)).checkError(t, http.StatusNotFound, "not_found", "")
	}
	list := func(tok, query string) int {
		r := e.do(t, http.MethodGet, "/api/v1/exports/schedules"+query, tok, nil)
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(r.body, &page); r.status != http.StatusOK || err != nil {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		return len(page.Items)
	}
	if n := list(bob, ""); n != 0 {
		t.Errorf("bob lists %d schedules, want 0", n)
	}
	if n := list(bob, "?owner=alice"); n != 0 {
		t.Errorf("bob lists %d of alice's schedules, want 0", n)
	}
	if n := list(alice, ""); n != 1 {
		t.Errorf("alice lists %d schedules, want 1", n)
	}
	if n := list(manager, ""); n != 1 {
		t.Errorf("a manager lists %d schedules, want 1", n)
	}
	if r := e.do(t, http.MethodPost, path+"/toggle", manager, []byte(`{"enabled": false}`)); r.status != http.StatusOK {
		t.Errorf("a manager's toggle: %d %s", r.status, r.body)
	}
	if r := e.do(t, http.MethodDelete, path, alice, nil); r.status != http.StatusNoContent {
		t.Errorf("alice's delete: %d %s", r.status, r.body)
	}
}
