package intake_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/exporter/internal/intake"
	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitFor = 10 * time.Second

// fakeClaimer hands out leases: Claim succeeds unless an error is set for the job id;
// ClaimExpired pops the expired queue.
type fakeClaimer struct {
	mu            sync.Mutex
	claimErr      map[string]error
	claims        []string
	expired       []string
	expiredCalls  int
	expiredClaims []string
	attempt       int
}

func newFakeClaimer() *fakeClaimer { return &fakeClaimer{claimErr: map[string]error{}} }

func (c *fakeClaimer) Claim(_ context.Context, jobID, owner string, _ time.Duration) (jobstore.Job, jobstore.Lease, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.claims = append(c.claims, jobID)
	if err := c.claimErr[jobID]; err != nil {
		return jobstore.Job{}, jobstore.Lease{}, err
	}
	c.attempt++
	return jobstore.Job{ID: jobID, Status: jobstore.StatusRunning, Attempt: 1},
		jobstore.Lease{JobID: jobID, Owner: owner, Attempt: 1}, nil
}

func (c *fakeClaimer) ClaimExpired(_ context.Context, owner string, _ time.Duration) (jobstore.Job, jobstore.Lease, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expiredCalls++
	if len(c.expired) == 0 {
		return jobstore.Job{}, jobstore.Lease{}, jobstore.ErrNotClaimed
	}
	id := c.expired[0]
	c.expired = c.expired[1:]
	c.expiredClaims = append(c.expiredClaims, id)
	return jobstore.Job{ID: id, Status: jobstore.StatusRunning, Attempt: 2},
		jobstore.Lease{JobID: id, Owner: owner, Attempt: 2}, nil
}

func (c *fakeClaimer) state() (claims, expiredClaims []string, expiredCalls int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.claims), slices.Clone(c.expiredClaims), c.expiredCalls
}

// jobs is a RunFunc whose jobs block until released one by one; it tracks how many run at
// once.
type jobs struct {
	mu       sync.Mutex
	running  map[string]chan struct{}
	started  []string
	ctxs     []context.Context
	finished []string
	max      int
}

func newJobs() *jobs { return &jobs{running: map[string]chan struct{}{}} }

func (j *jobs) run(ctx context.Context, job jobstore.Job, lease jobstore.Lease) {
	release := make(chan struct{})
	j.mu.Lock()
	j.running[job.ID] = release
	j.started = append(j.started, job.ID)
	j.ctxs = append(j.ctxs, ctx)
	j.max = max(j.max, len(j.running))
	j.mu.Unlock()
	select {
	case <-release:
	case <-ctx.Done():
	}
	j.mu.Lock()
	delete(j.running, job.ID)
	j.finished = append(j.finished, job.ID)
	j.mu.Unlock()
}

func (j *jobs) release(t *testing.T, id string) {
	t.Helper()
	j.mu.Lock()
	ch, ok := j.running[id]
	j.mu.Unlock()
	if !ok {
		t.Fatalf("job %s is not running", id)
	}
	close(ch)
	eventually(t, "job "+id+" to finish", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		return slices.Contains(j.finished, id)
	})
}

func (j *jobs) snapshot() (running []string, started []string, maxRunning int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for id := range j.running {
		running = append(running, id)
	}
	slices.Sort(running)
	return running, slices.Clone(j.started), j.max
}

func (j *jobs) isRunning(id string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	_, ok := j.running[id]
	return ok
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// notReturned checks that ch stays open for a short while: the only way to observe blocking.
func notReturned[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s returned (%v) instead of blocking", what, v)
	case <-time.After(50 * time.Millisecond):
	}
}

