// Package jobstoretest is the conformance suite every job repository passes: the PostgreSQL
// store (jobstore.Store) and its in-memory twin (jobstore.Memory). What it checks is what the
// components rely on: commands decided by pkg/job and saved with their events in order, one
// winner among racing claimers and writers, the queue order of ClaimNext, and lapsed leases.
package jobstoretest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// Repository is what both stores provide.
type Repository interface {
	Create(ctx context.Context, req events.ExportRequested) (jobstore.Job, error)
	CreateWithin(ctx context.Context, req events.ExportRequested, maxActive int) (jobstore.Job, error)
	Get(ctx context.Context, id string) (jobstore.Job, error)
	GetAny(ctx context.Context, id string) (jobstore.Job, error)
	Do(ctx context.Context, id string, c job.Command) (jobstore.Job, error)
	Claim(ctx context.Context, id string, o jobstore.ClaimOptions) (jobstore.Job, jobstore.Lease, error)
	ClaimNext(ctx context.Context, o jobstore.ClaimOptions) (jobstore.Job, jobstore.Lease, error)
	ClaimDelivery(ctx context.Context, owner string, ttl time.Duration) (jobstore.Job, error)
	Cancel(ctx context.Context, id, by string) (jobstore.Job, error)
	Delete(ctx context.Context, id, by string, audit *events.Accessed) (jobstore.Job, error)
	Cancelled(ctx context.Context, id string) (bool, error)
	List(ctx context.Context, f jobstore.ListFilter) ([]jobstore.Job, string, error)
	Pending(ctx context.Context, key string) ([]jobstore.OutboxMessage, error)
	TraceContext(ctx context.Context, id string) (traceparent, tracestate string, err error)
	SetClock(now func() time.Time)
}

// Request is a fresh job request (a new time-ordered id, created at).
func Request(t testing.TB, at time.Time) events.ExportRequested {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return events.ExportRequested{JobID: id.String(), Entity: "products", Format: "csv", Fields: []string{"sku"},
		Filters: map[string]any{"status": "active"}, RequestedBy: "alice", RequestedAt: at.UTC().Truncate(time.Microsecond)}
}

