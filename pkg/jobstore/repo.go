package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
)

// Do loads a job, lets job.Apply decide what c does to it and saves the result with the events
// it announces, in one transaction. The load locks the row (writers of one job queue up rather
// than retry) and the save is still a compare-and-set on the version it was decided from. It
// returns the job as saved, or, for a refusal, the job as it is with job's error (ErrFinished,
// ErrLeaseLost, ...).
func (s *Store) Do(ctx context.Context, id string, c job.Command) (Job, error) {
	_, j, err := s.do(ctx, id, c)
	return j, err
}

// do is Do, also returning the job as it was before the command.
func (s *Store) do(ctx context.Context, id string, c job.Command) (before, after Job, _ error) {
	if !ValidID(id) {
		return Job{}, Job{}, ErrNotFound
	}
	var out, cur Job
	var refusal error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		cur, err = scanJob(tx.QueryRow(ctx, jobSQL+` FOR UPDATE`, id))
		if err != nil {
			return err
		}
		next, evs, err := job.Apply(cur, c)
		if err != nil {
			out, refusal = cur, err
			return nil // nothing to save
		}
		out, err = saveTx(ctx, tx, cur.Version, next, evs)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Job{}, Job{}, err
		}
		return Job{}, Job{}, fmt.Errorf("%s job %s: %w", job.Name(c), id, err)
	}
	return cur, out, refusal
}

// errConflict: the job changed between its load and its save (it cannot while the row is
// locked; the check guards the rule, not the lock).
var errConflict = errors.New("job changed concurrently")

// saveSQL writes every column a transition may change, over the version it was decided from.
const saveSQL = `UPDATE jobs SET status = $3, progress = $4, rows_done = $5, rows_total = $6,
		bytes_written = $7, started_at = $8, finished_at = $9, updated_at = $10, error_code = $11,
		error_message = $12, file = $13, attempt = $14, lease_owner = $15, lease_expires_at = $16,
		warnings = $17, phase = $18, rate_rows_per_s = $19, eta_seconds = $20, expires_at = $21,
		cancelled_by = $22, file_removed_at = CASE WHEN $23 THEN coalesce(file_removed_at, $10) END,
		deleted_at = $24, version = $25, charged = $26, last_error = $27, delivery = $28, delivery_due_at = $29
	WHERE id = $1 AND version = $2
	RETURNING ` + jobColumns

func saveTx(ctx context.Context, tx pgx.Tx, from int64, j Job, evs []events.Event) (Job, error) {
	var errCode, errMsg *string
	if j.Error != nil {
		errCode, errMsg = &j.Error.Code, &j.Error.Message
	}
	var file, lastErr []byte
	var err error
	if j.File != nil {
		if file, err = json.Marshal(j.File); err != nil {
			return Job{}, fmt.Errorf("encoding job %s file: %w", j.ID, err)
		}
	}
	if j.LastError != nil {
		if lastErr, err = json.Marshal(j.LastError); err != nil {
			return Job{}, fmt.Errorf("encoding job %s last error: %w", j.ID, err)
		}
	}
	saved, err := scanJob(tx.QueryRow(ctx, saveSQL, j.ID, from, j.Status, j.Progress, j.RowsDone, j.RowsTotal,
		j.BytesWritten, j.StartedAt, j.FinishedAt, j.UpdatedAt, errCode, errMsg, file, j.Attempt, j.LeaseOwner,
		j.LeaseExpiresAt, j.Warnings, j.Phase, j.RateRowsPerS, j.ETASeconds, j.ExpiresAt, j.CancelledBy,
		j.FileRemoved, j.DeletedAt, j.Version, j.Charged, lastErr, j.Delivery, j.Delivery.DueAt()))
	if errors.Is(err, ErrNotFound) {
		return Job{}, errConflict
	}
	if err != nil {
		return Job{}, fmt.Errorf("saving job %s: %w", j.ID, err)
	}
	if err := appendOutbox(ctx, tx, evs); err != nil {
		return Job{}, err
	}
	return saved, nil
}

// Lease is a worker's right to run one attempt of a job.
type Lease struct {
	JobID   string
	Owner   string
	Attempt int
	// Rescued says the claim took the job over from a worker whose lease lapsed (it stopped
	// renewing: killed, hung, cut off), rather than from the queue.
	Rescued bool
}

