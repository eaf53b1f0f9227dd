package jobstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// ErrFinished is returned by Cancel for a job that already ended, or whose worker already
// committed to completing it (Seal): there is nothing left to stop.
var ErrFinished = errors.New("job already finished")

// cancelSQL ends a job that has not ended nor been sealed. $1 job id, $2 who cancels.
const cancelSQL = `UPDATE jobs SET status = 'cancelled', finished_at = now(), cancelled_by = nullif($2, ''),
		phase = 'done', rate_rows_per_s = NULL, eta_seconds = NULL, lease_expires_at = NULL, updated_at = now()
	WHERE id = $1 AND deleted_at IS NULL AND status IN ('queued', 'running') AND sealed_at IS NULL
	RETURNING ` + jobColumns

// Cancel ends a queued or running job as cancelled and writes its ExportCancelled to the
// outbox in the same transaction. A queued job is then never claimed; the worker of a running
// one sees it (Cancelled) and stops. It returns the cancelled job, or the job as it is with
// ErrFinished when it had already ended, or ErrNotFound.
func (s *Store) Cancel(ctx context.Context, id, by string) (Job, error) {
	if !ValidID(id) {
		return Job{}, ErrNotFound
	}
	var job Job
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		job, err = s.cancelTx(ctx, tx, id, by, "cancelled on request")
		return err
	})
	return job, err
}

// cancelTx is Cancel within tx; on ErrFinished it returns the job as it is.
func (s *Store) cancelTx(ctx context.Context, tx pgx.Tx, id, by, reason string) (Job, error) {
	job, err := scanJob(tx.QueryRow(ctx, cancelSQL, id, by))
	if errors.Is(err, ErrNotFound) {
		current, err := scanJob(tx.QueryRow(ctx, liveJobSQL, id))
		if err != nil {
			return Job{}, err // ErrNotFound: no such job
		}
		return current, ErrFinished
	}
	if err != nil {
		return Job{}, fmt.Errorf("cancelling job %s: %w", id, err)
	}
	env, err := events.Wrap(events.ExportCancelled{
		JobID: id, Entity: job.Entity, Format: job.Format, RequestedBy: job.RequestedBy,
		Reason: reason, CancelledBy: by, CancelledAt: derefTime(job.FinishedAt),
	})
	if err != nil {
		return Job{}, err
	}
	if err := insertOutbox(ctx, tx, events.TopicEvents, env); err != nil {
		return Job{}, err
	}
	return job, nil
}

// Delete hides a job from Get and List for good, cancelling it first when it is queued or
// running (a sealed job finishes, and its file is then removed by the sweeper). It returns the
// job as it was, so the caller can remove its file at once; the sweeper removes it otherwise
// (RemovableFiles). The events of the job, its audit trail, stay.
func (s *Store) Delete(ctx context.Context, id, by string) (Job, error) {
	if !ValidID(id) {
		return Job{}, ErrNotFound
	}
	var job Job
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		job, err = scanJob(tx.QueryRow(ctx, liveJobSQL+` FOR UPDATE`, id))
		if err != nil {
			return err
		}
		if !job.Status.Terminal() {
			if cancelled, err := s.cancelTx(ctx, tx, id, by, "deleted"); err == nil {
				job = cancelled
			} else if !errors.Is(err, ErrFinished) {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE jobs SET deleted_at = now(), updated_at = now() WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("deleting job %s: %w", id, err)
		}
		return nil
	})
	return job, err
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

// Seal is the worker's commitment to complete the job, once its file is stored: from then on
// Cancel answers ErrFinished. It fails with ErrLeaseLost when the worker no longer holds the
// lease or the job was cancelled first (Cancelled tells which), and renews the lease for ttl.
func (s *Store) Seal(ctx context.Context, l Lease, ttl time.Duration) error {
	tag, err := s.pool.Exec(ctx, `UPDATE jobs SET sealed_at = now(), lease_expires_at = now() + $4 * interval '1 millisecond'
		WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'running' AND deleted_at IS NULL`,
		l.JobID, l.Owner, l.Attempt, ttl.Milliseconds())
	if err != nil {
		return fmt.Errorf("sealing job %s: %w", l.JobID, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrLeaseLost
	}
	return nil
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
	_, err := s.pool.Exec(ctx, `UPDATE jobs SET file_removed_at = $2, updated_at = now(),
			status = CASE WHEN status = 'completed' AND expires_at <= $2 THEN 'expired' ELSE status END
		WHERE id = $1 AND file_removed_at IS NULL`, id, now)
	if err != nil {
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

func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Now().UTC()
	}
	return t.UTC()
}
