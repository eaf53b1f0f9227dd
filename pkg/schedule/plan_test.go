package schedule

import (
	"testing"
	"time"
)

func everyMinute(t *testing.T) Timing {
	t.Helper()
	tm, err := NewCron("* * * * *", time.UTC, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func statuses(fires []Fire) []RunStatus {
	var out []RunStatus
	for _, f := range fires {
		out = append(out, f.Status)
	}
	return out
}

func TestPlan(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		nextRunAt time.Time
		now       time.Time
		misfire   MisfirePolicy
		overlap   OverlapPolicy
		busy      bool
		want      []RunStatus
		trigger   Trigger // of the last fire
		next      time.Time
	}{
		{"on time", base, base.Add(300 * time.Millisecond), MisfireRunOnce, OverlapSkip, false,
			[]RunStatus{RunQueued}, TriggerTimetable, base.Add(time.Minute)},
		{"on time under skip", base, base.Add(2 * time.Second), MisfireSkip, OverlapSkip, false,
			[]RunStatus{RunQueued}, TriggerTimetable, base.Add(time.Minute)},
		{"down 3 minutes, run_once: one catch-up, the rest missed", base, base.Add(3*time.Minute + 20*time.Second), MisfireRunOnce, OverlapSkip, false,
			[]RunStatus{RunMissed, RunMissed, RunMissed, RunQueued}, TriggerCatchUp, base.Add(4 * time.Minute)},
		{"down 3 minutes, skip: all missed", base, base.Add(3*time.Minute + 20*time.Second), MisfireSkip, OverlapSkip, false,
			[]RunStatus{RunMissed, RunMissed, RunMissed, RunMissed}, TriggerTimetable, base.Add(4 * time.Minute)},
		{"previous run going, overlap skip", base, base.Add(time.Second), MisfireRunOnce, OverlapSkip, true,
			[]RunStatus{RunSkippedOverlap}, TriggerTimetable, base.Add(time.Minute)},
		{"previous run going, overlap queue", base, base.Add(time.Second), MisfireRunOnce, OverlapQueue, true,
			[]RunStatus{RunQueued}, TriggerTimetable, base.Add(time.Minute)},
		{"not due", base, base.Add(-time.Second), MisfireRunOnce, OverlapSkip, false,
			nil, "", base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fires, next, dropped := Plan(PlanInput{Timing: everyMinute(t), NextRunAt: tt.nextRunAt, Now: tt.now,
				Misfire: tt.misfire, Overlap: tt.overlap, Busy: tt.busy, Grace: 10 * time.Second, Window: 24 * time.Hour})
			if got := statuses(fires); len(got) != len(tt.want) || (len(got) > 0 && !equal(got, tt.want)) {
				t.Fatalf("statuses = %v, want %v", got, tt.want)
			}
			if len(fires) > 0 && fires[len(fires)-1].Trigger != tt.trigger {
				t.Fatalf("trigger = %s, want %s", fires[len(fires)-1].Trigger, tt.trigger)
			}
			if !next.Equal(tt.next) || dropped != 0 {
				t.Fatalf("next = %s dropped %d, want %s 0", next, dropped, tt.next)
			}
			for i, f := range fires {
				if !f.At.Equal(tt.nextRunAt.Add(time.Duration(i) * time.Minute)) {
					t.Fatalf("fire %d at %s", i, f.At)
				}
			}
		})
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPlanWindow(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	// Down for two days: only the last 24 h are logged, the day before is counted as dropped.
	fires, next, dropped := Plan(PlanInput{Timing: everyMinute(t), NextRunAt: base, Now: base.Add(48*time.Hour + 30*time.Second),
		Misfire: MisfireRunOnce, Overlap: OverlapSkip, Grace: 10 * time.Second, Window: 24 * time.Hour})
	if len(fires) != 24*60 || dropped != 24*60+1 {
		t.Fatalf("%d fires logged, %d dropped; want %d and %d", len(fires), dropped, 24*60, 24*60+1)
	}
	if f := fires[len(fires)-1]; f.Status != RunQueued || f.Trigger != TriggerCatchUp || !f.At.Equal(base.Add(48*time.Hour)) {
		t.Fatalf("last fire %+v", f)
	}
	if !next.Equal(base.Add(48*time.Hour + time.Minute)) {
		t.Fatalf("next %s", next)
	}
	// A year of downtime is not enumerated minute by minute.
	_, _, dropped = Plan(PlanInput{Timing: everyMinute(t), NextRunAt: base, Now: base.AddDate(1, 0, 0),
		Misfire: MisfireRunOnce, Grace: 10 * time.Second, Window: 24 * time.Hour, MaxLogged: 5000})
	if dropped != -1 {
		t.Fatalf("dropped = %d, want -1 (too many to count)", dropped)
	}
}

func TestRunTransitions(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	p := RetryPolicy{MaxRetries: 1, Delay: 30 * time.Second}
	r := Run{Status: RunQueued, Attempt: 1}
	r, o, ch := r.JobChanged(1, JobRunning, at, "", p)
	if !ch || r.Status != RunRunning || o != OutcomeNone {
		t.Fatalf("started: %+v %v %v", r, o, ch)
	}
	r, o, ch = r.JobChanged(1, JobFailed, at, "boom", p)
	if !ch || r.Status != RunRetrying || o != OutcomeNone || !r.RetryAt.Equal(at.Add(30*time.Second)) {
		t.Fatalf("failed once: %+v %v %v", r, o, ch)
	}
	if _, _, ch := r.JobChanged(1, JobFailed, at, "boom", p); ch {
		t.Fatal("a repeated failure changed the run")
	}
	if _, _, start := r.RetryDue(at.Add(29*time.Second), true); start {
		t.Fatal("retried before its time")
	}
	r, o, start := r.RetryDue(at.Add(30*time.Second), true)
	if !start || r.Attempt != 2 || r.Status != RunQueued || o != OutcomeNone {
		t.Fatalf("retry: %+v", r)
	}
	if _, _, ch := r.JobChanged(1, JobCompleted, at, "", p); ch {
		t.Fatal("an older attempt's completion changed the run")
	}
	failed, o, ch := r.JobChanged(2, JobFailed, at, "boom", p)
	if !ch || failed.Status != RunFailed || o != OutcomeFailure {
		t.Fatalf("last attempt failed: %+v %v", failed, o)
	}
	done, o, ch := r.JobChanged(2, JobCompleted, at, "", p)
	if !ch || done.Status != RunCompleted || o != OutcomeSuccess {
		t.Fatalf("completed: %+v %v", done, o)
	}
	if _, o, ch := done.JobChanged(2, JobCompleted, at, "", p); ch || o != OutcomeNone {
		t.Fatal("a repeated completion counted twice")
	}
	retrying := Run{Status: RunRetrying, Attempt: 1, RetryAt: &at}
	if r, o, start := retrying.RetryDue(at, false); start || r.Status != RunFailed || o != OutcomeFailure {
		t.Fatalf("retry of a disabled schedule: %+v %v %v", r, o, start)
	}
}
