package jobstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotClaimed is returned by Claim when the job is finished or another worker holds a live
// lease on it.
var ErrNotClaimed = errors.New("job not claimable")

// ErrLeaseLost is returned by Renew when the worker no longer holds the lease.
var ErrLeaseLost = errors.New("lease lost")

// Lease is a worker's right to run one attempt of a job.
type Lease struct {
	JobID   string
	Owner   string
	Attempt int
}

// Claim takes the lease of a queued or running job whose lease is free or expired, for ttl,
// and marks it running. It returns the job as claimed.
func (s *Store) Claim(ctx context.Context, jobID, owner string, ttl time.Duration) (Job, Lease, error) {
	if !ValidID(jobID) {
		return Job{}, Lease{}, ErrNotFound
	}
	job, err := scanJob(s.pool.QueryRow(ctx, `UPDATE jobs SET lease_owner = $2,
			lease_expires_at = now() + $3 * interval '1 millisecond', attempt = attempt + 1,
			status = 'running', started_at = coalesce(started_at, now()), updated_at = now(),
			phase = 'counting', rate_rows_per_s = NULL, eta_seconds = NULL, sealed_at = NULL
		WHERE id = $1 AND deleted_at IS NULL AND status IN ('queued', 'running')
		  AND (lease_expires_at IS NULL OR lease_expires_at < now())
		RETURNING `+jobColumns, jobID, owner, ttl.Milliseconds()))
	if errors.Is(err, ErrNotFound) {
		return Job{}, Lease{}, ErrNotClaimed
	}
	if err != nil {
		return Job{}, Lease{}, fmt.Errorf("claiming job %s: %w", jobID, err)
	}
	return job, Lease{JobID: job.ID, Owner: owner, Attempt: job.Attempt}, nil
}

// ClaimExpired claims the oldest job whose lease expired (its worker died), or returns
// ErrNotClaimed when there is none.
func (s *Store) ClaimExpired(ctx context.Context, owner string, ttl time.Duration) (Job, Lease, error) {
	job, err := scanJob(s.pool.QueryRow(ctx, `UPDATE jobs SET lease_owner = $1,
			lease_expires_at = now() + $2 * interval '1 millisecond', attempt = attempt + 1,
			status = 'running', updated_at = now(), phase = 'counting', rate_rows_per_s = NULL, eta_seconds = NULL, sealed_at = NULL
		WHERE id = (SELECT id FROM jobs WHERE status IN ('queued', 'running') AND deleted_at IS NULL
		              AND lease_expires_at < now()
		            ORDER BY lease_expires_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+jobColumns, owner, ttl.Milliseconds()))
	if errors.Is(err, ErrNotFound) {
		return Job{}, Lease{}, ErrNotClaimed
	}
	if err != nil {
		return Job{}, Lease{}, fmt.Errorf("claiming an expired job: %w", err)
	}
	return job, Lease{JobID: job.ID, Owner: owner, Attempt: job.Attempt}, nil
}

// Renew extends a lease the worker still holds.
func (s *Store) Renew(ctx context.Context, l Lease, ttl time.Duration) error {
	tag, err := s.pool.Exec(ctx, `UPDATE jobs SET lease_expires_at = now() + $4 * interval '1 millisecond'
		WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'running'`,
		l.JobID, l.Owner, l.Attempt, ttl.Milliseconds())
	if err != nil {
		return fmt.Errorf("renewing lease of job %s: %w", l.JobID, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrLeaseLost
	}
	return nil
}

// Release gives a lease back without finishing the job (a worker shutting down), so another
// worker may claim it at once.
func (s *Store) Release(ctx context.Context, l Lease) error {
	_, err := s.pool.Exec(ctx, `UPDATE jobs SET lease_expires_at = now() - interval '1 second'
		WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'running'`, l.JobID, l.Owner, l.Attempt)
	if err != nil {
		return fmt.Errorf("releasing lease of job %s: %w", l.JobID, err)
	}
	return nil
}
