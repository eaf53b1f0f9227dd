// Package job is an export job as a value: its fields, its one JSON view, and the one
// transition function that decides every change of its state. It knows no database, broker or
// HTTP: pkg/jobstore loads a Job, calls Apply and saves the result with the events Apply
// returned, in one transaction; every component (the API, the exporter, the retention sweeper)
// changes a job only by sending it a Command that way.
//
// The rules Apply holds:
//   - terminal states (completed, failed, cancelled, expired) are final, but for a completed
//     job's file expiring (completed → expired);
//   - only the holder of the current lease (owner and attempt) moves a running job: a worker
//     whose lease was taken over can neither report progress nor complete or fail the job;
//   - progress only grows within an attempt; a new attempt restarts it;
//   - a cancel wins over everything but a completion recorded before it, and a completion is
//     recorded with its ExportCompleted in the same step: once announced, a job is never redone;
//   - an attempt is charged when a worker claims the job; one given back on shutdown is
//     refunded, so only attempts that failed or whose worker vanished count towards the
//     maximum, and the job's last real error is the one it fails with;
//   - every change bumps Version and UpdatedAt, and every event carries the job's new state.
package job

import (
	"encoding/json"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// Status is a job status.
type Status string

// Job statuses.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
	StatusExpired   Status = "expired"
)

// Terminal reports whether no further state change is expected.
func (s Status) Terminal() bool { return s != StatusQueued && s != StatusRunning }

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusQueued, StatusRunning, StatusCompleted, StatusFailed, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// Error is why a job failed (or why its last attempt did).
type Error = events.JobError

