package jobstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// TestRanges: the holder of a job's lease plans its attempt's ranges; exporters claim them one
// each under a lease, a lapsed lease lets another claim the range again (a try more), a range
// given back too often fails, and only the holder of a range's lease records it.
func TestRanges(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	req := request(t)
	if _, err := s.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	_, lease, err := s.Claim(ctx, req.JobID, jobstore.ClaimOptions{Owner: "coord", TTL: time.Minute, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do(ctx, req.JobID, job.Start{Owner: "coord", Attempt: lease.Attempt, RowsTotal: 30, At: now}); err != nil {
		t.Fatal(err)
	}
	ten, twenty := int64(10), int64(20)
	plan := [][2]*int64{{nil, &ten}, {&ten, &twenty}, {&twenty, nil}}
	if err := s.PlanRanges(ctx, jobstore.Lease{JobID: req.JobID, Owner: "other", Attempt: lease.Attempt}, "00000003-1", plan); !errors.Is(err, job.ErrLeaseLost) {
		t.Fatalf("a worker without the job's lease planned its ranges: %v", err)
	}
	if err := s.PlanRanges(ctx, lease, "00000003-1", plan); err != nil {
		t.Fatal(err)
	}

	claim := func(owner string) (jobstore.Range, error) {
		return s.ClaimRange(ctx, "", owner, 3*time.Second, 2)
	}
	a, err := claim("a")
	if err != nil || a.Seq != 0 || a.Lo != nil || *a.Hi != 10 || a.Snapshot != "00000003-1" || a.Tries != 1 {
		t.Fatalf("first claim: %+v, %v", a, err)
	}
	b, _ := claim("b")
	c, _ := claim("c")
	if b.Seq != 1 || c.Seq != 2 {
		t.Fatalf("claims %d, %d; want ranges 1 and 2", b.Seq, c.Seq)
	}
	if _, err := claim("d"); !errors.Is(err, jobstore.ErrNotClaimed) {
		t.Fatalf("a fourth claim: %v", err)
	}

	if err := s.RenewRange(ctx, a, 3*time.Second, 7); err != nil {
		t.Fatal(err)
	}
	if err := s.RangeWritten(ctx, a, 10, 1234, "products/x/1/ranges/000000"); err != nil {
		t.Fatal(err)
	}
	// b's writer stops renewing: once its lease lapses, d claims range 1 again.
	now = now.Add(4 * time.Second)
	if err := s.RenewRange(ctx, c, 3*time.Second, 1); err != nil {
		t.Fatal(err)
	}
	d, err := claim("d")
	if err != nil || d.Seq != 1 || d.Tries != 2 {
		t.Fatalf("claim after the lapse: %+v, %v", d, err)
	}
	if err := s.RangeWritten(ctx, b, 10, 1, "late"); !errors.Is(err, job.ErrLeaseLost) {
		t.Errorf("the lapsed writer recorded its range: %v", err)
	}
	// d gives it back at its second try of 2: the range fails.
	if err := s.ReleaseRange(ctx, d, "catalog away", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseRange(ctx, c, "catalog away", 2); err != nil { // first try: queued again
		t.Fatal(err)
	}
	rs, err := s.Ranges(ctx, req.JobID, lease.Attempt)
	if err != nil {
		t.Fatal(err)
	}
	if got := [3]string{rs[0].Status, rs[1].Status, rs[2].Status}; got != [3]string{"done", "failed", "queued"} {
		t.Fatalf("statuses %v", got)
	}
	if rs[0].RowsDone != 10 || rs[0].SizeBytes != 1234 || rs[0].Owner != "a" || rs[1].LastError != "catalog away" {
		t.Errorf("ranges %+v", rs)
	}
	// A range of a job that is no longer running is nobody's to claim.
	if _, err := s.Do(ctx, req.JobID, job.Cancel{By: "alice", At: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := claim("e"); !errors.Is(err, jobstore.ErrNotClaimed) {
		t.Errorf("a range of a cancelled job was claimed: %v", err)
	}
}