// rescues says whether claiming cur takes over a lapsed lease: a claim only succeeds on a
// running job once its holder's lease ran out.
func rescues(cur Job) bool { return cur.Status == StatusRunning && cur.LeaseOwner != nil }

// ClaimOptions are a worker's terms for claiming: who it is, how long its lease lasts, and how
// many charged attempts a job may have before it fails instead.
type ClaimOptions struct {
	Owner       string
	TTL         time.Duration
	MaxAttempts int
}

func (o ClaimOptions) command(at time.Time) job.Claim {
	return job.Claim{Owner: o.Owner, TTL: o.TTL, MaxAttempts: o.MaxAttempts, At: at}
}

// Claim takes the lease of one job (its ExportRequested arrived). It returns ErrNotClaimed when
// the job ended, is leased to a live worker, or was out of attempts (it is then failed).
func (s *Store) Claim(ctx context.Context, id string, o ClaimOptions) (Job, Lease, error) {
	before, j, err := s.do(ctx, id, o.command(s.now().UTC()))
	if errors.Is(err, job.ErrNotClaimable) || errors.Is(err, ErrNotFound) {
		return Job{}, Lease{}, ErrNotClaimed
	}
	if err != nil {
		return Job{}, Lease{}, err
	}
	if !j.Holds(o.Owner, j.Attempt) {
		return Job{}, Lease{}, ErrNotClaimed // it gave up
	}
	return j, Lease{JobID: j.ID, Owner: o.Owner, Attempt: j.Attempt, Rescued: rescues(before)}, nil
}

// nextSQL picks the oldest job waiting for a worker: queued, or running under a lapsed lease;
// $1 is now. SKIP LOCKED lets claimers pass each other.
const nextSQL = `SELECT ` + jobColumns + ` FROM jobs
	WHERE status IN ('queued', 'running') AND deleted_at IS NULL
	  AND (lease_owner IS NULL OR lease_expires_at < $1)
	ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`

// ClaimNext claims the oldest job waiting for a worker (a queued one whose ExportRequested this
// worker did not receive, one handed back, or one whose worker stopped renewing its lease), or
// returns ErrNotClaimed when there is none. A job out of attempts found on the way is failed.
func (s *Store) ClaimNext(ctx context.Context, o ClaimOptions) (Job, Lease, error) {
	for range 16 {
		var claimed, cur Job
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			now := s.now().UTC()
			var err error
			cur, err = scanJob(tx.QueryRow(ctx, nextSQL, now))
			if err != nil {
				return err
			}
			next, evs, err := job.Apply(cur, o.command(now))
			if err != nil {
				return err
			}
			claimed, err = saveTx(ctx, tx, cur.Version, next, evs)
			return err
		})
		switch {
		case errors.Is(err, ErrNotFound):
			return Job{}, Lease{}, ErrNotClaimed
		case err != nil:
			return Job{}, Lease{}, fmt.Errorf("claiming the next job: %w", err)
		case claimed.Holds(o.Owner, claimed.Attempt):
			return claimed, Lease{JobID: claimed.ID, Owner: o.Owner, Attempt: claimed.Attempt, Rescued: rescues(cur)}, nil
		}
		// That one gave up: look at the next.
	}
	return Job{}, Lease{}, ErrNotClaimed
}

// deliverySQL finds the delivery due longest ago ($1 is now): a next attempt, or a lapsed
// lease. SKIP LOCKED lets delivery workers pass each other.
const deliverySQL = `SELECT ` + jobColumns + ` FROM jobs
	WHERE delivery_due_at <= $1 AND deleted_at IS NULL
	ORDER BY delivery_due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`

