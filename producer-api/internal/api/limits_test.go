package api_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
	"github.com/productsmanager/exportplatform/producer-api/internal/ratelimit"
)

// TestRateLimit: every answer carries the X-RateLimit-* headers; past the limit a request is
// a 429 with Retry-After and does nothing; another class and another user are counted apart;
// a refused token costs nothing.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	pool := pgdbtest.NewDatabase(t, "apilimits")
	if err := jobstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	jobs := newFakeJobs()
	e := newEnv(t, jobs, func(d *api.Deps) {
		d.Limiter = ratelimit.New(pool, map[string]int{ratelimit.Exports: 3, ratelimit.Reads: 5})
	})
	alice := token(t, "alice", auth.PermReadExports, auth.PermWriteExports)
	e.do(t, http.MethodPost, "/api/v1/exports/csv/products", "not-a-token", []byte(`{}`)).checkError(t, 401, auth.CodeUnauthenticated, "")
	for i := range 3 {
		r := e.do(t, http.MethodPost, "/api/v1/exports/csv/products", alice, []byte(`{}`))
		if r.status != http.StatusAccepted || r.header.Get("X-RateLimit-Limit") != "3" || r.header.Get("X-RateLimit-Remaining") != strconv.Itoa(2-i) {
			t.Fatalf("creation %d: %d %v %s", i+1, r.status, r.header, r.body)
		}
	}
	r := e.do(t, http.MethodPost, "/api/v1/exports/csv/products", alice, []byte(`{}`))
	r.checkError(t, http.StatusTooManyRequests, "rate_limited", "")
	reset, err := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil {
		t.Fatalf("X-RateLimit-Reset %q", r.header.Get("X-RateLimit-Reset"))
	}
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if until := time.Until(time.Unix(reset, 0)); err != nil || retry < 1 || retry > 60 || time.Duration(retry)*time.Second < until-2*time.Second {
		t.Errorf("Retry-After %q with the window resetting in %s", r.header.Get("Retry-After"), until)
	}
	if r.header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("remaining %q", r.header.Get("X-RateLimit-Remaining"))
	}
	if n := len(jobs.createdRequests()); n != 3 {
		t.Errorf("%d jobs created, want 3: the refused one must do nothing", n)
	}
	if r := e.do(t, http.MethodGet, "/api/v1/exports", alice, nil); r.status != 200 || r.header.Get("X-RateLimit-Limit") != "5" {
		t.Errorf("a read after the creations were refused: %d %v", r.status, r.header)
	}
	if r := e.do(t, http.MethodPost, "/api/v1/exports/csv/products", token(t, "bob", auth.PermWriteExports), []byte(`{}`)); r.status != http.StatusAccepted {
		t.Errorf("bob's creation: %d %s", r.status, r.body)
	}
}

// TestActiveJobsQuota: a user with MaxActiveJobs queued or running jobs is refused another
// with 429 too_many_active_jobs.
func TestActiveJobsQuota(t *testing.T) {
	t.Parallel()
	running := sampleJob(jobstore.StatusRunning) // alice's
	e := newEnv(t, newFakeJobs(running, sampleJob(jobstore.StatusCompleted)), func(d *api.Deps) { d.MaxActiveJobs = 2 })
	alice := token(t, "alice", auth.PermWriteExports)
	if r := e.do(t, http.MethodPost, "/api/v1/exports/csv/products", alice, []byte(`{}`)); r.status != http.StatusAccepted {
		t.Fatalf("second active job: %d %s", r.status, r.body)
	}
	e.do(t, http.MethodPost, "/api/v1/exports/csv/products", alice, []byte(`{}`)).checkError(t, http.StatusTooManyRequests, "too_many_active_jobs", "")
	if r := e.do(t, http.MethodPost, "/api/v1/exports/csv/products", token(t, "bob", auth.PermWriteExports), []byte(`{}`)); r.status != http.StatusAccepted {
		t.Errorf("bob: %d %s", r.status, r.body)
	}
}
