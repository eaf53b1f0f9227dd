package events

import (
	"crypto/sha1"
	"encoding/hex"
	"time"
)

// Topics.
const (
	TopicRequested = "exports.requested"
	TopicEvents    = "exports.events"
	// TopicDeadLetter holds the records a consumer group could not handle: not CloudEvents,
	// undecodable, or still failing after its retries; each with its reason in headers.
	TopicDeadLetter = "exports.deadletter"
)

// Source is the ce_source of every event the platform emits.
const Source = "/productsmanager/export-platform"

// Type is a ce_type.
type Type string

// The event types, versioned.
const (
	TypeRequested Type = "com.productsmanager.export.requested.v1"
	TypeStarted   Type = "com.productsmanager.export.started.v1"
	TypeProgress  Type = "com.productsmanager.export.progress.v1"
	TypeCompleted Type = "com.productsmanager.export.completed.v1"
	TypeFailed    Type = "com.productsmanager.export.failed.v1"
	TypeCancelled Type = "com.productsmanager.export.cancelled.v1"
	// TypeAccessed is the audit's access event (CONTRACT §6): what no job event records.
	TypeAccessed Type = "com.productsmanager.export.accessed.v1"
	// TypeDelivered and TypeDeliveryFailed tell of a completed job's delivery to its
	// platform's destination; keyed "delivery:<job id>", since a job's own key ends with its
	// terminal event (CONTRACT §6).
	TypeDelivered      Type = "com.productsmanager.export.delivered.v1"
	TypeDeliveryFailed Type = "com.productsmanager.export.delivery_failed.v1"
)

// Event is implemented by every event's data.
type Event interface {
	// EventType is the ce_type.
	EventType() Type
	// Key is the Kafka record key: the job id.
	Key() string
	// Discriminator distinguishes logical events of one type within a job ("" when a job has at
	// most one). It feeds the stable ce_id.
	Discriminator() string
	// OccurredAt is the ce_time.
	OccurredAt() time.Time
}

// Object is where a finished export's file lives.
type Object struct {
	Bucket      string `json:"bucket"`
	Key         string `json:"key"`
	SizeBytes   int64  `json:"size_bytes"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"content_type"`
	FileName    string `json:"file_name"`
}

// JobState is the job as its one writer left it with the event: what a progress push shows.
// Every event of exports.events carries it, so a reader (the progress hub) shows the decided
// state without re-reading or re-folding anything; Version orders the states of one job.
type JobState struct {
	Version      int64      `json:"version"`
	Status       string     `json:"status"`
	Phase        string     `json:"phase"`
	Progress     float64    `json:"progress"`
	RowsDone     int64      `json:"rows_done"`
	RowsTotal    *int64     `json:"rows_total"`
	BytesWritten int64      `json:"bytes_written"`
	RateRowsPerS *float64   `json:"rate_rows_per_s"`
	ETASeconds   *float64   `json:"eta_seconds"`
	ExpiresAt    *time.Time `json:"expires_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	Error        *JobError  `json:"error"`
	// Owner is the job's requester (its schedule's owner for a scheduled job): who may see it.
	Owner string `json:"owner,omitempty"`
}

// JobError is why a job failed.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ExportRequested asks an exporter to run a job. It carries the whole request so the exporter
// needs nothing else to run it.
type ExportRequested struct {
	JobID         string         `json:"job_id"`
	Entity        string         `json:"entity"`
	Format        string         `json:"format"`
	Fields        []string       `json:"fields,omitempty"`
	ExcludeFields []string       `json:"exclude_fields,omitempty"`
	Filters       map[string]any `json:"filters,omitempty"`
	Options       map[string]any `json:"options,omitempty"`
	FileName      string         `json:"file_name,omitempty"`
	// Headers rename output columns (field → title); Compression is "", "gzip" or "zip".
	Headers       map[string]string `json:"headers,omitempty"`
	Compression   string            `json:"compression,omitempty"`
	RequestedBy   string            `json:"requested_by"`
	RequesterName string            `json:"requester_name,omitempty"`
	ScheduleID    *string           `json:"schedule_id"`
	// ScheduledFor is the fire time of the schedule run the job belongs to (absent otherwise).
	ScheduledFor *time.Time `json:"scheduled_for,omitempty"`
	PlatformID   *string    `json:"platform_id"`
	// Webhook, from the request itself, is notified of the job (besides its platform's).
	Webhook *Webhook `json:"webhook,omitempty"`
	// Deliver: the platform delivers the file beyond our bucket once it is stored.
	Deliver     bool      `json:"deliver,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
}

