package jobstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// relayed empties the outbox and returns what it held.
func relayed(t *testing.T, s *jobstore.Store) []jobstore.OutboxMessage {
	t.Helper()
	var got []jobstore.OutboxMessage
	if _, err := s.RelayOutbox(context.Background(), 100, func(_ context.Context, m []jobstore.OutboxMessage) error {
		got = append(got, m...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func create(t *testing.T, s *jobstore.Store) string {
	t.Helper()
	req := request(t)
	if _, err := s.Create(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	return req.JobID
}

func TestCancelQueued(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	id := create(t, s)
	relayed(t, s)
	job, err := s.Cancel(ctx, id, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != jobstore.StatusCancelled || job.Phase != "done" || job.FinishedAt == nil ||
		job.CancelledBy == nil || *job.CancelledBy != "bob" || job.QueuePosition != nil {
		t.Errorf("cancelled job = %+v", job)
	}
	// ExportCancelled left with the state change.
	msgs := relayed(t, s)
	if len(msgs) != 1 || msgs[0].Topic != events.TopicEvents || msgs[0].Envelope.Type != events.TypeCancelled {
		t.Fatalf("outbox after cancel = %+v", msgs)
	}
	ev, err := events.Decode[events.ExportCancelled](msgs[0].Envelope)
	if err != nil || ev.JobID != id || ev.CancelledBy != "bob" || ev.CancelledAt.IsZero() ||
		ev.Entity != "products" || ev.Format != "csv" || ev.RequestedBy != "alice" || ev.Reason != "cancelled on request" {
		t.Errorf("ExportCancelled = %+v, %v", ev, err)
	}
	// The exporter that receives the ExportRequested later never starts it.
	if _, _, err := s.Claim(ctx, id, "w", time.Minute); !errors.Is(err, jobstore.ErrNotClaimed) {
		t.Errorf("claiming a cancelled job = %v, want ErrNotClaimed", err)
	}
	// Cancelling again is refused with the job as it is, and emits nothing.
	again, err := s.Cancel(ctx, id, "bob")
	if !errors.Is(err, jobstore.ErrFinished) || again.Status != jobstore.StatusCancelled {
		t.Errorf("second cancel = %v, %s; want ErrFinished and the cancelled job", err, again.Status)
	}
	if msgs := relayed(t, s); len(msgs) != 0 {
		t.Errorf("a refused cancel wrote %d events", len(msgs))
	}
	if _, err := s.Cancel(ctx, "5f1c2b9e-0000-4000-8000-000000000000", "bob"); !errors.Is(err, jobstore.ErrNotFound) {
		t.Errorf("cancelling an unknown job = %v, want ErrNotFound", err)
	}
}

func TestCancelRunningAndSealed(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()

	// Running: the worker's watch sees the cancel, and it can no longer seal.
	id := create(t, s)
	_, lease, err := s.Claim(ctx, id, "w", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if stop, err := s.Cancelled(ctx, id); err != nil || stop {
		t.Fatalf("Cancelled before the cancel = %v, %v", stop, err)
	}
	if _, err := s.Cancel(ctx, id, "bob"); err != nil {
		t.Fatal(err)
	}
	if stop, err := s.Cancelled(ctx, id); err != nil || !stop {
		t.Errorf("Cancelled after the cancel = %v, %v", stop, err)
	}
	if err := s.Seal(ctx, lease, time.Minute); !errors.Is(err, jobstore.ErrLeaseLost) {
		t.Errorf("sealing a cancelled job = %v, want ErrLeaseLost", err)
	}
	// A late ExportCompleted (or Progress) does not revive it.
	if changed, _ := s.Apply(ctx, events.ExportCompleted{JobID: id, Rows: 1, FinishedAt: time.Now()}); changed {
		t.Error("ExportCompleted changed a cancelled job")
	}

	// Sealed: the file is stored and the worker is completing; a cancel is too late.
	id2 := create(t, s)
	_, lease2, err := s.Claim(ctx, id2, "w", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Seal(ctx, lease2, time.Minute); err != nil {
		t.Fatal(err)
	}
	if job, err := s.Cancel(ctx, id2, "bob"); !errors.Is(err, jobstore.ErrFinished) || job.Status != jobstore.StatusRunning {
		t.Errorf("cancelling a sealed job = %v, %s; want ErrFinished", err, job.Status)
	}
	if changed, err := s.Apply(ctx, events.ExportCancelled{JobID: id2, CancelledAt: time.Now()}); err != nil || changed {
		t.Errorf("a stray ExportCancelled changed a sealed job: %v %v", changed, err)
	}
	// Its worker died before completing: the rescued attempt is not sealed and can be cancelled.
	if err := s.Seal(ctx, lease2, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, err := s.ClaimExpired(ctx, "rescuer", time.Minute); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the sealed job's expired lease was never rescued: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := s.Cancel(ctx, id2, "bob"); err != nil {
		t.Errorf("cancelling the rescued attempt of a once-sealed job = %v", err)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)

	// A completed job: hidden at once, its file handed to the sweeper.
	done := create(t, s)
	expires := now.Add(24 * time.Hour)
	if _, err := s.Apply(ctx, events.ExportCompleted{JobID: done, Rows: 1, FinishedAt: now,
		Object: events.Object{Key: "products/" + done + "/f.csv"}, ExpiresAt: &expires}); err != nil {
		t.Fatal(err)
	}
	relayed(t, s)
	job, err := s.Delete(ctx, done, "bob")
	if err != nil || job.File == nil || job.Status != jobstore.StatusCompleted {
		t.Fatalf("Delete = %+v, %v", job, err)
	}
	if msgs := relayed(t, s); len(msgs) != 0 {
		t.Errorf("deleting a finished job emitted %d events", len(msgs))
	}
	if _, err := s.Get(ctx, done); !errors.Is(err, jobstore.ErrNotFound) {
		t.Errorf("Get after Delete = %v", err)
	}
	if _, err := s.Delete(ctx, done, "bob"); !errors.Is(err, jobstore.ErrNotFound) {
		t.Errorf("deleting twice = %v, want ErrNotFound", err)
	}
	if _, err := s.Cancel(ctx, done, "bob"); !errors.Is(err, jobstore.ErrNotFound) {
		t.Errorf("cancelling a deleted job = %v, want ErrNotFound", err)
	}
	list, _, err := s.List(ctx, jobstore.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range list {
		if j.ID == done {
			t.Error("List shows the deleted job")
		}
	}
	due, err := s.RemovableFiles(ctx, now, 10)
	if err != nil || len(due) != 1 || due[0].ID != done {
		t.Fatalf("RemovableFiles = %v, %v; want the deleted job's file", due, err)
	}
	if err := s.FileRemoved(ctx, done, now); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.RemovableFiles(ctx, now, 10); len(due) != 0 {
		t.Errorf("after FileRemoved, RemovableFiles = %v", due)
	}

	// A running job: cancelled (ExportCancelled emitted) and hidden; its worker stops.
	running := create(t, s)
	if _, _, err := s.Claim(ctx, running, "w", time.Minute); err != nil {
		t.Fatal(err)
	}
	relayed(t, s)
	job, err = s.Delete(ctx, running, "bob")
	if err != nil || job.Status != jobstore.StatusCancelled {
		t.Fatalf("deleting a running job = %s, %v; want it cancelled", job.Status, err)
	}
	if msgs := relayed(t, s); len(msgs) != 1 || msgs[0].Envelope.Type != events.TypeCancelled {
		t.Errorf("deleting a running job emitted %+v, want one ExportCancelled", msgs)
	}
	if stop, _ := s.Cancelled(ctx, running); !stop {
		t.Error("the worker of a deleted job is not told to stop")
	}
}

// TestExpiry uses the caller's clock: nothing is due before the expiry, the file is after it,
// and the job then reads expired.
func TestExpiry(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	id := create(t, s)
	finished := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	expires := finished.Add(30 * 24 * time.Hour)
	if _, err := s.Apply(ctx, events.ExportCompleted{JobID: id, Rows: 1, FinishedAt: finished,
		Object: events.Object{Key: "k"}, ExpiresAt: &expires}); err != nil {
		t.Fatal(err)
	}
	job, _ := s.Get(ctx, id)
	if job.ExpiresAt == nil || !job.ExpiresAt.Equal(expires) || job.Phase != "done" {
		t.Fatalf("completed job expires_at %v phase %s, want %v done", job.ExpiresAt, job.Phase, expires)
	}
	if due, _ := s.RemovableFiles(ctx, expires.Add(-time.Second), 10); len(due) != 0 {
		t.Errorf("a second before expiry, RemovableFiles = %d jobs", len(due))
	}
	due, err := s.RemovableFiles(ctx, expires, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("at expiry, RemovableFiles = %v, %v", due, err)
	}
	if err := s.FileRemoved(ctx, id, expires); err != nil {
		t.Fatal(err)
	}
	job, _ = s.Get(ctx, id)
	if job.Status != jobstore.StatusExpired || !job.FileRemoved {
		t.Errorf("after the sweep the job is %s (file removed %v), want expired", job.Status, job.FileRemoved)
	}
}

// TestExpiryDefault: a completion that does not say when its file expires (an exporter older
// than retention) gets 30 days from its end.
func TestExpiryDefault(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	id := create(t, s)
	finished := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if _, err := s.Apply(ctx, events.ExportCompleted{JobID: id, Rows: 1, FinishedAt: finished, Object: events.Object{Key: "k"}}); err != nil {
		t.Fatal(err)
	}
	job, _ := s.Get(ctx, id)
	if want := finished.Add(30 * 24 * time.Hour); job.ExpiresAt == nil || !job.ExpiresAt.Equal(want) {
		t.Errorf("expires_at %v, want %v", job.ExpiresAt, want)
	}
}

func TestPhasesAndQueuePosition(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	ids := []string{create(t, s), create(t, s), create(t, s)}
	for i, id := range ids {
		job, _ := s.Get(ctx, id)
		if job.Phase != "queued" || job.QueuePosition == nil || *job.QueuePosition != int64(i+1) {
			t.Errorf("job %d: phase %s, queue position %v; want queued at %d", i, job.Phase, job.QueuePosition, i+1)
		}
	}
	job, lease, err := s.Claim(ctx, ids[0], "w", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if job.Phase != "counting" || job.QueuePosition != nil {
		t.Errorf("claimed job: phase %s, queue position %v", job.Phase, job.QueuePosition)
	}
	if next, _ := s.Get(ctx, ids[1]); next.QueuePosition == nil || *next.QueuePosition != 1 {
		t.Errorf("once the first left the queue, the second is at %v, want 1", next.QueuePosition)
	}
	eta := 4.5
	steps := []struct {
		ev    events.Event
		phase string
	}{
		{events.ExportStarted{JobID: ids[0], Attempt: lease.Attempt, RowsTotal: 100, StartedAt: time.Now()}, "writing"},
		{events.ExportProgress{JobID: ids[0], Attempt: lease.Attempt, RowsDone: 100, RowsTotal: 100, Progress: 99.9,
			RateRowsPerS: 22, ETASeconds: &eta, Phase: "writing"}, "writing"},
		// Every row written: the same rows_done, a new phase.
		{events.ExportProgress{JobID: ids[0], Attempt: lease.Attempt, RowsDone: 100, RowsTotal: 100, Progress: 99.9,
			Phase: "uploading"}, "uploading"},
		{events.ExportProgress{JobID: ids[0], Attempt: lease.Attempt, RowsDone: 100, RowsTotal: 100, Progress: 99.9,
			Phase: "writing"}, "uploading"},
		{events.ExportCompleted{JobID: ids[0], Rows: 100, FinishedAt: time.Now()}, "done"},
	}
	for i, st := range steps {
		if _, err := s.Apply(ctx, st.ev); err != nil {
			t.Fatal(err)
		}
		job, _ := s.Get(ctx, ids[0])
		if job.Phase != st.phase {
			t.Errorf("step %d (%T): phase %s, want %s", i, st.ev, job.Phase, st.phase)
		}
		if i == 1 && (job.RateRowsPerS == nil || *job.RateRowsPerS != 22 || job.ETASeconds == nil || *job.ETASeconds != 4.5) {
			t.Errorf("rate %v, eta %v; want 22 and 4.5", job.RateRowsPerS, job.ETASeconds)
		}
		if st.phase == "done" && (job.RateRowsPerS != nil || job.ETASeconds != nil) {
			t.Errorf("a finished job keeps rate %v and eta %v", job.RateRowsPerS, job.ETASeconds)
		}
	}
}

// TestListFiltersUnderConcurrentInserts: each filter selects its jobs, and paging through
// them while other jobs are created without pause shows every job that existed once, newest
// first, and none twice.
func TestListFiltersUnderConcurrentInserts(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	sched := "sched-1"
	var all []events.ExportRequested
	for i := range 40 {
		req := request(t)
		req.Entity = []string{"products", "suppliers"}[i%2]
		req.Format = []string{"csv", "excel", "json"}[i%3]
		req.RequestedBy = []string{"alice", "bob"}[i%4/2]
		if i%5 == 0 {
			req.ScheduleID = &sched
		}
		req.RequestedAt = base.Add(time.Duration(i) * time.Minute)
		if _, err := s.Create(ctx, req); err != nil {
			t.Fatal(err)
		}
		all = append(all, req)
	}
	stop := make(chan struct{})
	inserted := make(chan int)
	go func() { // new jobs, newer than all, keep coming while the pages are read
		n := 0
		defer func() { inserted <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			req := request(t)
			req.RequestedBy = "alice"
			if _, err := s.Create(ctx, req); err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	cases := []struct {
		name string
		f    jobstore.ListFilter
		keep func(events.ExportRequested) bool
	}{
		{"entity", jobstore.ListFilter{Entity: "suppliers"}, func(r events.ExportRequested) bool { return r.Entity == "suppliers" }},
		{"format", jobstore.ListFilter{Format: "excel"}, func(r events.ExportRequested) bool { return r.Format == "excel" }},
		{"requested_by", jobstore.ListFilter{RequestedBy: "bob"}, func(r events.ExportRequested) bool { return r.RequestedBy == "bob" }},
		{"schedule_id", jobstore.ListFilter{ScheduleID: sched}, func(r events.ExportRequested) bool { return r.ScheduleID != nil }},
		{"created range", jobstore.ListFilter{CreatedAfter: base.Add(10 * time.Minute), CreatedBefore: base.Add(20 * time.Minute)},
			func(r events.ExportRequested) bool {
				return !r.RequestedAt.Before(base.Add(10*time.Minute)) && r.RequestedAt.Before(base.Add(20*time.Minute))
			}},
		{"alice's csv, paged under inserts", jobstore.ListFilter{RequestedBy: "alice", Format: "csv", CreatedBefore: base.Add(time.Hour)},
			func(r events.ExportRequested) bool { return r.RequestedBy == "alice" && r.Format == "csv" }},
		{"everything before the inserts", jobstore.ListFilter{CreatedBefore: base.Add(time.Hour)},
			func(events.ExportRequested) bool { return true }},
	}
	for _, tc := range cases {
		var want []string
		for i := len(all) - 1; i >= 0; i-- {
			if tc.keep(all[i]) {
				want = append(want, all[i].JobID)
			}
		}
		var got []string
		f := tc.f
		f.Limit = 3
		for pages := 0; pages < 100; pages++ {
			jobs, next, err := s.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range jobs {
				got = append(got, j.ID)
			}
			if next == "" {
				break
			}
			f.Cursor = next
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d jobs, want %d", tc.name, len(got), len(want))
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: job %d is %s, want %s (newest first, each once)", tc.name, i, got[i], want[i])
				break
			}
		}
	}
	close(stop)
	if n := <-inserted; n == 0 {
		t.Error("no job was created while paging: the test shows nothing about concurrent inserts")
	}
}
