package schedule

import (
	"fmt"
	"time"
)

// RunStatus is where one fire time of a schedule stands.
type RunStatus string

// Run statuses. The first four belong to a fire time that produced a job and is not over; the
// others are final.
const (
	RunQueued         RunStatus = "queued"   // its latest attempt's job is waiting
	RunRunning        RunStatus = "running"  // its latest attempt's job runs
	RunRetrying       RunStatus = "retrying" // an attempt failed; the next one starts at retry_at
	RunCompleted      RunStatus = "completed"
	RunFailed         RunStatus = "failed" // every attempt failed
	RunCancelled      RunStatus = "cancelled"
	RunMissed         RunStatus = "missed"          // no job: no scheduler could fire it in time
	RunSkippedOverlap RunStatus = "skipped_overlap" // no job: the previous run was still going
	RunDisabled       RunStatus = "disabled"        // no job: the schedule was disabled
)

// Terminal reports whether the run is over.
func (s RunStatus) Terminal() bool {
	switch s {
	case RunQueued, RunRunning, RunRetrying:
		return false
	}
	return true
}

// Trigger says why a run exists.
type Trigger string

// Triggers.
const (
	TriggerTimetable Trigger = "timetable" // its fire time came, a scheduler fired it
	TriggerCatchUp   Trigger = "catch_up"  // a missed fire time, run late by run_once
	TriggerManual    Trigger = "manual"    // POST /schedules/{id}/run
)

// Fire is the decision about one fire time.
type Fire struct {
	At      time.Time
	Trigger Trigger
	// Status is RunQueued for a fire time that starts a job, else why it does not.
	Status RunStatus
	Reason string
	// Delay is how late the fire is, for those that start a job.
	Delay time.Duration
}

// PlanInput is what Plan decides from: a schedule that is due, and the world at now.
type PlanInput struct {
	Timing    Timing
	NextRunAt time.Time // the schedule's first fire time not decided yet
	Now       time.Time
	Misfire   MisfirePolicy
	Overlap   OverlapPolicy
	// Busy says a previous run of the schedule is queued, running or waiting for a retry.
	Busy bool
	// Grace is how late a fire time may be found and still count as on time.
	Grace time.Duration
	// Window is the catch-up window: fire times older than Now-Window are neither run nor
	// logged one by one (Plan counts them in Dropped).
	Window time.Duration
	// MaxLogged bounds the fire times one decision logs.
	MaxLogged int
}

// Plan decides what becomes of every fire time in [NextRunAt, Now]: at most one starts a job
// (the latest, when it is on time, or under run_once when it is late but within the window),
// the others are logged missed; the one that would start is skipped_overlap when the previous
// run is still going and the overlap policy is skip. It returns the decisions, oldest first,
// the next fire time after Now (zero: none), and how many fire times were older than the
// window (dropped: not logged).
func Plan(in PlanInput) (fires []Fire, next time.Time, dropped int) {
	if in.MaxLogged <= 0 {
		in.MaxLogged = 10_000
	}
	windowStart := in.Now.Add(-in.Window)
	at := in.NextRunAt
	if at.Before(windowStart) {
		// Count the dropped ones up to a bound, then jump to the window.
		for n := 0; !at.IsZero() && at.Before(windowStart); n++ {
			if n == in.MaxLogged {
				at = in.Timing.Next(windowStart.Add(-time.Nanosecond))
				dropped = -1 // too many to count
				break
			}
			dropped++
			at = in.Timing.Next(at)
		}
	}
	var due []time.Time
	for ; !at.IsZero() && !at.After(in.Now); at = in.Timing.Next(at) {
		due = append(due, at)
		if len(due) > in.MaxLogged { // keep the latest ones
			due = due[1:]
			if dropped >= 0 {
				dropped++
			}
		}
	}
	next = at
	if next.IsZero() || !next.After(in.Now) {
		next = in.Timing.Next(in.Now)
	}
	for i, at := range due {
		late := in.Now.Sub(at)
		latest := i == len(due)-1
		f := Fire{At: at, Trigger: TriggerTimetable, Delay: late}
		switch {
		case !latest:
			f.Status = RunMissed
			f.Reason = fmt.Sprintf("no scheduler fired it in time (found %s late); a later fire time was due", late.Round(time.Second))
		case late > in.Grace && in.Misfire == MisfireSkip:
			f.Status = RunMissed
			f.Reason = fmt.Sprintf("no scheduler fired it in time (found %s late); misfire_policy skip runs no late fire", late.Round(time.Second))
		case in.Busy && in.Overlap == OverlapSkip:
			f.Status = RunSkippedOverlap
			f.Reason = "the previous run was still queued, running or waiting for a retry (overlap_policy skip)"
		default:
			f.Status = RunQueued
			if late > in.Grace {
				f.Trigger = TriggerCatchUp
				f.Reason = fmt.Sprintf("caught up %s late (misfire_policy run_once)", late.Round(time.Second))
			}
		}
		fires = append(fires, f)
	}
	return fires, next, dropped
}