// Webhook is a URL notified of a job's completion, failure or delivery, signed with the secret
// SecretRef names (env:NAME or file:/path; Standard Webhooks).
type Webhook struct {
	URL       string   `json:"url"`
	SecretRef string   `json:"secret_ref"`
	Events    []string `json:"events,omitempty"` // completed, failed, delivered, delivery_failed; none: all
}

// ExportStarted says a worker began (or, after a crash, resumed from scratch) a job.
type ExportStarted struct {
	JobID     string    `json:"job_id"`
	Entity    string    `json:"entity"`
	Format    string    `json:"format"`
	Worker    string    `json:"worker"`
	Attempt   int       `json:"attempt"`
	RowsTotal int64     `json:"rows_total"`
	StartedAt time.Time `json:"started_at"`
	// State is the job after this event (absent from events written before it existed).
	State *JobState `json:"state,omitempty"`
}

// ExportProgress is a throttled progress report.
type ExportProgress struct {
	JobID        string  `json:"job_id"`
	Attempt      int     `json:"attempt"`
	RowsDone     int64   `json:"rows_done"`
	RowsTotal    int64   `json:"rows_total"`
	Progress     float64 `json:"progress"`
	BytesWritten int64   `json:"bytes_written"`
	// Phase is where the job is: "writing" rows, or "uploading" the file's end once every row
	// is written (ExportStarted means writing; the hub and the job row take both).
	Phase string `json:"phase,omitempty"`
	// RateRowsPerS is the rows written per second over the last seconds; ETASeconds the time
	// left at that rate (absent until a rate is known).
	RateRowsPerS float64   `json:"rate_rows_per_s,omitempty"`
	ETASeconds   *float64  `json:"eta_seconds,omitempty"`
	At           time.Time `json:"at"`
	// State is the job after this event (absent from events written before it existed).
	State *JobState `json:"state,omitempty"`
}

// Progress phases.
const (
	PhaseQueued    = "queued"
	PhaseCounting  = "counting"
	PhaseWriting   = "writing"
	PhaseUploading = "uploading"
	PhaseDone      = "done"
)

// ExportCompleted says a job's file is stored and complete.
type ExportCompleted struct {
	JobID       string  `json:"job_id"`
	Entity      string  `json:"entity"`
	Format      string  `json:"format"`
	Rows        int64   `json:"rows"`
	Object      Object  `json:"object"`
	RequestedBy string  `json:"requested_by"`
	ScheduleID  *string `json:"schedule_id"`
	// ScheduledFor is the fire time of the schedule run the job belongs to (absent otherwise).
	ScheduledFor *time.Time `json:"scheduled_for,omitempty"`
	PlatformID   *string    `json:"platform_id"`
	StartedAt    time.Time  `json:"started_at"`
	FinishedAt   time.Time  `json:"finished_at"`
	DurationMS   int64      `json:"duration_ms"`
	// Warnings say where the file differs from the catalog because the format could not hold
	// a value (text cut to fit an XLSX cell); empty when nothing was altered.
	Warnings []string `json:"warnings,omitempty"`
	// ExpiresAt is when the file is deleted (EXPORT_RETENTION after it was stored).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// State is the job after this event (absent from events written before it existed).
	State *JobState `json:"state,omitempty"`
}

// ExportFailed says a job ended without a file.
type ExportFailed struct {
	JobID       string    `json:"job_id"`
	Entity      string    `json:"entity"`
	Format      string    `json:"format"`
	Code        string    `json:"code"`
	Message     string    `json:"message"`
	Attempt     int       `json:"attempt"`
	RequestedBy string    `json:"requested_by"`
	ScheduleID  *string   `json:"schedule_id,omitempty"`
	PlatformID  *string   `json:"platform_id,omitempty"`
	FailedAt    time.Time `json:"failed_at"`
	// State is the job after this event (absent from events written before it existed).
	State *JobState `json:"state,omitempty"`
}

