package jobstore

import (
	"context"
	"fmt"
	"time"
)

// ActiveStats describe the jobs that have not ended, for metrics and alerts.
type ActiveStats struct {
	// Count is the number of jobs per status (queued, running; both always present).
	Count map[Status]int64
	// Oldest is, per status, the longest any job of that status has gone unchanged: a queued
	// job's wait since it was queued or handed back, a running job's time since its claim,
	// start or last progress report (0 when there is none).
	Oldest map[Status]time.Duration
	// LeaseExpired counts running jobs whose lease ran out and that no worker has rescued yet.
	LeaseExpired int64
}

// activeSQL reads the queue through jobs_claim_idx; $1 is now.
const activeSQL = `SELECT status, count(*), coalesce(extract(epoch FROM $1 - min(updated_at)), 0),
		count(*) FILTER (WHERE lease_expires_at < $1)
	FROM jobs WHERE status IN ('queued', 'running') AND deleted_at IS NULL
	GROUP BY status`

// ActiveStats reads the queued and running jobs' counts and ages.
func (s *Store) ActiveStats(ctx context.Context) (ActiveStats, error) {
	st := ActiveStats{
		Count:  map[Status]int64{StatusQueued: 0, StatusRunning: 0},
		Oldest: map[Status]time.Duration{StatusQueued: 0, StatusRunning: 0},
	}
	rows, err := s.pool.Query(ctx, activeSQL, s.now().UTC())
	if err != nil {
		return ActiveStats{}, fmt.Errorf("reading active jobs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var status Status
		var n, expired int64
		var oldest float64
		if err := rows.Scan(&status, &n, &oldest, &expired); err != nil {
			return ActiveStats{}, fmt.Errorf("reading active jobs: %w", err)
		}
		st.Count[status], st.Oldest[status] = n, time.Duration(max(oldest, 0)*float64(time.Second))
		if status == StatusRunning {
			st.LeaseExpired = expired
		}
	}
	if err := rows.Err(); err != nil {
		return ActiveStats{}, fmt.Errorf("reading active jobs: %w", err)
	}
	return st, nil
}
