// Package progress provides the push message of the progress protocol (CONTRACT §5): the
// state of one job as WebSocket clients see it move.
//
// An Update carries the job's state as its one writer decided it (the state every job event
// carries, or the job row for a snapshot), never a state recomputed by a reader, so a repeated
// or late Update carries a real state of the job and clients can order them by Version (or
// UpdatedAt).
package progress

import (
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
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
	Version      int64              `json:"version"`
	Error        *jobstore.JobError `json:"error"`
	File         *job.File          `json:"file,omitempty"`
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
func FromJob(j jobstore.Job) Update {
	u := Update{
		Type:         TypeOf(j.Status),
		TaskID:       j.ID,
		JobID:        j.ID,
		Status:       j.Status,
		Progress:     j.Progress,
		RowsDone:     j.RowsDone,
		RowsTotal:    j.RowsTotal,
		BytesWritten: j.BytesWritten,
		Phase:        j.Phase,
		RateRowsPerS: j.RateRowsPerS,
		ETASeconds:   j.ETASeconds,
		QueuePos:     j.QueuePosition,
		ExpiresAt:    j.ExpiresAt,
		UpdatedAt:    j.UpdatedAt,
		Version:      j.Version,
		Error:        j.Error,
	}
	if j.Status == jobstore.StatusCompleted {
		u.File = viewFile(j.File)
	}
	return u
}

// FromState is the update a job event announces: jobID's state as the event carries it, with
// the file of an ExportCompleted.
func FromState(jobID string, st events.JobState, file *events.Object) Update {
	status := jobstore.Status(st.Status)
	u := Update{
		Type: TypeOf(status), TaskID: jobID, JobID: jobID, Status: status, Progress: st.Progress,
		RowsDone: st.RowsDone, RowsTotal: st.RowsTotal, BytesWritten: st.BytesWritten, Phase: st.Phase,
		RateRowsPerS: st.RateRowsPerS, ETASeconds: st.ETASeconds, ExpiresAt: st.ExpiresAt,
		UpdatedAt: st.UpdatedAt, Version: st.Version, Error: st.Error,
	}
	if status == jobstore.StatusCompleted {
		u.File = viewFile(file)
	}
	return u
}

var viewFile = job.ViewFile