// Job is one export job.
type Job struct {
	ID            string         `json:"id"`
	TaskID        string         `json:"task_id"`
	Entity        string         `json:"entity"`
	Format        string         `json:"format"`
	Status        Status         `json:"status"`
	Progress      float64        `json:"progress"`
	RowsDone      int64          `json:"rows_done"`
	RowsTotal     *int64         `json:"rows_total"`
	BytesWritten  int64          `json:"bytes_written"`
	Fields        []string       `json:"fields"`
	ExcludeFields []string       `json:"exclude_fields"`
	Filters       map[string]any `json:"filters"`
	Options       map[string]any `json:"options"`
	// Headers rename output columns (field → title); Compression is "", "gzip" or "zip".
	Headers       map[string]string `json:"headers,omitempty"`
	Compression   string            `json:"compression,omitempty"`
	FileName      string            `json:"file_name"`
	RequestedBy   string            `json:"requested_by"`
	RequesterName string            `json:"requester_name,omitempty"`
	ScheduleID    *string           `json:"schedule_id"`
	// ScheduledFor is the fire time of the schedule run that made the job.
	ScheduledFor *time.Time     `json:"scheduled_for"`
	PlatformID   *string        `json:"platform_id"`
	CreatedAt    time.Time      `json:"created_at"`
	StartedAt    *time.Time     `json:"started_at"`
	FinishedAt   *time.Time     `json:"finished_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
	Error        *Error         `json:"error"`
	File         *events.Object `json:"file,omitempty"`
	Warnings     []string       `json:"warnings"`
	Attempt      int            `json:"attempt"`
	// Phase is where the job is: queued, counting (its rows), writing, uploading, done.
	Phase string `json:"phase"`
	// RateRowsPerS and ETASeconds come from the rows written over the last seconds; null
	// until a rate is known, and once the job ended.
	RateRowsPerS *float64 `json:"rate_rows_per_s"`
	ETASeconds   *float64 `json:"eta_seconds"`
	// QueuePosition is 1 for the oldest queued job; null once the job left the queue. It is
	// computed when the job is read, never stored.
	QueuePosition *int64 `json:"queue_position"`
	// ExpiresAt is when the file will be deleted; null while there is no file.
	ExpiresAt   *time.Time `json:"expires_at"`
	CancelledBy *string    `json:"cancelled_by,omitempty"`
	// Delivery is the copy of the file to the job's platform's destination, once completed;
	// nil for a job without one (Deliver false).
	Delivery *Delivery `json:"delivery,omitempty"`
	// Webhook is the request's own webhook (its platform's is the platform's).
	Webhook *events.Webhook `json:"webhook,omitempty"`
	// Deliver says the job's platform delivers its file beyond our bucket.
	Deliver bool `json:"-"`
	// Version counts the job's changes: the repository saves a change only over the version
	// it was decided from, and events carry it so readers can order states.
	Version int64 `json:"version"`

	// The lease: who runs the current attempt and until when.
	LeaseOwner     *string    `json:"-"`
	LeaseExpiresAt *time.Time `json:"-"`
	// Charged counts the attempts that count towards the maximum (claims, less the ones given
	// back on shutdown).
	Charged int `json:"-"`
	// LastError is the real error of the last attempt that failed but was to be retried.
	LastError *Error `json:"-"`
	// DeletedAt hides the job from users; its events and audit trail stay.
	DeletedAt *time.Time `json:"-"`
	// FileRemoved says the file is gone from the bucket (expired, or the job deleted).
	FileRemoved bool `json:"-"`
}

// Access is the audit event of an act (events.Action*) on the job, without its actor and
// client, which the caller adds.
func (j Job) Access(action string) events.Accessed {
	return events.Accessed{Action: action, ResourceType: "job", ResourceID: j.ID, Owner: j.RequestedBy,
		Entity: j.Entity, Format: j.Format, Fields: j.Fields, Filters: j.Filters}
}

// Deleted reports whether the job was deleted.
func (j Job) Deleted() bool { return j.DeletedAt != nil }

// Holds reports whether owner holds the lease of attempt (its expiry aside: a holder whose
// lease lapsed keeps it until another worker claims the job).
func (j Job) Holds(owner string, attempt int) bool {
	return j.Status == StatusRunning && j.LeaseOwner != nil && *j.LeaseOwner == owner && j.Attempt == attempt
}

// Request rebuilds the ExportRequested event of a job (for a worker that claims it).
func (j Job) Request() events.ExportRequested {
	return events.ExportRequested{
		JobID: j.ID, Entity: j.Entity, Format: j.Format, Fields: j.Fields, ExcludeFields: j.ExcludeFields,
		Filters: j.Filters, Options: j.Options, FileName: j.FileName, Headers: j.Headers, Compression: j.Compression,
		RequestedBy:   j.RequestedBy,
		RequesterName: j.RequesterName, ScheduleID: j.ScheduleID, ScheduledFor: j.ScheduledFor,
		PlatformID: j.PlatformID, Deliver: j.Deliver, Webhook: j.Webhook, RequestedAt: j.CreatedAt,
	}
}

// State is the job's state as events carry it and pushes show it.
func (j Job) State() events.JobState {
	return events.JobState{
		Version: j.Version, Status: string(j.Status), Phase: j.Phase, Progress: j.Progress,
		RowsDone: j.RowsDone, RowsTotal: j.RowsTotal, BytesWritten: j.BytesWritten,
		RateRowsPerS: j.RateRowsPerS, ETASeconds: j.ETASeconds, ExpiresAt: j.ExpiresAt,
		UpdatedAt: j.UpdatedAt, Error: j.Error, Owner: j.RequestedBy,
	}
}

// File is a job's file as every view shows it: CONTRACT §4 names the key `object_key`; `key`
// and `bucket` stay for clients of the event shape.
type File struct {
	events.Object
	ObjectKey string `json:"object_key"`
}

// ViewFile is the view of an event's object.
func ViewFile(o *events.Object) *File {
	if o == nil {
		return nil
	}
	return &File{Object: *o, ObjectKey: o.Key}
}

// MarshalJSON writes the job's one JSON view (REST, snapshots), its file in the contract's shape.
func (j Job) MarshalJSON() ([]byte, error) {
	type alias Job
	return json.Marshal(struct {
		alias
		File *File `json:"file,omitempty"`
	}{alias(j), ViewFile(j.File)})
}