// Run checks a repository; fresh returns an empty one (each subtest gets its own).
func Run(t *testing.T, fresh func(t *testing.T) Repository) {
	ctx := context.Background()
	opts := func(owner string) jobstore.ClaimOptions {
		return jobstore.ClaimOptions{Owner: owner, TTL: time.Hour, MaxAttempts: 3}
	}

	t.Run("a requester's active jobs are bounded; ended and other users' jobs do not count", func(t *testing.T) {
		r := fresh(t)
		mine := func() events.ExportRequested {
			req := Request(t, time.Now())
			req.RequestedBy = "quota-user"
			return req
		}
		var first string
		for i := range 3 {
			j, err := r.CreateWithin(ctx, mine(), 3)
			if err != nil {
				t.Fatalf("job %d: %v", i+1, err)
			}
			if i == 0 {
				first = j.ID
			}
		}
		refused := mine()
		if _, err := r.CreateWithin(ctx, refused, 3); !errors.Is(err, jobstore.ErrTooManyActive) {
			t.Fatalf("a 4th active job: %v, want ErrTooManyActive", err)
		}
		if _, err := r.Get(ctx, refused.JobID); !errors.Is(err, jobstore.ErrNotFound) {
			t.Errorf("the refused job was stored: %v", err)
		}
		if _, err := r.CreateWithin(ctx, Request(t, time.Now()), 3); err != nil {
			t.Errorf("another user's job: %v", err)
		}
		if _, err := r.Cancel(ctx, first, "quota-user"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.CreateWithin(ctx, mine(), 3); err != nil {
			t.Errorf("after one ended: %v", err)
		}
	})

	t.Run("create, then the whole life of a job with its events in order", func(t *testing.T) {
		r := fresh(t)
		req := Request(t, time.Now())
		created, err := r.Create(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if created.Status != jobstore.StatusQueued || created.Version != 1 || created.QueuePosition == nil || *created.QueuePosition != 1 {
			t.Fatalf("created %+v", created)
		}
		j, lease, err := r.Claim(ctx, req.JobID, opts("w1"))
		if err != nil || lease.Attempt != 1 || j.Status != jobstore.StatusRunning || j.QueuePosition != nil {
			t.Fatalf("claim: %+v %+v %v", j, lease, err)
		}
		now := time.Now().UTC()
		for _, c := range []job.Command{
			job.Start{Owner: "w1", Attempt: 1, RowsTotal: 10, At: now},
			job.Report{Owner: "w1", Attempt: 1, RowsDone: 5, BytesWritten: 50, Phase: events.PhaseWriting, At: now},
			job.Report{Owner: "w1", Attempt: 1, RowsDone: 10, BytesWritten: 100, Phase: events.PhaseUploading, At: now},
			job.Complete{Owner: "w1", Attempt: 1, Rows: 10, StartedAt: now, ExpiresAt: now.Add(time.Hour), At: now,
				Object: events.Object{Bucket: "b", Key: "products/x/1/a.csv", SizeBytes: 100, SHA256: "ab", FileName: "a.csv"}},
		} {
			if _, err := r.Do(ctx, req.JobID, c); err != nil {
				t.Fatalf("%s: %v", job.Name(c), err)
			}
		}
		got, err := r.Get(ctx, req.JobID)
		if err != nil || got.Status != jobstore.StatusCompleted || got.File == nil || got.File.Key != "products/x/1/a.csv" ||
			got.Progress != 100 || got.RowsDone != 10 || got.LeaseOwner != nil {
			t.Fatalf("completed job %+v %v", got, err)
		}
		// The events, in order, each with the state it led to.
		msgs, err := r.Pending(ctx, req.JobID)
		if err != nil {
			t.Fatal(err)
		}
		want := []events.Type{events.TypeRequested, events.TypeStarted, events.TypeProgress, events.TypeProgress, events.TypeCompleted}
		if len(msgs) != len(want) {
			t.Fatalf("%d events, want %d: %+v", len(msgs), len(want), msgs)
		}
		last := int64(1)
		for i, m := range msgs {
			if m.Envelope.Type != want[i] || m.Envelope.Key != req.JobID {
				t.Errorf("event %d: %s keyed %s, want %s", i, m.Envelope.Type, m.Envelope.Key, want[i])
			}
			if i == 0 {
				if m.Topic != events.TopicRequested {
					t.Errorf("request on %s", m.Topic)
				}
				continue
			}
			ev, err := events.DecodeAny(m.Envelope)
			if err != nil {
				t.Fatal(err)
			}
			st := events.StateOf(ev)
			if m.Topic != events.TopicEvents || st == nil || st.Version <= last {
				t.Errorf("event %d (%s) on %s with state %+v after version %d", i, m.Envelope.Type, m.Topic, st, last)
			} else {
				last = st.Version
			}
		}
		if last != got.Version {
			t.Errorf("last event's version %d, job's %d", last, got.Version)
		}
		// Finished: no second completion, no claim, no cancel.
		if _, err := r.Do(ctx, req.JobID, job.Complete{Owner: "w1", Attempt: 1, Rows: 1, Object: events.Object{Key: "k"}, At: now}); !errors.Is(err, job.ErrFinished) {
			t.Errorf("second completion: %v", err)
		}
		if _, _, err := r.Claim(ctx, req.JobID, opts("w2")); !errors.Is(err, jobstore.ErrNotClaimed) {
			t.Errorf("claiming a completed job: %v", err)
		}
		if j, err := r.Cancel(ctx, req.JobID, "bob"); !errors.Is(err, jobstore.ErrFinished) || j.Status != jobstore.StatusCompleted {
			t.Errorf("cancelling a completed job: %s %v", j.Status, err)
		}
		if msgs, _ := r.Pending(ctx, req.JobID); len(msgs) != len(want) {
			t.Errorf("refusals wrote events: %d now", len(msgs))
		}
	})

	t.Run("one claimer wins a race", func(t *testing.T) {
		r := fresh(t)
		req := Request(t, time.Now())
		if _, err := r.Create(ctx, req); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wins := make(chan jobstore.Lease, 8)
		for i := range 8 {
			wg.Go(func() {
				_, l, err := r.Claim(ctx, req.JobID, opts(fmt.Sprintf("w%d", i)))
				if err == nil {
					wins <- l
				} else if !errors.Is(err, jobstore.ErrNotClaimed) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		close(wins)
		if n := len(wins); n != 1 {
			t.Fatalf("%d claimers won", n)
		}
	})

	t.Run("racing writers: every change saved once, versions in order", func(t *testing.T) {
		r := fresh(t)
		req := Request(t, time.Now())
		if _, err := r.Create(ctx, req); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Claim(ctx, req.JobID, opts("w1")); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		if _, err := r.Do(ctx, req.JobID, job.Start{Owner: "w1", Attempt: 1, RowsTotal: 100, At: now}); err != nil {
			t.Fatal(err)
		}
		// Progress reports and renewals race; each either saves or is stale, never lost.
		var wg sync.WaitGroup
		var mu sync.Mutex
		saved := 0
		for i := 1; i <= 20; i++ {
			wg.Go(func() {
				var c job.Command = job.Report{Owner: "w1", Attempt: 1, RowsDone: int64(i), BytesWritten: int64(i), Phase: events.PhaseWriting, At: now}
				if i%4 == 0 {
					c = job.Renew{Owner: "w1", Attempt: 1, TTL: time.Hour, At: now}
				}
				_, err := r.Do(ctx, req.JobID, c)
				switch {
				case err == nil:
					mu.Lock()
					saved++
					mu.Unlock()
				case !errors.Is(err, job.ErrStale):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, err := r.Get(ctx, req.JobID)
		if err != nil {
			t.Fatal(err)
		}
		// Created 1, claimed 2, started 3, then one version per saved change.
		if got.Version != int64(3+saved) || got.RowsDone != 19 {
			t.Errorf("after %d saved changes: version %d rows %d; want version %d, rows 19", saved, got.Version, got.RowsDone, 3+saved)
		}
		msgs, _ := r.Pending(ctx, req.JobID)
		var rows int64
		for _, m := range msgs {
			if m.Envelope.Type != events.TypeProgress {
				continue
			}
			p, _ := events.Decode[events.ExportProgress](m.Envelope)
			if p.RowsDone <= rows {
				t.Errorf("progress %d after %d: events out of order", p.RowsDone, rows)
			}
			rows = p.RowsDone
		}
	})

	t.Run("the queue: oldest first, lapsed leases, hand-overs, exhausted attempts", func(t *testing.T) {
		r := fresh(t)
		clock := time.Now().UTC()
		var mu sync.Mutex
		r.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return clock })
		advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
		a, b := Request(t, clock.Add(-2*time.Second)), Request(t, clock.Add(-time.Second))
		for _, req := range []events.ExportRequested{b, a} {
			if _, err := r.Create(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
		short := jobstore.ClaimOptions{Owner: "w1", TTL: time.Minute, MaxAttempts: 2}
		j, l, err := r.ClaimNext(ctx, short)
		if err != nil || j.ID != a.JobID || l.Rescued {
			t.Fatalf("first ClaimNext got %s rescued %v (%v), want the oldest %s from the queue", j.ID, l.Rescued, err, a.JobID)
		}
		if j2, _, err := r.ClaimNext(ctx, short); err != nil || j2.ID != b.JobID {
			t.Fatalf("second ClaimNext got %s (%v), want %s", j2.ID, err, b.JobID)
		}
		if _, _, err := r.ClaimNext(ctx, short); !errors.Is(err, jobstore.ErrNotClaimed) {
			t.Fatalf("ClaimNext with every job leased: %v", err)
		}
		// A hand-over (shutdown) costs nothing and the job is waiting again at once.
		if _, err := r.Do(ctx, a.JobID, job.Release{Owner: "w1", Attempt: l.Attempt, At: clock}); err != nil {
			t.Fatal(err)
		}
		j, l, err = r.ClaimNext(ctx, short)
		if err != nil || j.ID != a.JobID || l.Attempt != 2 || j.Charged != 1 || l.Rescued {
			t.Fatalf("after a hand-over: %s attempt %d charged %d rescued %v (%v)", j.ID, l.Attempt, j.Charged, l.Rescued, err)
		}
		// Its worker vanishes: once the lease lapsed, another claims it, and the old holder
		// can no longer write.
		advance(2 * time.Minute)
		if _, err := r.Do(ctx, b.JobID, job.Renew{Owner: "w1", Attempt: 1, TTL: time.Hour, At: clock}); err != nil {
			t.Fatal(err) // b's holder is alive: renewing a lapsed lease nobody took is fine
		}
		rescued, l2, err := r.ClaimNext(ctx, jobstore.ClaimOptions{Owner: "w2", TTL: time.Minute, MaxAttempts: 2})
		if err != nil || rescued.ID != a.JobID || l2.Attempt != 3 || rescued.Charged != 2 || !l2.Rescued {
			t.Fatalf("rescue: %s attempt %d charged %d rescued %v (%v)", rescued.ID, l2.Attempt, rescued.Charged, l2.Rescued, err)
		}
		if _, err := r.Do(ctx, a.JobID, job.Report{Owner: "w1", Attempt: 2, RowsDone: 1, Phase: events.PhaseWriting, At: clock}); !errors.Is(err, job.ErrLeaseLost) {
			t.Errorf("the vanished holder's report: %v", err)
		}
		// That one fails for real: its second charged attempt, so the next claim fails the job
		// with that error.
		cause := &job.Error{Code: "export_failed", Message: "the export failed while storing the file"}
		if _, err := r.Do(ctx, a.JobID, job.Release{Owner: "w2", Attempt: 3, Cause: cause, At: clock}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.ClaimNext(ctx, short); !errors.Is(err, jobstore.ErrNotClaimed) {
			t.Fatalf("ClaimNext over an exhausted job: %v", err)
		}
		failed, _ := r.Get(ctx, a.JobID)
		if failed.Status != jobstore.StatusFailed || failed.Error == nil || failed.Error.Code != "export_failed" {
			t.Fatalf("exhausted job: %s %+v", failed.Status, failed.Error)
		}
		msgs, _ := r.Pending(ctx, a.JobID)
		if last := msgs[len(msgs)-1]; last.Envelope.Type != events.TypeFailed {
			t.Errorf("the exhausted job's last event is %s", last.Envelope.Type)
		}
	})

	t.Run("a claim by id takes over a lapsed lease and says it rescued the job", func(t *testing.T) {
		r := fresh(t)
		clock := time.Now().UTC()
		var mu sync.Mutex
		r.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return clock })
		req := Request(t, clock)
		if _, err := r.Create(ctx, req); err != nil {
			t.Fatal(err)
		}
		o := jobstore.ClaimOptions{Owner: "w1", TTL: time.Minute, MaxAttempts: 3}
		if _, l, err := r.Claim(ctx, req.JobID, o); err != nil || l.Rescued {
			t.Fatalf("first claim: rescued %v (%v)", l.Rescued, err)
		}
		mu.Lock()
		clock = clock.Add(2 * time.Minute)
		mu.Unlock()
		o.Owner = "w2"
		if _, l, err := r.Claim(ctx, req.JobID, o); err != nil || !l.Rescued || l.Attempt != 2 {
			t.Fatalf("claim over a lapsed lease: attempt %d rescued %v (%v)", l.Attempt, l.Rescued, err)
		}
	})

	t.Run("list: newest first, filters, cursor, no deleted job", func(t *testing.T) {
		r := fresh(t)
		base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		var ids []string // oldest first
		for i := range 7 {
			req := Request(t, base.Add(time.Duration(i)*time.Minute))
			req.Format = []string{"csv", "excel"}[i%2]
			if _, err := r.Create(ctx, req); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, req.JobID)
		}
		if _, err := r.Delete(ctx, ids[6], "bob", nil); err != nil {
			t.Fatal(err)
		}
		var got []string
		f := jobstore.ListFilter{Format: "csv", Limit: 2}
		for pages := 0; pages < 10; pages++ {
			jobs, next, err := r.List(ctx, f)
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
		// csv: 0, 2, 4, 6 (deleted): newest first, without the deleted one.
		if want := []string{ids[4], ids[2], ids[0]}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("listed %v, want %v", got, want)
		}
		if _, _, err := r.List(ctx, jobstore.ListFilter{Cursor: "bogus"}); !errors.Is(err, jobstore.ErrBadCursor) {
			t.Errorf("a bad cursor: %v", err)
		}
		jobs, _, err := r.List(ctx, jobstore.ListFilter{Status: jobstore.StatusQueued, CreatedAfter: base.Add(time.Minute), CreatedBefore: base.Add(3 * time.Minute)})
		if err != nil || len(jobs) != 2 || jobs[0].ID != ids[2] || jobs[1].ID != ids[1] || jobs[0].QueuePosition == nil {
			t.Errorf("a time range: %d jobs (%v)", len(jobs), err)
		}
	})

	t.Run("deliveries: due oldest first, one worker each, retried after their delay", func(t *testing.T) {
		r := fresh(t)
		var mu sync.Mutex
		clock := time.Now().UTC().Truncate(time.Microsecond)
		r.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return clock })
		advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
		if _, err := r.ClaimDelivery(ctx, "d1", time.Minute); !errors.Is(err, jobstore.ErrNotClaimed) {
			t.Fatalf("claim with nothing to deliver: %v", err)
		}
		complete := func(deliver bool) string {
			req := Request(t, clock)
			req.Deliver = deliver
			if _, err := r.Create(ctx, req); err != nil {
				t.Fatal(err)
			}
			_, lease, err := r.Claim(ctx, req.JobID, opts("w"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Do(ctx, req.JobID, job.Complete{Owner: "w", Attempt: lease.Attempt, Rows: 1,
				Object: events.Object{Key: "k/" + req.JobID, SizeBytes: 1}, StartedAt: clock, ExpiresAt: clock.Add(time.Hour), At: clock}); err != nil {
				t.Fatal(err)
			}
			return req.JobID
		}
		complete(false) // no destination: nothing to deliver
		first := complete(true)
		advance(time.Second)
		second := complete(true)
		got, err := r.ClaimDelivery(ctx, "d1", time.Minute)
		if err != nil || got.ID != first || got.Delivery.Status != job.DeliveryDelivering || got.Delivery.Attempts != 1 {
			t.Fatalf("first claim: %v %+v", err, got.Delivery)
		}
		if got, err := r.ClaimDelivery(ctx, "d2", time.Minute); err != nil || got.ID != second {
			t.Fatalf("second claim: %v %s", err, got.ID)
		}
		if _, err := r.ClaimDelivery(ctx, "d3", time.Minute); !errors.Is(err, jobstore.ErrNotClaimed) {
			t.Fatalf("both held, yet: %v", err)
		}
		// The first fails and comes back after its delay; the second's worker dies.
		if _, err := r.Do(ctx, first, job.DeliveryAttemptFailed{Owner: "d1", Attempt: 1, Error: job.Error{Code: "delivery_failed", Message: "refused"},
			RetryAfter: 30 * time.Second, At: clock}); err != nil {
			t.Fatal(err)
		}
		advance(20 * time.Second)
		if _, err := r.ClaimDelivery(ctx, "d3", time.Minute); !errors.Is(err, jobstore.ErrNotClaimed) {
			t.Fatalf("claimed before the delay ended: %v", err)
		}
		advance(41 * time.Second) // past the retry (30 s) and the second's lease (1 min)
		a, err := r.ClaimDelivery(ctx, "d3", time.Minute)
		if err != nil || a.ID != first || a.Delivery.Attempts != 2 {
			t.Fatalf("retry claim: %v %s %+v", err, a.ID, a.Delivery)
		}
		b, err := r.ClaimDelivery(ctx, "d4", time.Minute)
		if err != nil || b.ID != second || b.Delivery.Attempts != 2 {
			t.Fatalf("lapsed lease claim: %v %s %+v", err, b.ID, b.Delivery)
		}
		done, err := r.Do(ctx, second, job.Delivered{Owner: "d4", Attempt: 2, Target: "s3://partner/x", At: clock})
		if err != nil || done.Delivery.Status != job.DeliveryDelivered || done.Status != jobstore.StatusCompleted {
			t.Fatalf("delivered: %v %+v", err, done.Delivery)
		}
		if got, _ := r.Get(ctx, second); got.Delivery == nil || got.Delivery.Target != "s3://partner/x" || got.Delivery.DeliveredAt == nil {
			t.Errorf("stored delivery %+v", got.Delivery)
		}
		msgs, _ := r.Pending(ctx, "delivery:"+second)
		if len(msgs) != 1 || msgs[0].Envelope.Type != events.TypeDelivered {
			t.Errorf("delivery events %+v", msgs)
		}
		if _, err := r.Do(ctx, second, job.Delivered{Owner: "d2", Attempt: 1, Target: "x", At: clock}); !errors.Is(err, job.ErrLeaseLost) {
			t.Errorf("the dead worker's late success: %v", err)
		}
	})

	t.Run("cancel and delete", func(t *testing.T) {
		r := fresh(t)
		req := Request(t, time.Now())
		if _, err := r.Create(ctx, req); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Claim(ctx, req.JobID, opts("w1")); err != nil {
			t.Fatal(err)
		}
		c, err := r.Cancel(ctx, req.JobID, "bob")
		if err != nil || c.Status != jobstore.StatusCancelled || c.CancelledBy == nil || *c.CancelledBy != "bob" {
			t.Fatalf("cancel: %+v %v", c, err)
		}
		if stop, _ := r.Cancelled(ctx, req.JobID); !stop {
			t.Error("Cancelled is false after a cancel")
		}
		// The worker's completion comes too late.
		if _, err := r.Do(ctx, req.JobID, job.Complete{Owner: "w1", Attempt: 1, Rows: 1, Object: events.Object{Key: "k"}, At: time.Now()}); !errors.Is(err, job.ErrFinished) {
			t.Errorf("completing a cancelled job: %v", err)
		}
		if _, err := r.Delete(ctx, req.JobID, "bob", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Get(ctx, req.JobID); !errors.Is(err, jobstore.ErrNotFound) {
			t.Errorf("Get of a deleted job: %v", err)
		}
		if j, err := r.GetAny(ctx, req.JobID); err != nil || !j.Deleted() {
			t.Errorf("GetAny of a deleted job: %+v %v", j, err)
		}
		for name, err := range map[string]error{
			"cancel": func() error { _, err := r.Cancel(ctx, req.JobID, "bob"); return err }(),
			"delete": func() error { _, err := r.Delete(ctx, req.JobID, "bob", nil); return err }(),
			"claim":  func() error { _, _, err := r.Claim(ctx, req.JobID, opts("w")); return err }(),
		} {
			if !errors.Is(err, jobstore.ErrNotFound) && !errors.Is(err, jobstore.ErrNotClaimed) {
				t.Errorf("%s of a deleted job: %v", name, err)
			}
		}
		msgs, _ := r.Pending(ctx, req.JobID)
		if n := len(msgs); n != 2 || msgs[1].Envelope.Type != events.TypeCancelled {
			t.Errorf("events of a cancelled then deleted job: %+v", msgs)
		}
		// Deleting a running job cancels it, with one ExportCancelled.
		req2 := Request(t, time.Now())
		if _, err := r.Create(ctx, req2); err != nil {
			t.Fatal(err)
		}
		// The delete's audit event is written with it, completed with the job's details.
		d, err := r.Delete(ctx, req2.JobID, "bob", &events.Accessed{ID: "a-1", ActorID: "bob", ClientIP: "192.0.2.7", At: time.Now()})
		if err != nil || d.Status != jobstore.StatusCancelled || !d.Deleted() {
			t.Errorf("deleting a queued job: %s deleted=%v %v", d.Status, d.Deleted(), err)
		}
		audited, _ := r.Pending(ctx, "access:"+req2.JobID)
		if len(audited) != 1 || audited[0].Envelope.Type != events.TypeAccessed {
			t.Fatalf("audit events of the delete: %+v", audited)
		}
		var a events.Accessed
		if err := json.Unmarshal(audited[0].Envelope.Data, &a); err != nil || a.Action != events.ActionDeleted || a.ActorID != "bob" ||
			a.ClientIP != "192.0.2.7" || a.ResourceID != req2.JobID || a.Owner != req2.RequestedBy || a.Entity != req2.Entity {
			t.Errorf("the delete audited as %+v (%v)", a, err)
		}
		if _, err := r.Cancel(ctx, "5f1c2b9e-0000-4000-8000-000000000000", "bob"); !errors.Is(err, jobstore.ErrNotFound) {
			t.Errorf("cancelling an unknown job: %v", err)
		}
	})

	t.Run("a job keeps the trace context it was requested under, its events the change's", func(t *testing.T) {
		r := fresh(t)
		state, err := trace.ParseTraceState("vendor=x")
		if err != nil {
			t.Fatal(err)
		}
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID:    trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c},
			SpanID:     trace.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31},
			TraceFlags: trace.FlagsSampled,
			TraceState: state,
		})
		const want = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		traced := trace.ContextWithSpanContext(ctx, sc)
		req := Request(t, time.Now())
		if _, err := r.Create(traced, req); err != nil {
			t.Fatal(err)
		}
		if tp, ts, err := r.TraceContext(ctx, req.JobID); err != nil || tp != want || ts != "vendor=x" {
			t.Errorf("TraceContext = %q, %q, %v; want %q, vendor=x", tp, ts, err, want)
		}
		// Cancelled outside any trace: the job keeps its request's, the ExportCancelled has none.
		if _, err := r.Cancel(ctx, req.JobID, "alice"); err != nil {
			t.Fatal(err)
		}
		if tp, _, err := r.TraceContext(ctx, req.JobID); err != nil || tp != want {
			t.Errorf("TraceContext after an untraced change = %q, %v; want %q", tp, err, want)
		}
		msgs, err := r.Pending(ctx, req.JobID)
		if err != nil {
			t.Fatal(err)
		}
		byType := map[events.Type]string{}
		for _, m := range msgs {
			byType[m.Envelope.Type] = m.Envelope.TraceParent + " " + m.Envelope.TraceState
		}
		if len(byType) != 2 || byType[events.TypeRequested] != want+" vendor=x" || byType[events.TypeCancelled] != " " {
			t.Errorf("events' trace contexts %q; want the request's on ExportRequested only", byType)
		}

		untraced := Request(t, time.Now())
		if _, err := r.Create(ctx, untraced); err != nil {
			t.Fatal(err)
		}
		if tp, ts, err := r.TraceContext(ctx, untraced.JobID); err != nil || tp != "" || ts != "" {
			t.Errorf("TraceContext of a job requested outside a trace = %q, %q, %v", tp, ts, err)
		}
		if _, _, err := r.TraceContext(ctx, Request(t, time.Now()).JobID); !errors.Is(err, jobstore.ErrNotFound) {
			t.Errorf("TraceContext of an unknown job: %v, want ErrNotFound", err)
		}
	})
}
