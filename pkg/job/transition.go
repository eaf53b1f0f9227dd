package job

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// Refusals: Apply changes nothing and says why.
var (
	// ErrNotFound: the job was deleted.
	ErrNotFound = errors.New("job not found")
	// ErrFinished: the job already ended (or its completion was recorded): nothing to stop.
	ErrFinished = errors.New("job already finished")
	// ErrLeaseLost: the sender does not hold the job's current lease.
	ErrLeaseLost = errors.New("lease lost")
	// ErrNotClaimable: the job ended, was deleted, or another worker holds a live lease.
	ErrNotClaimable = errors.New("job not claimable")
	// ErrStale: the report is not newer than what the job already shows.
	ErrStale = errors.New("stale report")
	// ErrInvalid: the command itself is malformed.
	ErrInvalid = errors.New("invalid command")
)

// Command is something a component asks of a job.
type Command interface{ command() string }

// Claim takes the job's lease for a new attempt: a queued job, or one whose lease holder gave
// it back or let its lease run out. Past MaxAttempts charged attempts the job fails instead,
// with its last real error.
type Claim struct {
	Owner       string
	TTL         time.Duration
	MaxAttempts int
	At          time.Time
}

// Renew extends the lease its holder still holds.
type Renew struct {
	Owner   string
	Attempt int
	TTL     time.Duration
	At      time.Time
}

// Start says the holder counted the rows and begins writing them.
type Start struct {
	Owner     string
	Attempt   int
	Worker    string
	RowsTotal int64
	At        time.Time
}

// Report is a progress report of the holder: rows written, bytes, and the phase (writing, or
// uploading once every row is written).
type Report struct {
	Owner        string
	Attempt      int
	RowsDone     int64
	BytesWritten int64
	Phase        string
	RateRowsPerS float64
	ETASeconds   *float64
	At           time.Time
}

// Complete records the holder's stored file: the job ends completed and its ExportCompleted is
// announced in the same step.
type Complete struct {
	Owner     string
	Attempt   int
	Rows      int64
	Object    events.Object
	Warnings  []string
	StartedAt time.Time
	ExpiresAt time.Time
	At        time.Time
}

// Fail ends the job as failed with the error its users see.
type Fail struct {
	Owner   string
	Attempt int
	Error   Error
	At      time.Time
}

// Release gives the lease back without ending the job. Cause nil is a hand-over (shutdown):
// the attempt is refunded. Otherwise the attempt failed in a way a retry may fix: it stays
// charged and Cause is kept as the job's last error.
type Release struct {
	Owner   string
	Attempt int
	Cause   *Error
	At      time.Time
}

// Cancel stops a queued or running job on a user's request.
type Cancel struct {
	By     string
	Reason string
	At     time.Time
}

// Delete hides the job for good, cancelling it first when it has not ended.
type Delete struct {
	By string
	At time.Time
	// Audit, when set, is the request's audit event (actor, client, id); the delete completes
	// it with the job's details and emits it with its own events, so the act and its audit
	// record commit together.
	Audit *events.Accessed
}

// RemoveFile records that the job's file is gone from the bucket; a completed job past its
// expiry becomes expired.
type RemoveFile struct {
	At time.Time
}

func (Claim) command() string      { return "claim" }
func (Renew) command() string      { return "renew" }
func (Start) command() string      { return "start" }
func (Report) command() string     { return "report" }
func (Complete) command() string   { return "complete" }
func (Fail) command() string       { return "fail" }
func (Release) command() string    { return "release" }
func (Cancel) command() string     { return "cancel" }
func (Delete) command() string     { return "delete" }
func (RemoveFile) command() string { return "remove_file" }

// Name is a command's name, for logs and errors.
func Name(c Command) string { return c.command() }

