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
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/exporter/internal/intake"
	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/telemetry/telemetrytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitFor = 10 * time.Second

// claimer is the in-memory job store, counting claims; claimErr makes Claim of a job fail.
type claimer struct {
	*jobstore.Memory
	mu        sync.Mutex
	claimErr  map[string]error
	claims    []string
	nextCalls int
	nextIDs   []string
}

func newClaimer() *claimer {
	return &claimer{Memory: jobstore.NewMemory(), claimErr: map[string]error{}}
}

func (c *claimer) Claim(ctx context.Context, id string, o jobstore.ClaimOptions) (jobstore.Job, jobstore.Lease, error) {
	c.mu.Lock()
	c.claims = append(c.claims, id)
	err := c.claimErr[id]
	c.mu.Unlock()
	if err != nil {
		return jobstore.Job{}, jobstore.Lease{}, err
	}
	return c.Memory.Claim(ctx, id, o)
}

func (c *claimer) ClaimNext(ctx context.Context, o jobstore.ClaimOptions) (jobstore.Job, jobstore.Lease, error) {
	j, l, err := c.Memory.ClaimNext(ctx, o)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextCalls++
	if err == nil {
		c.nextIDs = append(c.nextIDs, j.ID)
	}
	return j, l, err
}

func (c *claimer) state() (claims, next []string, nextCalls int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.claims), slices.Clone(c.nextIDs), c.nextCalls
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

