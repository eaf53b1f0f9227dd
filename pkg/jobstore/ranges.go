package jobstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productsmanager/exportplatform/pkg/job"
)

// Range is one key range of an attempt split across the exporter group: its rows are those
// whose key lies in [Lo, Hi) as the attempt's snapshot sees them. This repository is the one
// place a range's state changes: planned by the attempt's holder, claimed under a lease by any
// exporter, renewed with its progress, done with its object or given back.
type Range struct {
	JobID     string
	Attempt   int
	Seq       int
	Lo, Hi    *int64
	Snapshot  string
	Status    string // queued, running, done, failed
	Owner     string
	Tries     int
	RowsDone  int64
	SizeBytes int64
	ObjectKey string
	LastError string
}

// Range statuses.
const (
	RangeQueued  = "queued"
	RangeRunning = "running"
	RangeDone    = "done"
	RangeFailed  = "failed"
)

const rangeColumns = `job_id::text, attempt, seq, lo, hi, snapshot, status, coalesce(lease_owner, ''), tries, rows_done,
	coalesce(size_bytes, 0), coalesce(object_key, ''), coalesce(last_error, '')`

func scanRange(row pgx.Row) (Range, error) {
	var r Range
	err := row.Scan(&r.JobID, &r.Attempt, &r.Seq, &r.Lo, &r.Hi, &r.Snapshot, &r.Status, &r.Owner, &r.Tries,
		&r.RowsDone, &r.SizeBytes, &r.ObjectKey, &r.LastError)
	return r, err
}

// PlanRanges records the ranges of the attempt lease holds, all reading snapshot. It fails
// with job.ErrLeaseLost unless the job is running under that lease.
func (s *Store) PlanRanges(ctx context.Context, lease Lease, snapshot string, ranges [][2]*int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var holds bool
		err := tx.QueryRow(ctx, `SELECT status = 'running' AND attempt = $2 AND lease_owner = $3 AND deleted_at IS NULL
			FROM jobs WHERE id = $1 FOR SHARE`, lease.JobID, lease.Attempt, lease.Owner).Scan(&holds)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && !holds {
			return job.ErrLeaseLost
		}
		if err != nil {
			return fmt.Errorf("planning the ranges of job %s: %w", lease.JobID, err)
		}
		now := s.now().UTC()
		for i, r := range ranges {
			if _, err := tx.Exec(ctx, `INSERT INTO job_ranges (job_id, attempt, seq, lo, hi, snapshot, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, lease.JobID, lease.Attempt, i, r[0], r[1], snapshot, now); err != nil {
				return fmt.Errorf("planning range %d of job %s: %w", i, lease.JobID, err)
			}
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, RangesChannel, lease.JobID)
		return err
	})
}

// RangesChannel is the PostgreSQL notification channel told when ranges are planned or given
// back, so idle exporters claim them at once.
const RangesChannel = "exports_ranges"

// ClaimRange leases to owner, for ttl, the first claimable range (queued, or running under a
// lapsed lease) of a running job's current attempt (of job jobID only, unless ""), counting a
// try; a range already tried maxTries times is not claimed. It returns ErrNotClaimed when
// there is none.
func (s *Store) ClaimRange(ctx context.Context, jobID, owner string, ttl time.Duration, maxTries int) (Range, error) {
	now := s.now().UTC()
	r, err := scanRange(s.pool.QueryRow(ctx, `UPDATE job_ranges r SET status = 'running', lease_owner = $1,
			lease_expires_at = $2::timestamptz + $3 * interval '1 millisecond', tries = r.tries + 1, rows_done = 0, updated_at = $2
		WHERE (r.job_id, r.attempt, r.seq) = (
			SELECT c.job_id, c.attempt, c.seq FROM job_ranges c
				JOIN jobs j ON j.id = c.job_id AND j.attempt = c.attempt AND j.status = 'running' AND j.deleted_at IS NULL
			WHERE (c.status = 'queued' OR c.status = 'running' AND c.lease_expires_at < $2)
			  AND ($4 = '' OR c.job_id::text = $4) AND c.tries < $5
			ORDER BY c.job_id, c.seq LIMIT 1 FOR UPDATE OF c SKIP LOCKED)
		RETURNING `+rangeColumns, owner, now, ttl.Milliseconds(), jobID, maxTries))
	if errors.Is(err, pgx.ErrNoRows) {
		return Range{}, ErrNotClaimed
	}
	if err != nil {
		return Range{}, fmt.Errorf("claiming a range: %w", err)
	}
	return r, nil
}

// held runs one change of range r for its lease holder; job.ErrLeaseLost when r is no longer
// running under owner's lease.
func (s *Store) held(ctx context.Context, r Range, sql string, args ...any) error {
	tag, err := s.pool.Exec(ctx, sql, append([]any{r.JobID, r.Attempt, r.Seq, r.Owner}, args...)...)
	if err != nil {
		return fmt.Errorf("range %d of job %s: %w", r.Seq, r.JobID, err)
	}
	if tag.RowsAffected() != 1 {
		return job.ErrLeaseLost
	}
	return nil
}

const heldWhere = ` WHERE job_id = $1 AND attempt = $2 AND seq = $3 AND lease_owner = $4 AND status = 'running'`

// RenewRange extends the lease of r's holder by ttl and records its rows written so far.
func (s *Store) RenewRange(ctx context.Context, r Range, ttl time.Duration, rowsDone int64) error {
	now := s.now().UTC()
	return s.held(ctx, r, `UPDATE job_ranges SET lease_expires_at = $5::timestamptz + $6 * interval '1 millisecond',
		rows_done = $7, updated_at = $5`+heldWhere, now, ttl.Milliseconds(), rowsDone)
}

// RangeWritten records r written: its rows and its object.
func (s *Store) RangeWritten(ctx context.Context, r Range, rows, size int64, key string) error {
	// The writer stays recorded as lease_owner: who wrote which range.
	return s.held(ctx, r, `UPDATE job_ranges SET status = 'done', rows_done = $5, size_bytes = $6, object_key = $7,
		lease_expires_at = NULL, updated_at = $8`+heldWhere, rows, size, key, s.now().UTC())
}

// ReleaseRange gives r back with the cause of its failure: queued for another try, or failed
// once it was tried maxTries times.
func (s *Store) ReleaseRange(ctx context.Context, r Range, cause string, maxTries int) error {
	err := s.held(ctx, r, `UPDATE job_ranges SET status = CASE WHEN tries >= $6 THEN 'failed' ELSE 'queued' END,
		last_error = $5, lease_owner = NULL, lease_expires_at = NULL, rows_done = 0, updated_at = $7`+heldWhere,
		cause, maxTries, s.now().UTC())
	if err == nil {
		_, err = s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, RangesChannel, r.JobID)
	}
	return err
}

// Ranges lists the ranges of a job's attempt in order.
func (s *Store) Ranges(ctx context.Context, jobID string, attempt int) ([]Range, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+rangeColumns+` FROM job_ranges WHERE job_id = $1 AND attempt = $2 ORDER BY seq`,
		jobID, attempt)
	if err != nil {
		return nil, fmt.Errorf("listing the ranges of job %s: %w", jobID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Range, error) { return scanRange(row) })
	if err != nil {
		return nil, fmt.Errorf("listing the ranges of job %s: %w", jobID, err)
	}
	return out, nil
}