// New is a queued job made from its request, with the event announcing it.
func New(req events.ExportRequested) (Job, []events.Event) {
	j := Job{
		ID: req.JobID, TaskID: req.JobID, Entity: req.Entity, Format: req.Format, Status: StatusQueued,
		Fields: nonNil(req.Fields), ExcludeFields: nonNil(req.ExcludeFields), Filters: nonNilMap(req.Filters),
		Options: nonNilMap(req.Options), FileName: req.FileName, Headers: req.Headers, Compression: req.Compression,
		RequestedBy: req.RequestedBy, RequesterName: req.RequesterName, ScheduleID: req.ScheduleID, ScheduledFor: req.ScheduledFor,
		PlatformID: req.PlatformID, Deliver: req.Deliver, Webhook: req.Webhook, CreatedAt: req.RequestedAt, UpdatedAt: req.RequestedAt,
		Warnings: []string{}, Phase: events.PhaseQueued, Version: 1,
	}
	return j, []events.Event{req}
}

// Apply decides what command c does to job j: the job after it, and the events announcing the
// change (to be stored with it, in order). A refusal returns j unchanged, no events and one of
// the errors above.
func Apply(j Job, c Command) (Job, []events.Event, error) {
	next, evs, err := apply(j, c)
	if err != nil {
		return j, nil, fmt.Errorf("%s job %s: %w", c.command(), j.ID, err)
	}
	next.Version = j.Version + 1
	st := next.State()
	for i, ev := range evs {
		evs[i] = withState(ev, &st)
	}
	return next, evs, nil
}

func apply(j Job, c Command) (Job, []events.Event, error) {
	switch c := c.(type) {
	case Claim:
		return claim(j, c)
	case Renew:
		if !j.Holds(c.Owner, c.Attempt) {
			return j, nil, ErrLeaseLost
		}
		j.LeaseExpiresAt = ptr(c.At.Add(c.TTL))
		return j, nil, nil // a renewal is no news: UpdatedAt stays
	case Start:
		if err := holder(j, c.Owner, c.Attempt); err != nil {
			return j, nil, err
		}
		if c.RowsTotal < 0 {
			return j, nil, fmt.Errorf("%w: negative row count %d", ErrInvalid, c.RowsTotal)
		}
		j.Phase, j.RowsTotal, j.RowsDone, j.Progress, j.BytesWritten = events.PhaseWriting, ptr(c.RowsTotal), 0, 0, 0
		j.RateRowsPerS, j.ETASeconds, j.UpdatedAt = nil, nil, c.At
		if j.StartedAt == nil {
			j.StartedAt = ptr(c.At)
		}
		return j, []events.Event{events.ExportStarted{
			JobID: j.ID, Entity: j.Entity, Format: j.Format, Worker: c.Worker, Attempt: j.Attempt,
			RowsTotal: c.RowsTotal, StartedAt: c.At,
		}}, nil
	case Report:
		return report(j, c)
	case Complete:
		if err := holder(j, c.Owner, c.Attempt); err != nil {
			return j, nil, err
		}
		if c.Rows < 0 || c.Object.Key == "" {
			return j, nil, fmt.Errorf("%w: a completion needs its rows and object", ErrInvalid)
		}
		j.Status, j.Phase, j.Progress = StatusCompleted, events.PhaseDone, 100
		j.RowsDone, j.RowsTotal, j.BytesWritten = c.Rows, ptr(c.Rows), c.Object.SizeBytes
		j.File, j.Warnings, j.FinishedAt, j.ExpiresAt = ptr(c.Object), nonNil(c.Warnings), ptr(c.At), ptr(c.ExpiresAt)
		if j.StartedAt == nil {
			j.StartedAt = ptr(c.StartedAt)
		}
		j = ended(j, c.At)
		if j.Deliver {
			j.Delivery = &Delivery{Status: DeliveryPending, NextAttemptAt: ptr(c.At)}
		}
		return j, []events.Event{events.ExportCompleted{
			JobID: j.ID, Entity: j.Entity, Format: j.Format, Rows: c.Rows, Object: c.Object,
			RequestedBy: j.RequestedBy, ScheduleID: j.ScheduleID, ScheduledFor: j.ScheduledFor,
			PlatformID: j.PlatformID, StartedAt: c.StartedAt, FinishedAt: c.At,
			DurationMS: c.At.Sub(c.StartedAt).Milliseconds(), Warnings: c.Warnings, ExpiresAt: ptr(c.ExpiresAt),
		}}, nil
	case Fail:
		if err := holder(j, c.Owner, c.Attempt); err != nil {
			return j, nil, err
		}
		return failed(j, c.Error, c.At)
	case Release:
		if err := holder(j, c.Owner, c.Attempt); err != nil {
			return j, nil, err
		}
		if c.Cause == nil {
			j.Charged = max(j.Charged-1, 0)
		} else {
			j.LastError = ptr(*c.Cause)
		}
		j.Status, j.Phase, j.LeaseOwner, j.LeaseExpiresAt = StatusQueued, events.PhaseQueued, nil, nil
		j.RateRowsPerS, j.ETASeconds, j.UpdatedAt = nil, nil, c.At
		return j, nil, nil
	case Cancel:
		if j.Deleted() {
			return j, nil, ErrNotFound
		}
		return cancel(j, c.By, c.Reason, c.At)
	case Delete:
		if j.Deleted() {
			return j, nil, ErrNotFound
		}
		var evs []events.Event
		if !j.Status.Terminal() {
			var err error
			if j, evs, err = cancel(j, c.By, "deleted", c.At); err != nil {
				return j, nil, err
			}
		}
		j.DeletedAt, j.UpdatedAt = ptr(c.At), c.At
		if c.Audit != nil {
			evs = append(evs, j.Access(events.ActionDeleted).By(*c.Audit))
		}
		return j, evs, nil
	case RemoveFile:
		if j.FileRemoved || j.File == nil {
			return j, nil, ErrStale
		}
		j.FileRemoved, j.UpdatedAt = true, c.At
		if j.Status == StatusCompleted && j.ExpiresAt != nil && !j.ExpiresAt.After(c.At) {
			j.Status = StatusExpired
		}
		return j, nil, nil
	case ClaimDelivery, RenewDelivery, Delivered, DeliveryAttemptFailed, RetryDelivery:
		return applyDelivery(j, c)
	}
	return j, nil, fmt.Errorf("%w: unknown command %T", ErrInvalid, c)
}

