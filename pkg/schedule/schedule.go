package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
)

// MisfirePolicy says what happens to fire times that passed while no scheduler could fire them.
type MisfirePolicy string

// Misfire policies.
const (
	// MisfireRunOnce runs the latest missed fire time once, as soon as a scheduler is back;
	// the earlier ones are logged missed.
	MisfireRunOnce MisfirePolicy = "run_once"
	// MisfireSkip logs every missed fire time and runs none of them.
	MisfireSkip MisfirePolicy = "skip"
)

// OverlapPolicy says what happens to a fire time while the schedule's previous run is going.
type OverlapPolicy string

// Overlap policies.
const (
	// OverlapSkip logs the fire time skipped_overlap and starts nothing.
	OverlapSkip OverlapPolicy = "skip"
	// OverlapQueue starts the new run anyway; it waits in the queue like any job.
	OverlapQueue OverlapPolicy = "queue"
)

// Bounds of the retry settings.
const (
	MaxRetries           = 10
	MaxRetryDelaySeconds = 86_400
	// DefaultRetryDelaySeconds is the wait before retrying a failed run when none is given.
	DefaultRetryDelaySeconds = 300
	maxNameLength            = 200
)

// ExportConfig is what each run of a schedule exports: the export request of CONTRACT §4
// (merged over its platform's defaults when it has one, export.Merge).
type ExportConfig = export.Request

// Spec is what a user sets on a schedule (create and full update).
type Spec struct {
	Name              string        `json:"name"`
	PlatformID        *string       `json:"platform_id"`
	Type              Kind          `json:"schedule_type"`
	CronExpression    string        `json:"cron_expression,omitempty"`
	IntervalMinutes   int           `json:"interval_minutes,omitempty"`
	Timezone          string        `json:"timezone"`
	ExportConfig      ExportConfig  `json:"export_config"`
	MaxRetries        int           `json:"max_retries"`
	RetryDelaySeconds int           `json:"retry_delay_seconds"`
	MisfirePolicy     MisfirePolicy `json:"misfire_policy"`
	OverlapPolicy     OverlapPolicy `json:"overlap_policy"`
	Enabled           bool          `json:"enabled"`
}

// FieldError is a refused input, naming the field at fault (JSON path).
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Message }

