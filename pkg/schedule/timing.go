// Package schedule is the pure domain of scheduled exports: when a schedule fires (cron or
// interval, in its time zone, with the platform's own daylight-saving rule), what becomes of
// each fire time (run, missed, skipped because the previous run is still going), and how a
// run moves from fire to outcome (retries included). It knows no database and no Kafka: the
// repository (pkg/schedstore) saves what these functions decide, and the scheduler service
// drives them with its clock.
//
// Time rules, as users read them in the README:
//   - a cron expression is read on the wall clock of the schedule's zone;
//   - a wall-clock time that does not exist that day (clocks jump forward) fires once, at the
//     first instant after the gap;
//   - a wall-clock time that occurs twice (clocks go back) fires once, at its first occurrence;
//   - an interval is an exact duration, counted in UTC from the schedule's anchor (when it was
//     created, re-enabled or re-timed), whatever the zone's clocks do.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // any IANA zone works in a bare container

	"github.com/robfig/cron/v3"
)

// Kind is how a schedule's fire times are given.
type Kind string

// Kinds.
const (
	KindCron     Kind = "cron"
	KindInterval Kind = "interval"
)

// Bounds of an interval, in minutes (one minute to one year).
const (
	MinIntervalMinutes = 1
	MaxIntervalMinutes = 525_600
)

// DefaultTimezone is the zone of a schedule that names none.
const DefaultTimezone = "Europe/Paris"

// Timing computes a schedule's fire times.
type Timing struct {
	kind     Kind
	spec     *cron.SpecSchedule
	interval time.Duration
	anchor   time.Time
	loc      *time.Location
}

// parse reads the standard five fields and the descriptors; @every is refused separately
// (intervals are their own kind). A variable: a test makes it panic, as robfig/cron does on
// the TZ= prefixes ParseCron refuses before calling it, to prove the recover.
var parse = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor).Parse

// ParseCron reads a five-field cron expression or a descriptor (@hourly, @daily, @midnight,
// @weekly, @monthly, @yearly, @annually). Time-zone prefixes are refused: the zone is the
// schedule's own field. robfig/cron panics on some malformed input; that is an error here.
func ParseCron(expr string) (spec *cron.SpecSchedule, err error) {
	expr = strings.TrimSpace(expr)
	switch {
	case expr == "":
		return nil, errors.New("is required for a cron schedule")
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return nil, errors.New("must not carry a time-zone prefix (TZ=, CRON_TZ=): set timezone instead")
	case strings.HasPrefix(expr, "@every"):
		return nil, errors.New("@every is an interval: use schedule_type interval with interval_minutes")
	case len(expr) > 200:
		return nil, errors.New("is longer than 200 characters")
	}
	if !strings.HasPrefix(expr, "@") {
		for _, f := range strings.Fields(expr) {
			for _, item := range strings.Split(f, ",") {
				if item == "" {
					return nil, fmt.Errorf("has an empty list item in %q", f)
				}
			}
		}
	}
	defer func() {
		if r := recover(); r != nil {
			spec, err = nil, fmt.Errorf("is not a valid cron expression (%v)", r)
		}
	}()
	s, err := parse(expr)
	if err != nil {
		return nil, fmt.Errorf("is not a valid cron expression: %v (five fields: minute hour day-of-month month day-of-week, or @hourly, @daily, @weekly, @monthly, @yearly)", err)
	}
	ss, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("is not a five-field expression")
	}
	if ss.Second != 1 { // only second 0: the descriptors and five fields all give it
		return nil, fmt.Errorf("must not name seconds")
	}
	return ss, nil
}

// LoadZone reads an IANA zone name ("Europe/Paris", "UTC"); "" is the default zone. "Local"
// is refused: it would mean whatever the server's clock says.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		name = DefaultTimezone
	}
	if name == "Local" || strings.ContainsAny(name, "\x00\\") || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		return nil, fmt.Errorf("%q is not an IANA time zone such as Europe/Paris", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone such as Europe/Paris", name)
	}
	return loc, nil
}

