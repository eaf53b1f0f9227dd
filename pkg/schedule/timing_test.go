package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// matcher is the test's own reading of the few expressions the walk uses: "M H * * *" with
// M and H a number or *, independent of robfig/cron.
type matcher struct{ minute, hour int } // -1: any

func parseMatcher(t *testing.T, expr string) matcher {
	t.Helper()
	f := strings.Fields(expr)
	if len(f) != 5 || f[2] != "*" || f[3] != "*" || f[4] != "*" {
		t.Fatalf("the walk's matcher reads only 'M H * * *', not %q", expr)
	}
	num := func(s string) int {
		if s == "*" {
			return -1
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return matcher{minute: num(f[0]), hour: num(f[1])}
}

func (m matcher) match(wallMinute time.Time) bool {
	return (m.minute < 0 || wallMinute.Minute() == m.minute) && (m.hour < 0 || wallMinute.Hour() == m.hour)
}

// bruteForce walks every UTC minute of [from, to) and decides the fire times by the rule
// itself: an instant fires when its wall clock matches and that wall-clock time was not seen
// before (the first of two occurrences), or when the wall clock jumped over matching times
// since the previous minute (the first instant after the gap), once either way.
func bruteForce(m matcher, loc *time.Location, from, to time.Time) []time.Time {
	var out []time.Time
	// latest is the latest wall clock seen: one at or before it was seen already (the clock
	// went back), one skipped between two minutes was never seen (the clock jumped).
	latest := wall(from.Add(-time.Minute).In(loc))
	for at := from; at.Before(to); at = at.Add(time.Minute) {
		w := wall(at.In(loc))
		if !w.After(latest) {
			continue
		}
		fire := m.match(w)
		for g := latest.Add(time.Minute); g.Before(w); g = g.Add(time.Minute) {
			fire = fire || m.match(g)
		}
		latest = w
		if fire {
			out = append(out, at)
		}
	}
	return out
}

// TestYearWalk: for each zone and expression, walking Next from the start of a year gives
// exactly the fire times the brute-force rule gives, every day of the year.
func TestYearWalk(t *testing.T) {
	t.Parallel()
	zones := []struct {
		name string
		year int // Sao Paulo's last daylight-saving year (transitions at midnight) is 2018-2019
	}{
		{"Europe/Paris", 2026}, {"America/Sao_Paulo", 2018}, {"Australia/Lord_Howe", 2026}, {"Asia/Kolkata", 2026},
	}
	exprs := []string{"0 2 * * *", "30 2 * * *", "0 0 * * *", "30 23 * * *", "0 * * * *", "30 * * * *", "* * * * *"}
	for _, z := range zones {
		for _, expr := range exprs {
			t.Run(fmt.Sprintf("%s/%s", z.name, expr), func(t *testing.T) {
				t.Parallel()
				loc, err := LoadZone(z.name)
				if err != nil {
					t.Fatal(err)
				}
				from := time.Date(z.year, 6, 1, 0, 0, 0, 0, time.UTC)
				to := from.AddDate(1, 0, 0)
				want := bruteForce(parseMatcher(t, expr), loc, from, to)
				tm, err := NewCron(expr, loc, from)
				if err != nil {
					t.Fatal(err)
				}
				var got []time.Time
				for at := tm.Next(from.Add(-time.Nanosecond)); at.Before(to); at = tm.Next(at) {
					if at.IsZero() {
						t.Fatal("Next returned no time")
					}
					got = append(got, at)
				}
				for i := 0; i < max(len(got), len(want)); i++ {
					if i >= len(got) || i >= len(want) || !got[i].Equal(want[i]) {
						var g, w time.Time
						if i < len(got) {
							g = got[i]
						}
						if i < len(want) {
							w = want[i]
						}
						t.Fatalf("fire %d: got %s (%s), want %s (%s); %d vs %d fires", i, g, g.In(loc), w, w.In(loc), len(got), len(want))
					}
				}
				// Daily expressions fire once per calendar day of the zone, every day.
				if strings.Count(expr, "*") == 3 {
					days := map[string]int{}
					for _, at := range got {
						days[at.In(loc).Format("2006-01-02")]++
					}
					for d := from.In(loc).AddDate(0, 0, 1); d.Before(to.In(loc).AddDate(0, 0, -1)); d = d.AddDate(0, 0, 1) {
						if n := days[d.Format("2006-01-02")]; n != 1 {
							t.Fatalf("%s: %d fires on %s, want 1", expr, n, d.Format("2006-01-02"))
						}
					}
				}
			})
		}
	}
}

// TestDaylightSavingExamples pins the rule on the days people ask about.
func TestDaylightSavingExamples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, zone, expr, after string
		want                    []string // RFC 3339 in UTC
	}{
		{"Paris spring forward: 02:30 does not exist, fires at 03:00 CEST", "Europe/Paris", "30 2 * * *", "2026-03-28T12:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		{"Paris fall back: 02:30 occurs twice, fires at the first", "Europe/Paris", "30 2 * * *", "2026-10-24T12:00:00Z",
			[]string{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
		{"Paris fall back, every minute: the repeated hour fires once", "Europe/Paris", "59 1,2 * * *", "2026-10-24T22:00:00Z",
			[]string{"2026-10-24T23:59:00Z", "2026-10-25T00:59:00Z", "2026-10-26T00:59:00Z"}},
		{"Sao Paulo: midnight does not exist on 2018-11-04, fires at 01:00", "America/Sao_Paulo", "0 0 * * *", "2018-11-03T12:00:00Z",
			[]string{"2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z"}},
		{"Lord Howe: 02:15 does not exist (30-minute jump), fires at 02:30", "Australia/Lord_Howe", "15 2 * * *", "2026-10-03T00:00:00Z",
			[]string{"2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"}},
		{"Kolkata: no daylight saving, offset +05:30", "Asia/Kolkata", "0 2 * * *", "2026-01-01T00:00:00Z",
			[]string{"2026-01-01T20:30:00Z", "2026-01-02T20:30:00Z"}},
		{"descriptor @daily in Paris", "Europe/Paris", "@daily", "2026-07-01T00:00:00Z",
			[]string{"2026-07-01T22:00:00Z", "2026-07-02T22:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loc, err := LoadZone(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			after, _ := time.Parse(time.RFC3339, tt.after)
			tm, err := NewCron(tt.expr, loc, after)
			if err != nil {
				t.Fatal(err)
			}
			got := tm.Upcoming(after, len(tt.want))
			for i, w := range tt.want {
				if got[i].Format(time.RFC3339) != w {
					t.Fatalf("fire %d = %s (%s), want %s", i, got[i].Format(time.RFC3339), got[i].In(loc), w)
				}
			}
		})
	}
}

func TestIntervalIsExactUTC(t *testing.T) {
	t.Parallel()
	loc, _ := LoadZone("Europe/Paris")
	anchor := time.Date(2026, 3, 28, 23, 0, 0, 0, time.UTC)
	tm, err := NewInterval(90, anchor, loc)
	if err != nil {
		t.Fatal(err)
	}
	prev := anchor
	for _, at := range tm.Upcoming(anchor.Add(-time.Hour), 10) { // across the spring-forward night
		if d := at.Sub(prev); d != 90*time.Minute {
			t.Fatalf("interval fire %s is %s after %s, want 1h30m", at, d, prev)
		}
		prev = at
	}
	if got := tm.Next(anchor.Add(90 * time.Minute)); !got.Equal(anchor.Add(180 * time.Minute)) {
		t.Fatalf("Next(a fire time) = %s, want the one after", got)
	}
	for _, n := range []int{0, -1, MaxIntervalMinutes + 1} {
		if _, err := NewInterval(n, anchor, loc); err == nil {
			t.Fatalf("interval %d accepted", n)
		}
	}
}

func TestParseCronRefuses(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	bad := []string{"", "   ", "* * * *", "* * * * * *", "61 * * * *", "* 24 * * *", "0 0 30 2 *", "0 0 31 4 *",
		"TZ=Europe/Paris 0 2 * * *", "CRON_TZ=", "TZ=", "CRON_TZ=Nowhere/Land * * * * *", "@every 5m", "@every",
		"@reboot", "@fortnightly", "*/0 * * * *", "0-70 * * * *", "5-1 * * * *", "a b c d e", "0 0 0 * *",
		"0 0 * 13 *", "0 0 * * 8", "1,,2 * * * *", "- * * * *", "*/ * * * *", "0/-1 * * * *", strings.Repeat("1,", 150) + "1 * * * *",
		"\x00 * * * *", "0 0 ? * *x"}
	for _, expr := range bad {
		if _, err := NewCron(expr, time.UTC, now); err == nil {
			t.Errorf("NewCron(%q) accepted", expr)
		}
	}
	for _, expr := range []string{"0 2 * * *", "*/15 * * * 1-5", "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually", "0 0 29 2 *", "0 9 * JAN,FEB MON"} {
		if _, err := NewCron(expr, time.UTC, now); err != nil {
			t.Errorf("NewCron(%q): %v", expr, err)
		}
	}
}

func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"0 2 * * *", "TZ=", "CRON_TZ=x", "*/0 * * * *", "@every 1s", "0-5/2 1,3 * JAN MON-FRI"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		tm, err := NewCron(expr, time.UTC, now)
		if err == nil {
			tm.Upcoming(now, 3) // a parsed expression must also compute without panicking
		}
	})
}

func TestLoadZone(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "UTC", "Europe/Paris", "America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kolkata"} {
		if _, err := LoadZone(ok); err != nil {
			t.Errorf("LoadZone(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"Local", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "Europe/Paris\x00"} {
		if _, err := LoadZone(bad); err == nil {
			t.Errorf("LoadZone(%q) accepted", bad)
		}
	}
}

// TestIntervalFarAhead: a year-long interval listed 1000 times does not overflow.
func TestIntervalFarAhead(t *testing.T) {
	t.Parallel()
	anchor := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tm, err := NewInterval(MaxIntervalMinutes, anchor, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	runs := tm.Upcoming(anchor, 1000)
	if len(runs) != 1000 {
		t.Fatalf("%d fire times, want 1000", len(runs))
	}
	for i := 1; i < len(runs); i++ {
		if runs[i].Sub(runs[i-1]) != MaxIntervalMinutes*time.Minute {
			t.Fatalf("fire %d at %s after %s", i, runs[i], runs[i-1])
		}
	}
}
