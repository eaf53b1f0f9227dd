package job

// The progress view: the state of one job as it moves, for GET /progress/{id} and the
// WebSocket pushes (CONTRACT §5): the same field names and shapes as the job's own JSON, its
// file included. It carries the job's state as its one writer decided it (the state every job
// event carries, or the job row), never a state recomputed by a reader, so a repeated or late
// one carries a real state of the job and clients can order them by Version (or UpdatedAt).

import (
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// Progress view types. A job that is queued or running is reported as TypeProgress.
const (
	TypeProgress  = "progress"
	TypeCompleted = "completed"
	TypeFailed    = "failed"
	TypeCancelled = "cancelled"
	TypeExpired   = "expired"
)

// Progress is one push message (and the progress endpoint's body): {"type", "task_id", "job_id", "status", "phase", "progress",
// "rows_done", "rows_total", "bytes_written", "rate_rows_per_s", "eta_seconds",
// "queue_position", "expires_at", "updated_at", "error"} and "file" once completed: the same
// fields as the job and the progress endpoint.
type Progress struct {
	Type         string     `json:"type"`
	TaskID       string     `json:"task_id"`
	JobID        string     `json:"job_id"`
	Status       Status     `json:"status"`
	Progress     float64    `json:"progress"`
	RowsDone     int64      `json:"rows_done"`
	RowsTotal    *int64     `json:"rows_total"`
	BytesWritten int64      `json:"bytes_written"`
	Phase        string     `json:"phase"`
	RateRowsPerS *float64   `json:"rate_rows_per_s"`
	ETASeconds   *float64   `json:"eta_seconds"`
	QueuePos     *int64     `json:"queue_position"`
	ExpiresAt    *time.Time `json:"expires_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	Version      int64      `json:"version"`
	Error        *Error     `json:"error"`
	File         *File      `json:"file,omitempty"`
	// Owner is who may see the job (with MANAGE_EXPORTS, anyone); never sent.
	Owner string `json:"-"`
}

// TypeOf is the update type of a job status.
func TypeOf(s Status) string {
	switch s {
	case StatusCompleted:
		return TypeCompleted
	case StatusFailed:
		return TypeFailed
	case StatusCancelled:
		return TypeCancelled
	case StatusExpired:
		return TypeExpired
	}
	return TypeProgress
}

// ProgressOf is the progress view of j as it is now.
func ProgressOf(j Job) Progress {
	u := Progress{
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
		Owner:        j.RequestedBy,
	}
	if j.Status == StatusCompleted {
		u.File = ViewFile(j.File)
	}
	return u
}

// ProgressFromState is the progress view a job event announces: jobID's state as the event
// carries it, with the file of an ExportCompleted.
func ProgressFromState(jobID string, st events.JobState, file *events.Object) Progress {
	status := Status(st.Status)
	u := Progress{
		Type: TypeOf(status), TaskID: jobID, JobID: jobID, Status: status, Progress: st.Progress,
		RowsDone: st.RowsDone, RowsTotal: st.RowsTotal, BytesWritten: st.BytesWritten, Phase: st.Phase,
		RateRowsPerS: st.RateRowsPerS, ETASeconds: st.ETASeconds, ExpiresAt: st.ExpiresAt,
		UpdatedAt: st.UpdatedAt, Version: st.Version, Error: st.Error, Owner: st.Owner,
	}
	if status == StatusCompleted {
		u.File = ViewFile(file)
	}
	return u
}
