package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
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
// without the platform (the schedule's own).
type ExportConfig struct {
	Entity        string         `json:"entity"`
	Format        string         `json:"format"`
	Fields        []string       `json:"fields,omitempty"`
	ExcludeFields []string       `json:"exclude_fields,omitempty"`
	Filters       map[string]any `json:"filters,omitempty"`
	Options       map[string]any `json:"options,omitempty"`
	FileName      string         `json:"file_name,omitempty"`
}

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
	if s.ExportConfig.Entity == "" {
		return refuse("export_config.entity", "is required")
	}
	if s.ExportConfig.Format == "" {
		return refuse("export_config.format", "is required")
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
	// Version grows with every change; a change made from a stale read is refused.
	Version int64 `json:"version"`
}

// ErrNeverFires is returned when a schedule has no further fire time.
var ErrNeverFires = errors.New("the schedule has no further fire time")