// ClaimDelivery claims the delivery due longest ago for owner, with a lease of ttl, or returns
// ErrNotClaimed when none is due. The job's Delivery.Attempts is the attempt's number.
func (s *Store) ClaimDelivery(ctx context.Context, owner string, ttl time.Duration) (Job, error) {
	var claimed Job
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.now().UTC()
		cur, err := scanJob(tx.QueryRow(ctx, deliverySQL, now))
		if err != nil {
			return err
		}
		next, evs, err := job.Apply(cur, job.ClaimDelivery{Owner: owner, TTL: ttl, At: now})
		if err != nil {
			return err
		}
		claimed, err = saveTx(ctx, tx, cur.Version, next, evs)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return Job{}, ErrNotClaimed
	case err != nil:
		return Job{}, fmt.Errorf("claiming a delivery: %w", err)
	}
	return claimed, nil
}

// NextDelivery is when the next delivery falls due (nil: none is waiting), for a worker to
// sleep until then.
func (s *Store) NextDelivery(ctx context.Context) (*time.Time, error) {
	var at *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT min(delivery_due_at) FROM jobs WHERE deleted_at IS NULL`).Scan(&at); err != nil {
		return nil, fmt.Errorf("reading the next delivery: %w", err)
	}
	return at, nil
}

// Cancel ends a queued or running job as cancelled, with its ExportCancelled. It returns the
// cancelled job, or the job as it is with ErrFinished when it had already ended, or ErrNotFound.
func (s *Store) Cancel(ctx context.Context, id, by string) (Job, error) {
	j, err := s.Do(ctx, id, job.Cancel{By: by, Reason: "cancelled on request", At: s.now().UTC()})
	if errors.Is(err, ErrNotFound) {
		return Job{}, ErrNotFound
	}
	return j, err
}

// Delete hides a job from Get and List for good, cancelling it first when it is queued or
// running. It returns the job, so the caller can remove its file at once; the sweeper removes
// it otherwise (RemovableFiles). The events of the job, its audit trail, stay. audit, when not
// nil, is the delete's audit event, written in the same transaction (job.Delete).
func (s *Store) Delete(ctx context.Context, id, by string, audit *events.Accessed) (Job, error) {
	j, err := s.Do(ctx, id, job.Delete{By: by, At: s.now().UTC(), Audit: audit})
	if errors.Is(err, ErrNotFound) {
		return Job{}, ErrNotFound
	}
	return j, err
}

// Cancelled reports whether a job was cancelled or deleted since it was claimed: its worker
// asks several times a second and stops when it was.
func (s *Store) Cancelled(ctx context.Context, id string) (bool, error) {
	var stop bool
	err := s.pool.QueryRow(ctx, `SELECT status = 'cancelled' OR deleted_at IS NOT NULL FROM jobs WHERE id = $1`, id).Scan(&stop)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking job %s for a cancel: %w", id, err)
	}
	return stop, nil
}

// RemovableFiles returns up to limit jobs whose file is to be removed from the bucket at now:
// past its expiry, or of a deleted job.
func (s *Store) RemovableFiles(ctx context.Context, now time.Time, limit int) ([]Job, error) {
	return s.queryJobs(ctx, "listing files to remove", `SELECT `+jobColumns+` FROM jobs
		WHERE file IS NOT NULL AND file_removed_at IS NULL AND (expires_at <= $1 OR deleted_at IS NOT NULL)
		ORDER BY expires_at NULLS FIRST LIMIT $2`, now, limit)
}

// FileRemoved records that a job's file is gone from the bucket at now; a completed job whose
// file expired becomes expired.
func (s *Store) FileRemoved(ctx context.Context, id string, now time.Time) error {
	_, err := s.Do(ctx, id, job.RemoveFile{At: now})
	if err != nil && !errors.Is(err, job.ErrStale) {
		return fmt.Errorf("recording the removal of job %s's file: %w", id, err)
	}
	return nil
}

// Jobs returns the jobs among ids, deleted ones included, by id (unknown ids are absent):
// the sweeper's view of the jobs whose objects it found in the bucket.
func (s *Store) Jobs(ctx context.Context, ids []string) (map[string]Job, error) {
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if ValidID(id) {
			valid = append(valid, id)
		}
	}
	jobs, err := s.queryJobs(ctx, fmt.Sprintf("reading %d jobs", len(valid)),
		`SELECT `+jobColumns+` FROM jobs WHERE id = ANY($1::uuid[])`, valid)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Job, len(jobs))
	for _, j := range jobs {
		out[j.ID] = j
	}
	return out, nil
}