// requested creates a queued job in the store and returns its id and ExportRequested.
func (f *fixture) requested(t *testing.T) (string, events.Envelope) {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	req := events.ExportRequested{JobID: id, Entity: "products", Format: "csv", RequestedBy: "alice", RequestedAt: time.Now().UTC()}
	if _, err := f.claims.Create(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	env, err := events.Wrap(req)
	if err != nil {
		t.Fatal(err)
	}
	return id, env
}

type fixture struct {
	in      *intake.Intake
	claims  *claimer
	jobs    *jobs
	jobCtx  context.Context
	stopJob context.CancelFunc
}

func newFixture(t *testing.T, concurrency int, poll time.Duration) *fixture {
	t.Helper()
	f := &fixture{claims: newClaimer(), jobs: newJobs()}
	f.jobCtx, f.stopJob = context.WithCancel(context.Background())
	f.in = intake.New(f.jobCtx, f.claims, f.jobs.run, jobstore.ClaimOptions{Owner: "worker-1", TTL: time.Minute, MaxAttempts: 3},
		concurrency, poll, slog.New(slog.NewTextHandler(t.Output(), nil)))
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

// poll runs the poller until the test ends.
func (f *fixture) poll(t *testing.T) {
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.in.Poll(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Poll = %v, want nil on cancel", err)
		}
	})
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

// TestHandleNeverBlocks: with every slot busy, Handle returns at once (its partition moves on)
// and the job waits in the queue; the poller claims it as soon as a slot frees.
func TestHandleNeverBlocks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2, time.Hour) // no poll tick during the test: only a freed slot wakes it
	f.poll(t)
	ctx := t.Context()
	var ids []string
	for range 2 {
		id, env := f.requested(t)
		ids = append(ids, id)
		if err := f.in.Handle(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "both jobs to run", func() bool { r, _, _ := f.jobs.snapshot(); return len(r) == 2 })

	third, env3 := f.requested(t)
	if err := recv(t, handleAsync(ctx, f.in, env3), "Handle with every slot busy"); err != nil {
		t.Fatal(err)
	}
	if claims, _, _ := f.claims.state(); slices.Contains(claims, third) {
		t.Fatal("the third job was claimed without a free slot")
	}
	if j, _ := f.claims.Get(ctx, third); j.Status != jobstore.StatusQueued {
		t.Fatalf("the third job is %s, want queued", j.Status)
	}

	f.jobs.release(t, ids[0])
	eventually(t, "the third job to run once a slot freed", func() bool { return f.jobs.isRunning(third) })
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
	id, env := f.requested(t)
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

func TestHandleClaimErrors(t *testing.T) {
	t.Parallel()
	dbDown := errors.New("dial tcp 127.0.0.1:55432: connection refused")
	tests := []struct {
		name string
		err  error
	}{
		{name: "not claimable", err: jobstore.ErrNotClaimed},
		{name: "wrapped not claimable", err: errors.Join(errors.New("claiming"), jobstore.ErrNotClaimed)},
		{name: "deleted job", err: jobstore.ErrNotFound},
		// The job stays queued and the poller claims it later: the record need not wait.
		{name: "database down", err: dbDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, 1, time.Hour) // one slot: a leaked slot would block the next job
			id, env := f.requested(t)
			f.claims.claimErr[id] = tt.err
			if err := recv(t, handleAsync(t.Context(), f.in, env), "Handle"); err != nil {
				t.Errorf("Handle = %v, want nil (committed)", err)
			}
			if _, started, _ := f.jobs.snapshot(); len(started) != 0 {
				t.Errorf("ran %v without a lease", started)
			}
			// The slot was given back.
			next, env2 := f.requested(t)
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
	_, good := f.requested(t)
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

// TestPollOnlyWithAFreeSlot: the poller claims waiting jobs oldest first, one per free slot,
// and does not even ask while every slot is busy.
func TestPollOnlyWithAFreeSlot(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1, 2*time.Millisecond)
	ctx := t.Context()
	busy, env := f.requested(t)
	if err := f.in.Handle(ctx, env); err != nil {
		t.Fatal(err)
	}
	waiting1, _ := f.requested(t) // their ExportRequested went elsewhere (or was lost)
	waiting2, _ := f.requested(t)
	f.poll(t)

	// Many ticks pass with the only slot busy: the poller claims nothing.
	time.Sleep(50 * time.Millisecond) // ticks to observe (the absence of claims cannot be polled for)
	if _, claimed, calls := f.claims.state(); calls != 0 || len(claimed) != 0 {
		t.Fatalf("poller called ClaimNext %d times (claimed %v) with every slot busy", calls, claimed)
	}

	f.jobs.release(t, busy)
	eventually(t, "the oldest waiting job to be claimed", func() bool { return f.jobs.isRunning(waiting1) })
	if _, claimed, _ := f.claims.state(); !slices.Equal(claimed, []string{waiting1}) {
		t.Fatalf("claimed %v, want only %s while it holds the only slot", claimed, waiting1)
	}
	f.jobs.mu.Lock()
	lastCtx := f.jobs.ctxs[len(f.jobs.ctxs)-1]
	f.jobs.mu.Unlock()
	if lastCtx != f.jobCtx {
		t.Error("a polled job does not run under the jobs' context")
	}
	f.jobs.release(t, waiting1)
	eventually(t, "the second waiting job to be claimed", func() bool { return f.jobs.isRunning(waiting2) })
	f.jobs.release(t, waiting2)
	if _, started, maxRunning := f.jobs.snapshot(); len(started) != 3 || maxRunning != 1 {
		t.Errorf("started %v (max %d at once), want busy + 2 waiting, one at a time", started, maxRunning)
	}
}

// TestRangeWorkContinuesItsJobsTrace: a range claimed by a free slot runs in the trace its
// job was requested under (the job row keeps it), so its catalog query, writer and upload are
// not root traces. Not parallel: it records spans.
func TestRangeWorkContinuesItsJobsTrace(t *testing.T) {
	telemetrytest.Record(t)
	f := newFixture(t, 1, 2*time.Millisecond)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x0a, 0xf7}, SpanID: trace.SpanID{0xb7, 0xad}, TraceFlags: trace.FlagsSampled,
	})
	id := uuid.Must(uuid.NewV7()).String()
	req := events.ExportRequested{JobID: id, Entity: "products", Format: "csv", RequestedBy: "alice", RequestedAt: time.Now().UTC()}
	if _, err := f.claims.Create(trace.ContextWithSpanContext(context.Background(), sc), req); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	worked := make(chan context.Context, 1)
	f.in.WithRanges(func(context.Context) (string, func(context.Context), bool) {
		claimed := false
		once.Do(func() { claimed = true })
		if !claimed {
			return "", nil, false
		}
		return id, func(ctx context.Context) { worked <- ctx }, true
	})
	f.poll(t)
	var ctx context.Context
	select {
	case ctx = <-worked:
	case <-time.After(waitFor):
		t.Fatal("the range was not worked")
	}
	if got := trace.SpanContextFromContext(ctx); got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() {
		t.Errorf("range worked in span context %v, want the job's request %v", got, sc)
	}
	if ctx.Done() != f.jobCtx.Done() {
		t.Error("range work does not run under the jobs' context")
	}
}
