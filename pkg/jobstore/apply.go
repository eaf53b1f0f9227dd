package jobstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// Apply folds one job event into its job row. It is idempotent and monotonic: a repeat, or an
// event arriving after a later one, changes nothing. It reports whether the row changed.
// ExportRequested is ignored (Create wrote the row).
func (s *Store) Apply(ctx context.Context, ev events.Event) (bool, error) {
	var (
		sql  string
		args []any
	)
	switch e := ev.(type) {
	case events.ExportRequested:
		return false, nil
	case events.ExportStarted:
		sql = `UPDATE jobs SET status = 'running', started_at = coalesce(started_at, $2),
				rows_total = $3, rows_done = 0, progress = 0, bytes_written = 0, progress_attempt = $4,
				phase = 'writing', rate_rows_per_s = NULL, eta_seconds = NULL, updated_at = now()
			WHERE id = $1 AND status IN ('queued', 'running') AND progress_attempt < $4`
		args = []any{e.JobID, e.StartedAt, e.RowsTotal, e.Attempt}
	case events.ExportProgress:
		// An uploading report may repeat the last writing one's rows: it still moves the phase.
		phase := e.Phase
		if phase != events.PhaseUploading {
			phase = events.PhaseWriting
		}
		var rate *float64
		if e.RateRowsPerS > 0 {
			rate = &e.RateRowsPerS
		}
		sql = `UPDATE jobs SET status = 'running', rows_done = $2, rows_total = $3, progress = $4,
				bytes_written = $5, progress_attempt = $6, phase = $7, rate_rows_per_s = $8,
				eta_seconds = $9, updated_at = now()
			WHERE id = $1 AND status IN ('queued', 'running')
			  AND (progress_attempt < $6 OR (progress_attempt = $6 AND (rows_done < $2
			       OR (rows_done = $2 AND phase <> 'uploading' AND $7 = 'uploading'))))`
		args = []any{e.JobID, e.RowsDone, e.RowsTotal, e.Progress, e.BytesWritten, e.Attempt, phase, rate, e.ETASeconds}
	case events.ExportCompleted:
		file, err := json.Marshal(e.Object)
		if err != nil {
			return false, fmt.Errorf("encoding file of job %s: %w", e.JobID, err)
		}
		sql = `UPDATE jobs SET status = 'completed', rows_done = $2, rows_total = $2, progress = 100,
				bytes_written = $3, file = $4, started_at = coalesce(started_at, $5), finished_at = $6,
				warnings = $7, expires_at = coalesce($8::timestamptz, $6::timestamptz + interval '30 days'), phase = 'done', rate_rows_per_s = NULL, eta_seconds = NULL,
				lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
			WHERE id = $1 AND status IN ('queued', 'running')`
		args = []any{e.JobID, e.Rows, e.Object.SizeBytes, file, e.StartedAt, e.FinishedAt, nonNil(e.Warnings), e.ExpiresAt}
	case events.ExportFailed:
		sql = `UPDATE jobs SET status = 'failed', error_code = $2, error_message = $3, finished_at = $4,
				phase = 'done', rate_rows_per_s = NULL, eta_seconds = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
			WHERE id = $1 AND status IN ('queued', 'running')`
		args = []any{e.JobID, e.Code, e.Message, e.FailedAt}
	case events.ExportCancelled:
		sql = `UPDATE jobs SET status = 'cancelled', finished_at = $2, cancelled_by = nullif($3, ''),
				phase = 'done', rate_rows_per_s = NULL, eta_seconds = NULL,
				lease_expires_at = NULL, updated_at = now()
			WHERE id = $1 AND status IN ('queued', 'running') AND sealed_at IS NULL`
		args = []any{e.JobID, e.CancelledAt, e.CancelledBy}
	default:
		return false, fmt.Errorf("applying %T: unknown event", ev)
	}
	if !ValidID(ev.Key()) {
		return false, nil // not one of our jobs: nothing to fold
	}
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return false, fmt.Errorf("applying %s to job %s: %w", ev.EventType(), ev.Key(), err)
	}
	return tag.RowsAffected() > 0, nil
}
