package schedule

import (
	"fmt"
	"time"
)

// Run is the state of one fire time that produced a job, as far as its outcome goes.
type Run struct {
	Status RunStatus
	// Attempt is the number of the latest attempt (1 for the first job).
	Attempt int
	RetryAt *time.Time
	Reason  string
}

// JobStatus is how an attempt's job ended (or that it started).
type JobStatus string

// Job statuses a run reacts to.
const (
	JobRunning   JobStatus = "running"
	JobCompleted JobStatus = "completed"
	JobFailed    JobStatus = "failed"
	JobCancelled JobStatus = "cancelled"
)

// Outcome is what a run's change means for its schedule's stats.
type Outcome int

// Outcomes.
const (
	OutcomeNone Outcome = iota
	OutcomeSuccess
	OutcomeFailure
	OutcomeCancelled
)

// RetryPolicy is a schedule's retry settings.
type RetryPolicy struct {
	MaxRetries int
	Delay      time.Duration
}

// JobChanged is the transition of a run when the job of one of its attempts moves. A change
// of an older attempt, a repeat, or anything after the run is over changes nothing (changed
// false), which is what makes folding the same event twice harmless.
func (r Run) JobChanged(attempt int, status JobStatus, at time.Time, message string, p RetryPolicy) (next Run, outcome Outcome, changed bool) {
	if r.Status.Terminal() || attempt != r.Attempt || r.Status == RunRetrying {
		return r, OutcomeNone, false
	}
	switch status {
	case JobRunning:
		if r.Status != RunQueued {
			return r, OutcomeNone, false
		}
		r.Status = RunRunning
		return r, OutcomeNone, true
	case JobCompleted:
		r.Status, r.RetryAt, r.Reason = RunCompleted, nil, ""
		return r, OutcomeSuccess, true
	case JobCancelled:
		r.Status, r.RetryAt, r.Reason = RunCancelled, nil, "the job was cancelled; a cancelled run is not retried"
		return r, OutcomeCancelled, true
	case JobFailed:
		if r.Attempt <= p.MaxRetries {
			retryAt := at.Add(p.Delay).UTC()
			r.Status, r.RetryAt = RunRetrying, &retryAt
			r.Reason = fmt.Sprintf("attempt %d failed (%s); attempt %d at %s", r.Attempt, message, r.Attempt+1, retryAt.Format(time.RFC3339))
			return r, OutcomeNone, true
		}
		r.Status, r.RetryAt = RunFailed, nil
		r.Reason = fmt.Sprintf("attempt %d of %d failed: %s", r.Attempt, p.MaxRetries+1, message)
		return r, OutcomeFailure, true
	}
	return r, OutcomeNone, false
}

// RetryDue is the transition of a retrying run whose retry time came: a new attempt starts
// (start true), unless the schedule was disabled or deleted meanwhile, which ends the run as
// failed.
func (r Run) RetryDue(now time.Time, enabled bool) (next Run, outcome Outcome, start bool) {
	if r.Status != RunRetrying || r.RetryAt == nil || r.RetryAt.After(now) {
		return r, OutcomeNone, false
	}
	if !enabled {
		r.Status, r.RetryAt = RunFailed, nil
		r.Reason = fmt.Sprintf("attempt %d failed and the schedule was disabled before its retry", r.Attempt)
		return r, OutcomeFailure, false
	}
	r.Attempt++
	r.Status, r.RetryAt = RunQueued, nil
	return r, OutcomeNone, true
}