// ExportCancelled says a job was stopped on a user's request.
type ExportCancelled struct {
	JobID       string    `json:"job_id"`
	Entity      string    `json:"entity,omitempty"`
	Format      string    `json:"format,omitempty"`
	RequestedBy string    `json:"requested_by,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	CancelledBy string    `json:"cancelled_by,omitempty"`
	CancelledAt time.Time `json:"cancelled_at"`
	// State is the job after this event (absent from events written before it existed).
	State *JobState `json:"state,omitempty"`
}

func (e ExportRequested) EventType() Type       { return TypeRequested }
func (e ExportRequested) Key() string           { return e.JobID }
func (e ExportRequested) Discriminator() string { return "" }
func (e ExportRequested) OccurredAt() time.Time { return e.RequestedAt }

func (e ExportStarted) EventType() Type       { return TypeStarted }
func (e ExportStarted) Key() string           { return e.JobID }
func (e ExportStarted) Discriminator() string { return itoa(int64(e.Attempt)) }
func (e ExportStarted) OccurredAt() time.Time { return e.StartedAt }

func (e ExportProgress) EventType() Type { return TypeProgress }
func (e ExportProgress) Key() string     { return e.JobID }
func (e ExportProgress) Discriminator() string {
	d := itoa(int64(e.Attempt)) + "/" + itoa(e.RowsDone)
	if e.Phase == PhaseUploading { // the same rows as the last writing report, another event
		d += "/" + e.Phase
	}
	return d
}
func (e ExportProgress) OccurredAt() time.Time { return e.At }

func (e ExportCompleted) EventType() Type       { return TypeCompleted }
func (e ExportCompleted) Key() string           { return e.JobID }
func (e ExportCompleted) Discriminator() string { return "" }
func (e ExportCompleted) OccurredAt() time.Time { return e.FinishedAt }

func (e ExportFailed) EventType() Type       { return TypeFailed }
func (e ExportFailed) Key() string           { return e.JobID }
func (e ExportFailed) Discriminator() string { return "" }
func (e ExportFailed) OccurredAt() time.Time { return e.FailedAt }

func (e ExportCancelled) EventType() Type       { return TypeCancelled }
func (e ExportCancelled) Key() string           { return e.JobID }
func (e ExportCancelled) Discriminator() string { return "" }
func (e ExportCancelled) OccurredAt() time.Time { return e.CancelledAt }

// Audited actions of Accessed (CONTRACT §7).
const (
	ActionDownloaded      = "export.downloaded"
	ActionStreamed        = "export.streamed"
	ActionDeleted         = "export.deleted"
	ActionScheduleCreated = "schedule.created"
	ActionScheduleUpdated = "schedule.updated"
	ActionScheduleToggled = "schedule.toggled"
	ActionScheduleDeleted = "schedule.deleted"
	ActionScheduleRun     = "schedule.run"
	ActionPlatformCreated = "platform.created"
	ActionPlatformUpdated = "platform.updated"
	ActionPlatformDeleted = "platform.deleted"
	ActionDenied          = "access.denied"
	ActionRateLimited     = "rate.limited"
)

// Accessed is an act on the platform's resources that no job event records, for the audit: a
// download, a stream (when it ends), a deletion, a schedule change, a refused request. Its key
// is "access:" and the resource's id: a job's own key carries its lifecycle alone, which ends
// with its terminal event (CONTRACT §6), while a download comes after it.
type Accessed struct {
	ID           string         `json:"id"` // unique per access: the ce_id's discriminator
	Action       string         `json:"action"`
	ActorID      string         `json:"actor_id,omitempty"` // empty for a request without a valid token
	ActorName    string         `json:"actor_name,omitempty"`
	Manager      bool           `json:"manager,omitempty"` // the actor holds MANAGE_EXPORTS
	ResourceType string         `json:"resource_type"`     // job, schedule, stream, api
	ResourceID   string         `json:"resource_id"`
	Owner        string         `json:"owner,omitempty"` // the resource's owner, when known
	Entity       string         `json:"entity,omitempty"`
	Format       string         `json:"format,omitempty"`
	Fields       []string       `json:"fields,omitempty"`
	Filters      map[string]any `json:"filters,omitempty"`
	Rows         *int64         `json:"rows,omitempty"`
	Bytes        *int64         `json:"bytes,omitempty"`
	Complete     *bool          `json:"complete,omitempty"` // a stream or download sent to its end
	Status       int            `json:"status,omitempty"`   // the HTTP status answered
	Reason       string         `json:"reason,omitempty"`   // a refusal's code
	// Suppressed, on a summary of refusals (resource_id "refusals:<client>"), counts the
	// client's refusals of the window ending at At that were not audited one by one.
	Suppressed int64     `json:"suppressed,omitempty"`
	ClientIP   string    `json:"client_ip,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	At         time.Time `json:"at"`
}

