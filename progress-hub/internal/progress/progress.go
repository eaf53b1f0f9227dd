// Package progress provides the push message of the progress protocol (CONTRACT §5): the
// state of one job as WebSocket clients see it move, built from the job row.
//
// An Update is always derived from the job row as stored, never from the event that caused it,
// so a repeated or late Update carries the job's real state and clients can apply them in any
// order by comparing UpdatedAt.
package progress

import (
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// Update types. A job that is queued or running is reported as TypeProgress.
const (
	TypeProgress  = "progress"
	TypeCompleted = "completed"
	TypeFailed    = "failed"
	TypeCancelled = "cancelled"
	TypeExpired   = "expired"
)

// Update is one push message: {"type", "task_id", "job_id", "status", "phase", "progress",
// "rows_done", "rows_total", "bytes_written", "rate_rows_per_s", "eta_seconds",
// "queue_position", "expires_at", "updated_at", "error"} and "file" once completed: the same
// fields as the job and the progress endpoint.
type Update struct {
	Type         string             `json:"type"`
	TaskID       string             `json:"task_id"`
	JobID        string             `json:"job_id"`
	Status       jobstore.Status    `json:"status"`
	Progress     float64            `json:"progress"`
	RowsDone     int64              `json:"rows_done"`
	RowsTotal    *int64             `json:"rows_total"`
	BytesWritten int64              `json:"bytes_written"`
	Phase        string             `json:"phase"`
	RateRowsPerS *float64           `json:"rate_rows_per_s"`
	ETASeconds   *float64           `json:"eta_seconds"`
	QueuePos     *int64             `json:"queue_position"`
	ExpiresAt    *time.Time         `json:"expires_at"`
	UpdatedAt    time.Time          `json:"updated_at"`
	Error        *jobstore.JobError `json:"error"`
	File         *events.Object     `json:"file,omitempty"`
}

// TypeOf is the update type of a job status.
func TypeOf(s jobstore.Status) string {
	switch s {
	case jobstore.StatusCompleted:
		return TypeCompleted
	case jobstore.StatusFailed:
		return TypeFailed
	case jobstore.StatusCancelled:
		return TypeCancelled
	case jobstore.StatusExpired:
		return TypeExpired
	}
	return TypeProgress
}

// FromJob is the update describing job as it is now.
func FromJob(job jobstore.Job) Update {
	u := Update{
		Type:         TypeOf(job.Status),
		TaskID:       job.ID,
		JobID:        job.ID,
		Status:       job.Status,
		Progress:     job.Progress,
		RowsDone:     job.RowsDone,
		RowsTotal:    job.RowsTotal,
		BytesWritten: job.BytesWritten,
		Phase:        job.Phase,
		RateRowsPerS: job.RateRowsPerS,
		ETASeconds:   job.ETASeconds,
		QueuePos:     job.QueuePosition,
		ExpiresAt:    job.ExpiresAt,
		UpdatedAt:    job.UpdatedAt,
		Error:        job.Error,
	}
	if job.Status == jobstore.StatusCompleted {
		u.File = job.File
	}
	return u
}
