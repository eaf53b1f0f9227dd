package jobstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/jobstore/jobstoretest"
)

// TestActiveStats: queued and running jobs are counted with how long the oldest of each went
// unchanged (by the store's clock); a running job whose lease lapsed is counted until someone
// rescues it; ended and deleted jobs are not counted.
func TestActiveStats(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	clock := time.Now().UTC().Truncate(time.Second)
	s.SetClock(func() time.Time { return clock })
	stats := func() jobstore.ActiveStats {
		t.Helper()
		st, err := s.ActiveStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	check := func(name string, st jobstore.ActiveStats, queued, running int64, oldestQ, oldestR time.Duration, expired int64) {
		t.Helper()
		if st.Count[jobstore.StatusQueued] != queued || st.Count[jobstore.StatusRunning] != running ||
			st.Oldest[jobstore.StatusQueued] != oldestQ || st.Oldest[jobstore.StatusRunning] != oldestR || st.LeaseExpired != expired {
			t.Errorf("%s: got %+v, want queued %d (oldest %v), running %d (oldest %v), lease expired %d",
				name, st, queued, oldestQ, running, oldestR, expired)
		}
	}
	check("empty", stats(), 0, 0, 0, 0, 0)

	old, young, done, gone := jobstoretest.Request(t, clock.Add(-10*time.Minute)), jobstoretest.Request(t, clock.Add(-time.Minute)),
		jobstoretest.Request(t, clock.Add(-time.Hour)), jobstoretest.Request(t, clock.Add(-2*time.Hour))
	for _, req := range []events.ExportRequested{old, young, done, gone} {
		if _, err := s.Create(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Delete(ctx, gone.JobID, "alice", nil); err != nil {
		t.Fatal(err)
	}
	o := jobstore.ClaimOptions{Owner: "w1", TTL: time.Minute, MaxAttempts: 3}
	_, l, err := s.Claim(ctx, done.JobID, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do(ctx, done.JobID, job.Complete{Owner: "w1", Attempt: l.Attempt, Rows: 1,
		Object: events.Object{Key: "k"}, StartedAt: clock, At: clock}); err != nil {
		t.Fatal(err)
	}
	check("three queued, one ended, one deleted", stats(), 3-1, 0, 10*time.Minute, 0, 0)

	// The oldest is claimed: running since now, its lease good for a minute.
	if _, _, err := s.Claim(ctx, old.JobID, o); err != nil {
		t.Fatal(err)
	}
	check("one claimed", stats(), 1, 1, time.Minute, 0, 0)

	// Three minutes without a word from its worker: stuck, its lease lapsed.
	clock = clock.Add(3 * time.Minute)
	check("worker silent", stats(), 1, 1, 4*time.Minute, 3*time.Minute, 1)

	// Rescued by another worker: running anew, nothing lapsed.
	if _, l, err := s.ClaimNext(ctx, jobstore.ClaimOptions{Owner: "w2", TTL: time.Minute, MaxAttempts: 3}); err != nil || !l.Rescued {
		t.Fatalf("rescue: %+v %v", l, err)
	}
	check("rescued", stats(), 1, 1, 4*time.Minute, 0, 0)
}
