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
				updated_at = now()
			WHERE id = $1 AND status IN ('queued', 'running') AND progress_attempt < $4`
		args = []any{e.JobID, e.StartedAt, e.RowsTotal, e.Attempt}
	case events.ExportProgress:
		sql = `UPDATE jobs SET status = 'running', rows_done = $2, rows_total = $3, progress = $4,
				bytes_written = $5, progress_attempt = $6, updated_at = now()
			WHERE id = $1 AND status IN ('queued', 'running')
			  AND (progress_attempt < $6 OR (progress_attempt = $6 AND rows_done < $2))`
		args = []any{e.JobID, e.RowsDone, e.RowsTotal, e.Progress, e.BytesWritten, e.Attempt}
	case events.ExportCompleted:
		file, err := json.Marshal(e.Object)
		if err != nil {
			return false, fmt.Errorf("encoding file of job %s: %w", e.JobID, err)
		}
		sql = `UPDATE jobs SET status = 'completed', rows_done = $2, rows_total = $2, progress = 100,
				bytes_written = $3, file = $4, started_at = coalesce(started_at, $5), finished_at = $6,
				warnings = $7, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
			WHERE id = $1 AND status IN ('queued', 'running')`
		args = []any{e.JobID, e.Rows, e.Object.SizeBytes, file, e.StartedAt, e.FinishedAt, nonNil(e.Warnings)}
	case events.ExportFailed:
		sql = `UPDATE jobs SET status = 'failed', error_code = $2, error_message = $3, finished_at = $4,
				lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
			WHERE id = $1 AND status IN ('queued', 'running')`
		args = []any{e.JobID, e.Code, e.Message, e.FailedAt}
	case events.ExportCancelled:
		sql = `UPDATE jobs SET status = 'cancelled', finished_at = $2,
				lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
			WHERE id = $1 AND status IN ('queued', 'running')`
		args = []any{e.JobID, e.CancelledAt}
	default:
		return false, fmt.Errorf("applying %T: unknown event", ev)
	}
	if !looksLikeUUID(ev.Key()) {
		return false, nil // not one of our jobs: nothing to fold
	}
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return false, fmt.Errorf("applying %s to job %s: %w", ev.EventType(), ev.Key(), err)
	}
	return tag.RowsAffected() > 0, nil
}
