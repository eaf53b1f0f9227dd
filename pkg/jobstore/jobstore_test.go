package jobstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
)

func newStore(t *testing.T) *jobstore.Store {
	t.Helper()
	pool := pgdbtest.NewDatabase(t, "jobstoretest")
	if err := jobstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return jobstore.New(pool)
}

func request(t *testing.T) events.ExportRequested {
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return events.ExportRequested{
		JobID: id.String(), Entity: "products", Format: "csv", Fields: []string{"sku"},
		Filters: map[string]any{"status": "active"}, RequestedBy: "alice",
		RequestedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
}

func TestCreateWritesJobAndOutboxTogether(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	req := request(t)
	job, err := s.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != jobstore.StatusQueued || job.TaskID != req.JobID || job.Fields[0] != "sku" {
		t.Fatalf("created job = %+v", job)
	}
	if n, _ := s.OutboxBacklog(ctx); n != 1 {
		t.Fatalf("outbox backlog = %d, want 1", n)
	}
	// A failing publish keeps the row; a successful one removes it.
	if _, err := s.RelayOutbox(ctx, 10, func(context.Context, []jobstore.OutboxMessage) error {
		return errors.New("kafka down")
	}); err == nil {
		t.Fatal("relay with a failing publish returned nil")
	}
	if n, _ := s.OutboxBacklog(ctx); n != 1 {
		t.Fatalf("after a failed publish the backlog = %d, want 1", n)
	}
	var got []jobstore.OutboxMessage
	n, err := s.RelayOutbox(ctx, 10, func(_ context.Context, m []jobstore.OutboxMessage) error { got = m; return nil })
	if err != nil || n != 1 {
		t.Fatalf("relay = %d, %v", n, err)
	}
	if got[0].Topic != events.TopicRequested || got[0].Envelope.ID != events.ID(req) || got[0].Envelope.Key != req.JobID {
		t.Errorf("relayed %+v", got[0])
	}
	back, err := events.Decode[events.ExportRequested](got[0].Envelope)
	if err != nil || back.JobID != req.JobID || back.Filters["status"] != "active" {
		t.Errorf("relayed event decodes to %+v, %v", back, err)
	}
	if n, _ := s.OutboxBacklog(ctx); n != 0 {
		t.Errorf("backlog after relay = %d", n)
	}
}

func TestLeases(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	req := request(t)
	if _, err := s.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	// Two workers race for the job: exactly one wins.
	var wg sync.WaitGroup
	wins := make(chan jobstore.Lease, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, l, err := s.Claim(ctx, req.JobID, "w"+string(rune('a'+i)), time.Hour)
			if err == nil {
				wins <- l
			} else if !errors.Is(err, jobstore.ErrNotClaimed) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	var lease jobstore.Lease
	n := 0
	for l := range wins {
		lease = l
		n++
	}
	if n != 1 || lease.Attempt != 1 {
		t.Fatalf("%d workers claimed the job (lease %+v), want exactly 1", n, lease)
	}
	if err := s.Renew(ctx, lease, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Once the lease expires, the rescuer claims the job as attempt 2 and the old lease is dead.
	deadline := time.Now().Add(5 * time.Second)
	var job jobstore.Job
	var l2 jobstore.Lease
	var err error
	for {
		job, l2, err = s.ClaimExpired(ctx, "rescuer", time.Hour)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil || job.ID != req.JobID || l2.Attempt != 2 {
		t.Fatalf("ClaimExpired = %+v %+v %v", job, l2, err)
	}
	if err := s.Renew(ctx, lease, time.Hour); !errors.Is(err, jobstore.ErrLeaseLost) {
		t.Errorf("renewing the expired lease = %v, want ErrLeaseLost", err)
	}
	if _, _, err := s.ClaimExpired(ctx, "other", time.Hour); !errors.Is(err, jobstore.ErrNotClaimed) {
		t.Errorf("claiming with no expired lease = %v", err)
	}
	// A finished job is never claimed again (a redelivered ExportRequested).
	if _, err := s.Apply(ctx, events.ExportCompleted{JobID: req.JobID, Rows: 3, FinishedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Claim(ctx, req.JobID, "late", time.Hour); !errors.Is(err, jobstore.ErrNotClaimed) {
		t.Errorf("claiming a completed job = %v, want ErrNotClaimed", err)
	}
}

func TestApplyIsMonotonic(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	req := request(t)
	if _, err := s.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	id := req.JobID
	now := time.Now().UTC()
	steps := []struct {
		name        string
		ev          events.Event
		changed     bool
		status      jobstore.Status
		rowsDone    int64
		progressPct float64
	}{
		{"started", events.ExportStarted{JobID: id, Attempt: 1, RowsTotal: 100, StartedAt: now}, true, "running", 0, 0},
		{"progress 50", events.ExportProgress{JobID: id, Attempt: 1, RowsDone: 50, RowsTotal: 100, Progress: 50}, true, "running", 50, 50},
		{"late progress 20", events.ExportProgress{JobID: id, Attempt: 1, RowsDone: 20, RowsTotal: 100, Progress: 20}, false, "running", 50, 50},
		{"repeat progress 50", events.ExportProgress{JobID: id, Attempt: 1, RowsDone: 50, RowsTotal: 100, Progress: 50}, false, "running", 50, 50},
		{"repeat started", events.ExportStarted{JobID: id, Attempt: 1, RowsTotal: 100, StartedAt: now}, false, "running", 50, 50},
		{"attempt 2 restarts", events.ExportStarted{JobID: id, Attempt: 2, RowsTotal: 100, StartedAt: now}, true, "running", 0, 0},
		{"attempt 1 is stale", events.ExportProgress{JobID: id, Attempt: 1, RowsDone: 90, RowsTotal: 100, Progress: 90}, false, "running", 0, 0},
		{"completed", events.ExportCompleted{JobID: id, Rows: 100, Object: events.Object{Key: "k", SHA256: "abc"}, FinishedAt: now,
			Warnings: []string{"1 cell longer than 32767 characters was cut"}}, true, "completed", 100, 100},
		{"progress after completed", events.ExportProgress{JobID: id, Attempt: 3, RowsDone: 10, RowsTotal: 100}, false, "completed", 100, 100},
		{"failed after completed", events.ExportFailed{JobID: id, Code: "x", Message: "y"}, false, "completed", 100, 100},
		{"repeat completed", events.ExportCompleted{JobID: id, Rows: 100, FinishedAt: now}, false, "completed", 100, 100},
	}
	for _, st := range steps {
		changed, err := s.Apply(ctx, st.ev)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		job, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if changed != st.changed || job.Status != st.status || job.RowsDone != st.rowsDone || job.Progress != st.progressPct {
			t.Errorf("%s: changed=%v status=%s rows_done=%d progress=%v; want %v %s %d %v",
				st.name, changed, job.Status, job.RowsDone, job.Progress, st.changed, st.status, st.rowsDone, st.progressPct)
		}
	}
	job, _ := s.Get(ctx, id)
	if job.File == nil || job.File.SHA256 != "abc" || job.FinishedAt == nil || job.LeaseOwner != nil ||
		len(job.Warnings) != 1 || !strings.Contains(job.Warnings[0], "cut") {
		t.Errorf("completed job = %+v", job)
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	var ids []string
	for range 7 {
		req := request(t)
		if _, err := s.Create(ctx, req); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, req.JobID)
	}
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		jobs, next, err := s.List(ctx, jobstore.ListFilter{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			seen = append(seen, j.ID)
		}
		if page == 0 {
			// a job created while paging appears on no later page and breaks nothing
			if _, err := s.Create(ctx, request(t)); err != nil {
				t.Fatal(err)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != len(ids) {
		t.Fatalf("paged through %d jobs, want %d", len(seen), len(ids))
	}
	for i := range ids {
		if seen[i] != ids[len(ids)-1-i] {
			t.Fatalf("order %v, want newest first %v", seen, ids)
		}
	}
	if _, _, err := s.List(ctx, jobstore.ListFilter{Cursor: "garbage!"}); !errors.Is(err, jobstore.ErrBadCursor) {
		t.Errorf("bad cursor = %v", err)
	}
	if _, err := s.Get(ctx, "not-a-uuid"); !errors.Is(err, jobstore.ErrNotFound) {
		t.Errorf("Get(not-a-uuid) = %v", err)
	}
}
