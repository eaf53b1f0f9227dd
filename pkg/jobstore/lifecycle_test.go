package jobstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

func create(t *testing.T, s *jobstore.Store) string {
	t.Helper()
	req := request(t)
	if _, err := s.Create(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	return req.JobID
}

// run sends the commands of one worker's attempt, failing the test on a refusal.
func run(t *testing.T, s *jobstore.Store, id string, cmds ...job.Command) jobstore.Job {
	t.Helper()
	var j jobstore.Job
	for _, c := range cmds {
		var err error
		if j, err = s.Do(context.Background(), id, c); err != nil {
			t.Fatalf("%s: %v", job.Name(c), err)
		}
	}
	return j
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
	_, lease, err := s.Claim(ctx, id, jobstore.ClaimOptions{Owner: "w", TTL: time.Minute, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s, id, job.Start{Owner: "w", Attempt: lease.Attempt, RowsTotal: 1, At: finished},
		job.Complete{Owner: "w", Attempt: lease.Attempt, Rows: 1, Object: events.Object{Key: "k"}, StartedAt: finished,
			ExpiresAt: expires, At: finished})
	j, _ := s.Get(ctx, id)
	if j.ExpiresAt == nil || !j.ExpiresAt.Equal(expires) || j.Phase != "done" {
		t.Fatalf("completed job expires_at %v phase %s, want %v done", j.ExpiresAt, j.Phase, expires)
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
	j, _ = s.Get(ctx, id)
	if j.Status != jobstore.StatusExpired || !j.FileRemoved {
		t.Errorf("after the sweep the job is %s (file removed %v), want expired", j.Status, j.FileRemoved)
	}
	// Recording it again changes nothing.
	if err := s.FileRemoved(ctx, id, expires.Add(time.Hour)); err != nil {
		t.Errorf("a second FileRemoved: %v", err)
	}
}

func TestPhasesAndQueuePosition(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	ids := []string{create(t, s), create(t, s), create(t, s)}
	for i, id := range ids {
		j, _ := s.Get(ctx, id)
		if j.Phase != "queued" || j.QueuePosition == nil || *j.QueuePosition != int64(i+1) {
			t.Errorf("job %d: phase %s, queue position %v; want queued at %d", i, j.Phase, j.QueuePosition, i+1)
		}
	}
	j, lease, err := s.Claim(ctx, ids[0], jobstore.ClaimOptions{Owner: "w", TTL: time.Minute, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	if j.Phase != "counting" || j.QueuePosition != nil {
		t.Errorf("claimed job: phase %s, queue position %v", j.Phase, j.QueuePosition)
	}
	if next, _ := s.Get(ctx, ids[1]); next.QueuePosition == nil || *next.QueuePosition != 1 {
		t.Errorf("once the first left the queue, the second is at %v, want 1", next.QueuePosition)
	}
	eta := 4.5
	now := time.Now().UTC()
	a := lease.Attempt
	steps := []struct {
		c     job.Command
		phase string
	}{
		{job.Start{Owner: "w", Attempt: a, RowsTotal: 100, At: now}, "writing"},
		{job.Report{Owner: "w", Attempt: a, RowsDone: 100, RateRowsPerS: 22, ETASeconds: &eta, Phase: "writing", At: now}, "writing"},
		// Every row written: the same rows_done, a new phase.
		{job.Report{Owner: "w", Attempt: a, RowsDone: 100, Phase: "uploading", At: now}, "uploading"},
		{job.Complete{Owner: "w", Attempt: a, Rows: 100, Object: events.Object{Key: "k"}, At: now}, "done"},
	}
	for i, st := range steps {
		run(t, s, ids[0], st.c)
		j, _ := s.Get(ctx, ids[0])
		if j.Phase != st.phase {
			t.Errorf("step %d (%s): phase %s, want %s", i, job.Name(st.c), j.Phase, st.phase)
		}
		if i == 1 && (j.RateRowsPerS == nil || *j.RateRowsPerS != 22 || j.ETASeconds == nil || *j.ETASeconds != 4.5 || j.Progress != 99.9) {
			t.Errorf("rate %v, eta %v, progress %v; want 22, 4.5 and 99.9", j.RateRowsPerS, j.ETASeconds, j.Progress)
		}
		if st.phase == "done" && (j.RateRowsPerS != nil || j.ETASeconds != nil || j.Progress != 100) {
			t.Errorf("a finished job keeps rate %v and eta %v, progress %v", j.RateRowsPerS, j.ETASeconds, j.Progress)
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