// By is e as done by the request req describes: req's id, time, actor and client.
func (e Accessed) By(req Accessed) Accessed {
	e.ID, e.At, e.ActorID, e.ActorName, e.Manager = req.ID, req.At, req.ActorID, req.ActorName, req.Manager
	e.ClientIP, e.UserAgent = req.ClientIP, req.UserAgent
	return e
}

func (e Accessed) EventType() Type       { return TypeAccessed }
func (e Accessed) Key() string           { return "access:" + e.ResourceID }
func (e Accessed) Discriminator() string { return e.ID }
func (e Accessed) OccurredAt() time.Time { return e.At }

// ID is the stable ce_id of an event: a name-based (SHA-1, version 5 layout) UUID of its job
// id, type and discriminator.
func ID(e Event) string {
	h := sha1.New()
	h.Write([]byte(e.Key()))
	h.Write([]byte{0})
	h.Write([]byte(e.EventType()))
	h.Write([]byte{0})
	h.Write([]byte(e.Discriminator()))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// StateOf is the job state an event carries (nil for ExportRequested, and for events written
// before events carried their state).
func StateOf(ev Event) *JobState {
	switch e := ev.(type) {
	case ExportStarted:
		return e.State
	case ExportProgress:
		return e.State
	case ExportCompleted:
		return e.State
	case ExportFailed:
		return e.State
	case ExportCancelled:
		return e.State
	}
	return nil
}

// ExportDelivered says a completed job's file is at its platform's destination.
type ExportDelivered struct {
	JobID       string    `json:"job_id"`
	PlatformID  *string   `json:"platform_id"`
	RequestedBy string    `json:"requested_by"`
	ScheduleID  *string   `json:"schedule_id"`
	Target      string    `json:"target"` // where it went, without secrets
	Object      Object    `json:"object"` // the file delivered (our copy)
	Attempt     int       `json:"attempt"`
	DeliveredAt time.Time `json:"delivered_at"`
}

// ExportDeliveryFailed says a completed job's delivery was given up after Attempts (the file
// stays in our bucket; a person may retry it).
type ExportDeliveryFailed struct {
	JobID       string    `json:"job_id"`
	PlatformID  *string   `json:"platform_id"`
	RequestedBy string    `json:"requested_by"`
	ScheduleID  *string   `json:"schedule_id"`
	Target      string    `json:"target"`
	Attempts    int       `json:"attempts"`
	Error       JobError  `json:"error"`
	FailedAt    time.Time `json:"failed_at"`
}

func (e ExportDelivered) EventType() Type       { return TypeDelivered }
func (e ExportDelivered) Key() string           { return "delivery:" + e.JobID }
func (e ExportDelivered) Discriminator() string { return e.DeliveredAt.UTC().Format(time.RFC3339Nano) }
func (e ExportDelivered) OccurredAt() time.Time { return e.DeliveredAt }

func (e ExportDeliveryFailed) EventType() Type { return TypeDeliveryFailed }
func (e ExportDeliveryFailed) Key() string     { return "delivery:" + e.JobID }
func (e ExportDeliveryFailed) Discriminator() string {
	return e.FailedAt.UTC().Format(time.RFC3339Nano)
}
func (e ExportDeliveryFailed) OccurredAt() time.Time { return e.FailedAt }