func refuse(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Normalize fills the defaults (timezone, policies) and checks every field but the export
// configuration's contents (the export pipeline checks those), returning a *FieldError.
func (s *Spec) Normalize(now time.Time) error {
	s.Name = strings.TrimSpace(s.Name)
	switch {
	case s.Name == "":
		return refuse("name", "is required")
	case utf8.RuneCountInString(s.Name) > maxNameLength:
		return refuse("name", "is longer than %d characters", maxNameLength)
	case strings.ContainsFunc(s.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return refuse("name", "must not hold control characters")
	}
	if err := s.NormalizeTiming(now); err != nil {
		return err
	}
	if s.MaxRetries < 0 || s.MaxRetries > MaxRetries {
		return refuse("max_retries", "must be from 0 to %d", MaxRetries)
	}
	if s.RetryDelaySeconds < 0 || s.RetryDelaySeconds > MaxRetryDelaySeconds {
		return refuse("retry_delay_seconds", "must be from 0 to %d", MaxRetryDelaySeconds)
	}
	switch s.MisfirePolicy {
	case "":
		s.MisfirePolicy = MisfireRunOnce
	case MisfireRunOnce, MisfireSkip:
	default:
		return refuse("misfire_policy", "%q is not run_once or skip", s.MisfirePolicy)
	}
	switch s.OverlapPolicy {
	case "":
		s.OverlapPolicy = OverlapSkip
	case OverlapSkip, OverlapQueue:
	default:
		return refuse("overlap_policy", "%q is not skip or queue", s.OverlapPolicy)
	}
	// With a platform, its defaults may give them (export.Merge, checked by the caller).
	if s.ExportConfig.Entity == "" && s.PlatformID == nil {
		return refuse("export_config.entity", "is required")
	}
	if s.ExportConfig.Format == "" && s.PlatformID == nil {
		return refuse("export_config.format", "is required")
	}
	return nil
}

// NormalizeTiming fills and checks the fields that say when the schedule fires (type, cron
// expression or interval, time zone), returning a *FieldError: what a preview of the next fire
// times needs, before the rest of the schedule is filled in.
func (s *Spec) NormalizeTiming(now time.Time) error {
	if s.Type == "" { // inferred when only one of the two is given
		switch {
		case s.CronExpression != "" && s.IntervalMinutes == 0:
			s.Type = KindCron
		case s.IntervalMinutes != 0 && s.CronExpression == "":
			s.Type = KindInterval
		default:
			return refuse("schedule_type", "is required: cron or interval")
		}
	}
	if s.Timezone == "" {
		s.Timezone = DefaultTimezone
	}
	loc, err := LoadZone(s.Timezone)
	if err != nil {
		return refuse("timezone", "%s", err.Error())
	}
	switch s.Type {
	case KindCron:
		if s.IntervalMinutes != 0 {
			return refuse("interval_minutes", "is for interval schedules; this one is cron")
		}
		s.CronExpression = strings.TrimSpace(s.CronExpression)
		if _, err := NewCron(s.CronExpression, loc, now); err != nil {
			return refuse("cron_expression", "%s", err.Error())
		}
	case KindInterval:
		if s.CronExpression != "" {
			return refuse("cron_expression", "is for cron schedules; this one is interval")
		}
		if _, err := NewInterval(s.IntervalMinutes, now, loc); err != nil {
			return refuse("interval_minutes", "%s", err.Error())
		}
	default:
		return refuse("schedule_type", "%q is not cron or interval", s.Type)
	}
	return nil
}

// Timing is the spec's fire-time computation; anchor is where an interval counts from.
func (s Spec) Timing(anchor time.Time) (Timing, error) {
	loc, err := LoadZone(s.Timezone)
	if err != nil {
		return Timing{}, refuse("timezone", "%s", err.Error())
	}
	switch s.Type {
	case KindCron:
		t, err := NewCron(s.CronExpression, loc, anchor)
		if err != nil {
			return Timing{}, refuse("cron_expression", "%s", err.Error())
		}
		return t, nil
	case KindInterval:
		t, err := NewInterval(s.IntervalMinutes, anchor, loc)
		if err != nil {
			return Timing{}, refuse("interval_minutes", "%s", err.Error())
		}
		return t, nil
	}
	return Timing{}, refuse("schedule_type", "%q is not cron or interval", s.Type)
}

// Stats are a schedule's runs as counted from their outcomes: each fire time counts once,
// whatever its number of attempts.
type Stats struct {
	Runs                int        `json:"runs"`
	Successes           int        `json:"successes"`
	Failures            int        `json:"failures"`
	LastRunAt           *time.Time `json:"last_run_at"`
	LastStatus          *RunStatus `json:"last_status"`
	LastJobID           *string    `json:"last_job_id"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
}

// Schedule is one schedule as users see it.
type Schedule struct {
	ID string `json:"id"`
	Spec
	NextRunAt *time.Time `json:"next_run_at"`
	Owner     string     `json:"owner"`
	CreatedBy string     `json:"created_by"`
	Stats     Stats      `json:"stats"`
	// AnchorAt is where an interval's fire times count from: its creation, or the last time it
	// was re-enabled or re-timed.
	AnchorAt  time.Time `json:"anchor_at"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// LastError says why the scheduler disabled the schedule (a stored expression it cannot
	// read); empty otherwise.
	LastError string `json:"last_error,omitempty"`
	// DisabledAt is when the schedule was last switched off (null while on).
	DisabledAt *time.Time `json:"disabled_at"`
	// Version grows with every change; a change made from a stale read is refused.
	Version int64 `json:"version"`
}

// ErrNeverFires is returned when a schedule has no further fire time.
var ErrNeverFires = errors.New("the schedule has no further fire time")

// New is a schedule made from a normalized spec at now: its interval anchor is now (to the
// second) and its next fire time the first after now.
func New(id string, spec Spec, owner string, now time.Time) (Schedule, error) {
	now = now.UTC()
	s := Schedule{ID: id, Spec: spec, Owner: owner, CreatedBy: owner, CreatedAt: now, UpdatedAt: now, Version: 1}
	if !spec.Enabled {
		s.DisabledAt = &now
	}
	return s, s.retime(now)
}

// Access is the audit event of an act (events.Action*) on the schedule, without its actor and
// client, which the caller adds.
func (s Schedule) Access(action string) events.Accessed {
	c := s.ExportConfig
	return events.Accessed{Action: action, ResourceType: "schedule", ResourceID: s.ID, Owner: s.Owner,
		Entity: c.Entity, Format: c.Format, Fields: c.Fields, Filters: c.Filters}
}

// retime restarts the timetable at now: an interval counts from now, and the next fire time
// is the first after now (none while disabled).
func (s *Schedule) retime(now time.Time) error {
	s.AnchorAt = now.UTC().Truncate(time.Second)
	s.NextRunAt = nil
	if !s.Enabled {
		return nil
	}
	t, err := s.Spec.Timing(s.AnchorAt)
	if err != nil {
		return err
	}
	if next := t.Next(now); !next.IsZero() {
		s.NextRunAt = &next
	}
	return nil
}

func (s Spec) sameTiming(o Spec) bool {
	return s.Type == o.Type && s.CronExpression == o.CronExpression && s.IntervalMinutes == o.IntervalMinutes &&
		s.Timezone == o.Timezone
}

// Replace is a full update (PUT) at now. The timetable restarts from now when the timing
// changed or the schedule is re-enabled; otherwise it goes on (an interval keeps its anchor).
// Stats and the run log stay. When the schedule is switched back on, it returns the fire
// times passed while it was off, within window, to be logged as disabled.
func (s *Schedule) Replace(spec Spec, now time.Time, window time.Duration) ([]Fire, error) {
	now = now.UTC()
	wasEnabled, same := s.Enabled, s.Spec.sameTiming(spec)
	var passed []Fire
	if !wasEnabled && spec.Enabled && s.DisabledAt != nil {
		passed = s.DisabledFires(*s.DisabledAt, now, window, 1000)
	}
	s.Spec = spec
	s.UpdatedAt = now
	s.LastError = ""
	switch {
	case !spec.Enabled:
		if wasEnabled || s.DisabledAt == nil {
			s.DisabledAt = &now
		}
		s.NextRunAt = nil
		return nil, nil
	case !wasEnabled || !same:
		s.DisabledAt = nil
		return passed, s.retime(now)
	}
	return nil, nil
}

// SetEnabled turns the schedule on or off at now (toggle). Off: nothing fires until it is on
// again. On: the timetable restarts from now; fire times passed while off are not caught up
// but returned, to be logged as disabled.
func (s *Schedule) SetEnabled(on bool, now time.Time, window time.Duration) ([]Fire, error) {
	spec := s.Spec
	spec.Enabled = on
	return s.Replace(spec, now, window)
}

// DisabledFires are the fire times in (from, now] within the window, at most max, logged as
// disabled when a schedule is switched back on, so the run log says why nothing ran.
func (s Schedule) DisabledFires(from, now time.Time, window time.Duration, max int) []Fire {
	if start := now.Add(-window); from.Before(start) {
		from = start
	}
	t, err := s.Spec.Timing(s.AnchorAt)
	if err != nil {
		return nil
	}
	var out []Fire
	for at := t.Next(from); !at.IsZero() && !at.After(now) && len(out) < max; at = t.Next(at) {
		out = append(out, Fire{At: at, Trigger: TriggerTimetable, Status: RunDisabled, Reason: "the schedule was disabled"})
	}
	return out
}

// Fired counts a fire time that started a job.
func (st *Stats) Fired(at time.Time, jobID string) {
	st.Runs++
	if st.LastRunAt == nil || !at.Before(*st.LastRunAt) {
		at, status := at.UTC(), RunQueued
		st.LastRunAt, st.LastStatus, st.LastJobID = &at, &status, &jobID
	}
}

// Moved records that the run of scheduledFor moved to status (its latest job jobID, "" for
// the same), with the outcome it means: a fire counts once, as a success or a failure.
func (st *Stats) Moved(scheduledFor time.Time, status RunStatus, jobID string, o Outcome) {
	switch o {
	case OutcomeSuccess:
		st.Successes++
		st.ConsecutiveFailures = 0
	case OutcomeFailure:
		st.Failures++
		st.ConsecutiveFailures++
	}
	if st.LastRunAt != nil && st.LastRunAt.Equal(scheduledFor) {
		st.LastStatus = &status
		if jobID != "" {
			st.LastJobID = &jobID
		}
	}
}