func claim(j Job, c Claim) (Job, []events.Event, error) {
	if j.Deleted() || j.Status.Terminal() {
		return j, nil, ErrNotClaimable
	}
	if j.LeaseOwner != nil && j.LeaseExpiresAt != nil && !j.LeaseExpiresAt.Before(c.At) {
		return j, nil, ErrNotClaimable
	}
	if c.MaxAttempts > 0 && j.Charged >= c.MaxAttempts {
		// Every charged attempt failed or its worker vanished (killed, e.g. out of memory on
		// this very job): another would only do the same. Fail with the real cause when known.
		e := Error{Code: "export_failed", Message: fmt.Sprintf(
			"the export was started %d times and never finished (its workers stopped); it is not retried again", j.Charged)}
		if j.LastError != nil {
			e = Error{Code: j.LastError.Code, Message: fmt.Sprintf("%s (gave up after %d attempts)", j.LastError.Message, j.Charged)}
		}
		return failed(j, e, c.At)
	}
	j.Attempt++
	j.Charged++
	j.Status, j.Phase, j.LeaseOwner, j.LeaseExpiresAt = StatusRunning, events.PhaseCounting, ptr(c.Owner), ptr(c.At.Add(c.TTL))
	j.RowsDone, j.Progress, j.BytesWritten, j.RateRowsPerS, j.ETASeconds, j.UpdatedAt = 0, 0, 0, nil, nil, c.At
	if j.StartedAt == nil {
		j.StartedAt = ptr(c.At)
	}
	return j, nil, nil
}

