// Package intake decides which jobs this exporter instance runs: the ExportRequested handler
// (claim the job's lease, then let the offset be committed while the job runs elsewhere) and
// the rescuer (claim jobs whose lease expired because their worker died). A fixed number of
// slots bounds concurrent jobs; when all are busy the handler waits, which pauses this
// instance's partitions — never beyond its configured concurrency.
package intake

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// Claimer is the claiming side of the job store.
type Claimer interface {
	Claim(ctx context.Context, jobID, owner string, ttl time.Duration) (jobstore.Job, jobstore.Lease, error)
	ClaimExpired(ctx context.Context, owner string, ttl time.Duration) (jobstore.Job, jobstore.Lease, error)
}

// RunFunc runs one claimed job to its end.
type RunFunc func(ctx context.Context, job jobstore.Job, lease jobstore.Lease)

// Intake owns the slots.
type Intake struct {
	claims   Claimer
	run      RunFunc
	owner    string
	ttl      time.Duration
	interval time.Duration
	log      *slog.Logger
	slots    chan struct{}
	wg       sync.WaitGroup
	// jobCtx is the parent of running jobs: cancelled only at shutdown, after intake stopped.
	jobCtx context.Context
}

// New builds an intake with concurrency slots; rescue is the rescuer's poll interval.
func New(jobCtx context.Context, c Claimer, run RunFunc, owner string, ttl time.Duration, concurrency int, rescue time.Duration, log *slog.Logger) *Intake {
	return &Intake{
		claims: c, run: run, owner: owner, ttl: ttl, interval: rescue, log: log,
		slots: make(chan struct{}, concurrency), jobCtx: jobCtx,
	}
}

// Handle is the eventbus handler of exports.requested.
func (in *Intake) Handle(ctx context.Context, env events.Envelope) error {
	req, err := events.Decode[events.ExportRequested](env)
	if err != nil {
		return eventbus.Permanent(err)
	}
	select { // wait for a free slot: back-pressure on this partition only
	case in.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	job, lease, err := in.claims.Claim(ctx, req.JobID, in.owner, in.ttl)
	if err != nil {
		<-in.slots
		if errors.Is(err, jobstore.ErrNotClaimed) || errors.Is(err, jobstore.ErrNotFound) {
			in.log.Info("job not claimable (finished, deleted or running elsewhere)", "job_id", req.JobID)
			return nil
		}
		return err // database trouble: retried by the consumer
	}
	in.start(job, lease)
	return nil
}

func (in *Intake) start(job jobstore.Job, lease jobstore.Lease) {
	in.log.Info("job claimed", "job_id", job.ID, "attempt", lease.Attempt)
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		defer func() { <-in.slots }()
		in.run(in.jobCtx, job, lease)
	}()
}

// Rescue polls for expired leases while a slot is free, until ctx is cancelled.
func (in *Intake) Rescue(ctx context.Context) error {
	t := time.NewTicker(in.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for in.rescueOne(ctx) {
			}
		}
	}
}

// rescueOne claims one expired job if a slot is free; it reports whether it started one.
func (in *Intake) rescueOne(ctx context.Context) bool {
	select {
	case in.slots <- struct{}{}:
	default:
		return false // every slot busy
	}
	job, lease, err := in.claims.ClaimExpired(ctx, in.owner, in.ttl)
	if err != nil {
		<-in.slots
		if !errors.Is(err, jobstore.ErrNotClaimed) && ctx.Err() == nil {
			in.log.Warn("rescuing expired jobs failed", "err", err)
		}
		return false
	}
	in.log.Warn("rescued a job whose worker stopped renewing its lease", "job_id", job.ID, "attempt", lease.Attempt)
	in.start(job, lease)
	return true
}

// Wait blocks until every running job returned.
func (in *Intake) Wait() { in.wg.Wait() }