// NewCron is the timing of a cron expression in loc. It refuses an expression that never
// fires (such as 30 February) from now on.
func NewCron(expr string, loc *time.Location, now time.Time) (Timing, error) {
	spec, err := ParseCron(expr)
	if err != nil {
		return Timing{}, err
	}
	t := Timing{kind: KindCron, spec: spec, loc: loc}
	if t.Next(now).IsZero() {
		return Timing{}, errors.New("never fires (no such date in the next five years)")
	}
	return t, nil
}

// NewInterval is the timing of an interval: fire times are anchor + k × minutes, k ≥ 1,
// exact durations in UTC. loc only says how fire times are shown.
func NewInterval(minutes int, anchor time.Time, loc *time.Location) (Timing, error) {
	if minutes < MinIntervalMinutes || minutes > MaxIntervalMinutes {
		return Timing{}, fmt.Errorf("must be from %d to %d minutes", MinIntervalMinutes, MaxIntervalMinutes)
	}
	if anchor.IsZero() {
		return Timing{}, errors.New("an interval needs an anchor time")
	}
	return Timing{kind: KindInterval, interval: time.Duration(minutes) * time.Minute, anchor: anchor.UTC().Truncate(time.Second), loc: loc}, nil
}

// Location is the zone fire times are shown in.
func (t Timing) Location() *time.Location { return t.loc }

// Next is the first fire time strictly after after, in UTC; zero when there is none within
// five years.
func (t Timing) Next(after time.Time) time.Time {
	if t.kind == KindInterval {
		// In whole seconds (the anchor is one): time.Duration would overflow 292 years on.
		step := int64(t.interval / time.Second)
		a := t.anchor.Unix()
		if !after.After(t.anchor) {
			return time.Unix(a+step, 0).UTC()
		}
		k := (after.Unix()-a)/step + 1
		return time.Unix(a+k*step, 0).UTC()
	}
	after = after.In(t.loc)
	c := wall(after)
	// Candidates come in wall-clock order and map to instants in the same order, so the first
	// candidate past after is the answer. A candidate may map before after only while after is
	// in the second pass of a repeated hour (its first occurrence already happened).
	for range 10_000 {
		c = t.spec.Next(c)
		if c.IsZero() {
			return time.Time{}
		}
		if at := instant(c, t.loc); at.After(after) {
			return at.UTC()
		}
	}
	return time.Time{}
}

// Upcoming is the next n fire times after after.
func (t Timing) Upcoming(after time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	for len(out) < n {
		next := t.Next(after)
		if next.IsZero() || !next.After(after) {
			break
		}
		after = next
		out = append(out, after)
	}
	return out
}

// wall is t's wall clock in its zone as a zone-less value (UTC stands for "no zone"), where
// robfig/cron's arithmetic has no daylight saving to trip on.
func wall(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// instant is the instant a wall-clock time c (zone-less, see wall) names in loc: its first
// occurrence when the clock passes it twice, the first instant after the gap when the clock
// skips it.
func instant(c time.Time, loc *time.Location) time.Time {
	u := c.Unix() // c read as if it were UTC; the true instant is u minus the offset in force
	var first time.Time
	var offsets [7]int
	for i, d := range []int64{-2 * 86400, -86400, -43200, 0, 43200, 86400, 2 * 86400} {
		_, offsets[i] = time.Unix(u+d, 0).In(loc).Zone()
	}
	for _, off := range offsets {
		at := time.Unix(u-int64(off), int64(c.Nanosecond())).In(loc)
		if wall(at).Equal(c) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	if !first.IsZero() {
		return first
	}
	// In a gap: the transition whose wall clock jumps over c.
	var gapEnd time.Time
	for _, off := range offsets {
		at := time.Unix(u-int64(off), 0).In(loc)
		start, _ := at.ZoneBounds()
		if start.IsZero() {
			continue
		}
		if wall(start.In(loc)).After(c) && wall(start.Add(-time.Second).In(loc)).Before(c) &&
			(gapEnd.IsZero() || start.Before(gapEnd)) {
			gapEnd = start
		}
	}
	if !gapEnd.IsZero() {
		return gapEnd.In(loc)
	}
	return time.Date(c.Year(), c.Month(), c.Day(), c.Hour(), c.Minute(), c.Second(), c.Nanosecond(), loc)
}