func requested(t *testing.T) (string, events.Envelope) {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	env, err := events.Wrap(events.ExportRequested{JobID: id, Entity: "products", Format: "csv", RequestedBy: "alice",
		RequestedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return id, env
}

type fixture struct {
	in      *intake.Intake
	claims  *fakeClaimer
	jobs    *jobs
	jobCtx  context.Context
	stopJob context.CancelFunc
}

func newFixture(t *testing.T, concurrency int, rescue time.Duration) *fixture {
	t.Helper()
	f := &fixture{claims: newFakeClaimer(), jobs: newJobs()}
	f.jobCtx, f.stopJob = context.WithCancel(context.Background())
	f.in = intake.New(f.jobCtx, f.claims, f.jobs.run, "worker-1", time.Minute, concurrency, rescue,
		slog.New(slog.NewTextHandler(t.Output(), nil)))
	t.Cleanup(func() {
		f.stopJob() // shutdown: cancel what still runs, then wait for it
		done := make(chan struct{})
		go func() { f.in.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Error("Wait did not return after the jobs were cancelled")
		}
	})
	return f
}

func handleAsync(ctx context.Context, in *intake.Intake, env events.Envelope) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- in.Handle(ctx, env) }()
	return errc
}

func recv(t *testing.T, errc <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(waitFor):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

func TestHandleBoundsConcurrency(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2, time.Hour)
	ctx := t.Context()
	var ids []string
	for range 2 {
		id, env := requested(t)
		ids = append(ids, id)
		if err := f.in.Handle(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "both jobs to run", func() bool { r, _, _ := f.jobs.snapshot(); return len(r) == 2 })

	// Every slot is busy: the third waits, unclaimed, holding back its partition.
	third, env3 := requested(t)
	errc := handleAsync(ctx, f.in, env3)
	notReturned(t, errc, "Handle with every slot busy")
	if claims, _, _ := f.claims.state(); slices.Contains(claims, third) {
		t.Fatal("the third job was claimed before a slot was free")
	}

	f.jobs.release(t, ids[0])
	if err := recv(t, errc, "Handle once a slot was freed"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the third job to run", func() bool { return f.jobs.isRunning(third) })
	f.jobs.release(t, ids[1])
	f.jobs.release(t, third)
	if _, started, maxRunning := f.jobs.snapshot(); maxRunning != 2 || len(started) != 3 {
		t.Errorf("at most %d jobs ran at once (want 2), %d started (want 3)", maxRunning, len(started))
	}
}

func TestJobsOutliveTheHandlerContext(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, time.Hour)
	hctx, cancel := context.WithCancel(t.Context())
	id, env := requested(t)
	if err := f.in.Handle(hctx, env); err != nil {
		t.Fatal(err)
	}
	cancel() // the consumer moves on (or stops): the claimed job keeps running
	eventually(t, "the job to run", func() bool { return f.jobs.isRunning(id) })
	f.jobs.mu.Lock()
	jctx := f.jobs.ctxs[0]
	f.jobs.mu.Unlock()
	if jctx.Err() != nil {
		t.Fatal("the job's context ended with the handler's")
	}
	f.stopJob() // shutdown cancels the jobs, and Wait waits for them
	f.in.Wait()
	if f.jobs.isRunning(id) {
		t.Error("Wait returned while the job ran")
	}
}

func TestHandleReturnsWhenCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, time.Hour)
	busy, env := requested(t)
	if err := f.in.Handle(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	waiting, env2 := requested(t)
	errc := handleAsync(ctx, f.in, env2)
	notReturned(t, errc, "Handle with the only slot busy")
	cancel()
	if err := recv(t, errc, "Handle after cancel"); !errors.Is(err, context.Canceled) {
		t.Errorf("Handle = %v, want context.Canceled (the record is left for redelivery)", err)
	}
	claims, _, _ := f.claims.state()
	if !slices.Equal(claims, []string{busy}) || slices.Contains(claims, waiting) {
		t.Errorf("claims %v, want only %s", claims, busy)
	}
	// The cancelled wait took no slot: once the busy job ends, a new job gets in at once.
	f.jobs.release(t, busy)
	next, env3 := requested(t)
	if err := recv(t, handleAsync(t.Context(), f.in, env3), "Handle with a free slot"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the next job to run", func() bool { return f.jobs.isRunning(next) })
}

func TestHandleClaimErrors(t *testing.T) {
	t.Parallel()
	dbDown := errors.New("dial tcp 127.0.0.1:55432: connection refused")
	tests := []struct {
		name    string
		err     error
		wantErr error // nil: handled (offset committed), no job run
	}{
		{name: "not claimable", err: jobstore.ErrNotClaimed},
		{name: "wrapped not claimable", err: errors.Join(errors.New("claiming"), jobstore.ErrNotClaimed)},
		{name: "deleted job", err: jobstore.ErrNotFound},
		{name: "database down", err: dbDown, wantErr: dbDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, 1, time.Hour) // one slot: a leaked slot would block the next Handle
			id, env := requested(t)
			f.claims.claimErr[id] = tt.err
			err := recv(t, handleAsync(t.Context(), f.in, env), "Handle")
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Handle = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil && errors.Is(err, eventbus.ErrPermanent) {
				t.Errorf("a transient claim error was made permanent: %v", err)
			}
			if _, started, _ := f.jobs.snapshot(); len(started) != 0 {
				t.Errorf("ran %v without a lease", started)
			}
			// The slot was given back.
			next, env2 := requested(t)
			if err := recv(t, handleAsync(t.Context(), f.in, env2), "the next Handle"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the next job to run", func() bool { return f.jobs.isRunning(next) })
		})
	}
}