func report(j Job, c Report) (Job, []events.Event, error) {
	if err := holder(j, c.Owner, c.Attempt); err != nil {
		return j, nil, err
	}
	if c.Phase != events.PhaseWriting && c.Phase != events.PhaseUploading {
		return j, nil, fmt.Errorf("%w: phase %q", ErrInvalid, c.Phase)
	}
	if j.Phase != events.PhaseWriting && j.Phase != events.PhaseUploading {
		return j, nil, fmt.Errorf("%w: progress before the start", ErrInvalid)
	}
	// Rows only grow; the upload phase may repeat the last rows but never goes back to writing.
	newer := c.RowsDone > j.RowsDone || c.RowsDone == j.RowsDone && c.Phase == events.PhaseUploading && j.Phase != events.PhaseUploading
	if !newer || j.Phase == events.PhaseUploading && c.Phase == events.PhaseWriting {
		return j, nil, ErrStale
	}
	total := int64(0)
	if j.RowsTotal != nil {
		total = *j.RowsTotal
	}
	j.RowsDone, j.BytesWritten, j.Phase, j.Progress = c.RowsDone, max(c.BytesWritten, j.BytesWritten), c.Phase, Percent(c.RowsDone, total)
	j.RateRowsPerS, j.ETASeconds, j.UpdatedAt = nil, c.ETASeconds, c.At
	if c.RateRowsPerS > 0 {
		j.RateRowsPerS = ptr(c.RateRowsPerS)
	}
	return j, []events.Event{events.ExportProgress{
		JobID: j.ID, Attempt: j.Attempt, RowsDone: j.RowsDone, RowsTotal: total, Progress: j.Progress,
		BytesWritten: j.BytesWritten, Phase: c.Phase, RateRowsPerS: c.RateRowsPerS, ETASeconds: c.ETASeconds, At: c.At,
	}}, nil
}

func cancel(j Job, by, reason string, at time.Time) (Job, []events.Event, error) {
	if j.Status.Terminal() {
		return j, nil, ErrFinished
	}
	j.Status, j.FinishedAt = StatusCancelled, ptr(at)
	if by != "" {
		j.CancelledBy = ptr(by)
	}
	j = ended(j, at)
	return j, []events.Event{events.ExportCancelled{
		JobID: j.ID, Entity: j.Entity, Format: j.Format, RequestedBy: j.RequestedBy,
		Reason: reason, CancelledBy: by, CancelledAt: at,
	}}, nil
}

func failed(j Job, e Error, at time.Time) (Job, []events.Event, error) {
	j.Status, j.Error, j.FinishedAt = StatusFailed, ptr(e), ptr(at)
	j = ended(j, at)
	return j, []events.Event{events.ExportFailed{
		JobID: j.ID, Entity: j.Entity, Format: j.Format, Code: e.Code, Message: e.Message,
		Attempt: j.Attempt, RequestedBy: j.RequestedBy, ScheduleID: j.ScheduleID, PlatformID: j.PlatformID, FailedAt: at,
	}}, nil
}

// ended is what every terminal transition does besides its own fields.
func ended(j Job, at time.Time) Job {
	j.Phase, j.RateRowsPerS, j.ETASeconds, j.LeaseOwner, j.LeaseExpiresAt, j.UpdatedAt = events.PhaseDone, nil, nil, nil, nil, at
	return j
}

// holder checks that a running job's lease is the sender's; ErrFinished once the job ended
// (a cancel came first), ErrLeaseLost when another attempt holds it.
func holder(j Job, owner string, attempt int) error {
	if j.Status.Terminal() {
		return ErrFinished
	}
	if !j.Holds(owner, attempt) {
		return ErrLeaseLost
	}
	return nil
}

// Percent is the progress of done rows out of total: 100 only once the file is stored.
func Percent(done, total int64) float64 {
	if total <= 0 {
		return 0
	}
	p := float64(done) * 100 / float64(total)
	return math.Min(99.9, math.Round(p*10)/10)
}

func withState(ev events.Event, st *events.JobState) events.Event {
	switch e := ev.(type) {
	case events.ExportStarted:
		e.State = st
		return e
	case events.ExportProgress:
		e.State = st
		return e
	case events.ExportCompleted:
		e.State = st
		return e
	case events.ExportFailed:
		e.State = st
		return e
	case events.ExportCancelled:
		e.State = st
		return e
	}
	return ev
}

func ptr[T any](v T) *T { return &v }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