func TestHandleUndecodableEventIsPermanent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, time.Hour)
	_, good := requested(t)
	tests := []struct {
		name string
		env  events.Envelope
	}{
		{"not JSON", func() events.Envelope { e := good; e.Data = []byte("not json"); return e }()},
		{"wrong shape", func() events.Envelope { e := good; e.Data = []byte(`{"job_id": 42}`); return e }()},
		{"another event type", func() events.Envelope { e := good; e.Type = events.TypeStarted; return e }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.in.Handle(t.Context(), tt.env)
			if !errors.Is(err, eventbus.ErrPermanent) {
				t.Errorf("Handle = %v, want eventbus.ErrPermanent", err)
			}
		})
	}
	if claims, _, _ := f.claims.state(); len(claims) != 0 {
		t.Errorf("claimed %v for undecodable events", claims)
	}
}

func TestRescueOnlyWithAFreeSlot(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, 2*time.Millisecond)
	ctx, stop := context.WithCancel(t.Context())
	rescueDone := make(chan error, 1)

	busy, env := requested(t)
	if err := f.in.Handle(ctx, env); err != nil {
		t.Fatal(err)
	}
	f.claims.mu.Lock()
	f.claims.expired = []string{"expired-1", "expired-2"}
	f.claims.mu.Unlock()
	go func() { rescueDone <- f.in.Rescue(ctx) }()

	// Many ticks pass with the only slot busy: the rescuer claims nothing.
	notReturned(t, rescueDone, "Rescue")
	if _, claimed, calls := f.claims.state(); calls != 0 || len(claimed) != 0 {
		t.Fatalf("rescuer called ClaimExpired %d times (claimed %v) with every slot busy", calls, claimed)
	}

	f.jobs.release(t, busy)
	eventually(t, "the first expired job to be rescued", func() bool { return f.jobs.isRunning("expired-1") })
	if _, claimed, _ := f.claims.state(); !slices.Equal(claimed, []string{"expired-1"}) {
		t.Fatalf("rescued %v, want only expired-1 while it holds the only slot", claimed)
	}
	f.jobs.mu.Lock()
	lastCtx := f.jobs.ctxs[len(f.jobs.ctxs)-1]
	f.jobs.mu.Unlock()
	if lastCtx != f.jobCtx {
		t.Error("a rescued job does not run under the jobs' context")
	}

	f.jobs.release(t, "expired-1")
	eventually(t, "the second expired job to be rescued", func() bool { return f.jobs.isRunning("expired-2") })
	f.jobs.release(t, "expired-2")
	// Nothing left to rescue: ClaimExpired keeps answering ErrNotClaimed and no job starts.
	_, _, calls := f.claims.state()
	eventually(t, "more rescue polls", func() bool { _, _, c := f.claims.state(); return c > calls+3 })
	if _, started, maxRunning := f.jobs.snapshot(); len(started) != 3 || maxRunning != 1 {
		t.Errorf("started %v (max %d at once), want busy + 2 rescued, one at a time", started, maxRunning)
	}

	stop()
	if err := recv(t, rescueDone, "Rescue after cancel"); err != nil {
		t.Errorf("Rescue = %v, want nil on cancel", err)
	}
}
