package schedstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
	"github.com/productsmanager/exportplatform/pkg/platform"
	"github.com/productsmanager/exportplatform/pkg/platformstore"
	"github.com/productsmanager/exportplatform/pkg/schedstore"
	"github.com/productsmanager/exportplatform/pkg/schedule"
)

func newStore(t *testing.T) (*schedstore.Store, *pgxpool.Pool) {
	t.Helper()
	pool := pgdbtest.NewDatabase(t, "schedstoretest")
	if err := jobstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return schedstore.New(pool), pool
}

func newID() (string, error) {
	id, err := uuid.NewV7()
	return id.String(), err
}

var cfg = schedstore.FireConfig{Grace: 10 * time.Second, Window: 24 * time.Hour, NewID: newID}

func create(t *testing.T, st *schedstore.Store, spec schedule.Spec, now time.Time) schedule.Schedule {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "nightly"
	}
	spec.Enabled = true
	spec.ExportConfig = schedule.ExportConfig{Entity: "products", Format: "csv", Fields: []string{"sku"}}
	if err := spec.Normalize(now); err != nil {
		t.Fatal(err)
	}
	id, _ := newID()
	s, err := schedule.New(id, spec, "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	out, err := st.Create(context.Background(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func countRows(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFireOnceAndJobCarriesTheRun(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 11, 59, 30, 0, time.UTC)
	s := create(t, st, schedule.Spec{CronExpression: "0 14 * * *"}, now) // 14:00 Paris = 12:00 UTC
	if want := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC); !s.NextRunAt.Equal(want) {
		t.Fatalf("next_run_at = %s, want %s", s.NextRunAt, want)
	}
	if f, err := st.FireNext(ctx, now, cfg); err != nil || f != nil {
		t.Fatalf("not due yet: %+v %v", f, err)
	}
	at := time.Date(2026, 6, 1, 12, 0, 0, 200_000_000, time.UTC)
	f, err := st.FireNext(ctx, at, cfg)
	if err != nil || f == nil || len(f.Jobs) != 1 {
		t.Fatalf("fire: %+v %v", f, err)
	}
	job := f.Jobs[0]
	if job.ScheduleID == nil || *job.ScheduleID != s.ID || !job.ScheduledFor.Equal(*s.NextRunAt) || job.RequestedBy != "alice" {
		t.Fatalf("job = %+v", job)
	}
	if f, err := st.FireNext(ctx, at, cfg); err != nil || f != nil {
		t.Fatalf("fired twice: %+v %v", f, err)
	}
	got, _ := st.Get(ctx, s.ID)
	if got.Stats.Runs != 1 || *got.Stats.LastJobID != job.ID || !got.NextRunAt.Equal(s.NextRunAt.Add(24*time.Hour)) {
		t.Fatalf("after the fire: %+v next %s", got.Stats, got.NextRunAt)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM outbox WHERE key = $1`, job.ID); n != 1 {
		t.Fatalf("%d ExportRequested in the outbox", n)
	}
	jobs, _, err := jobstore.New(pool).List(ctx, jobstore.ListFilter{ScheduleID: s.ID, ScheduledFor: *s.NextRunAt})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs by schedule and fire time: %d %v", len(jobs), err)
	}
}

// TestConcurrentFiringNeverDoubles: eight firers racing over 50 every-minute schedules for
// ten simulated minutes make exactly one run per fire time.
func TestConcurrentFiringNeverDoubles(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	start := time.Date(2026, 6, 1, 12, 0, 30, 0, time.UTC)
	for i := range 50 {
		spec := schedule.Spec{CronExpression: "* * * * *", OverlapPolicy: schedule.OverlapQueue}
		if i%2 == 1 {
			spec = schedule.Spec{IntervalMinutes: 1, OverlapPolicy: schedule.OverlapQueue, Timezone: "Asia/Kolkata"}
		}
		create(t, st, spec, start)
	}
	for minute := 1; minute <= 10; minute++ {
		now := start.Add(time.Duration(minute) * time.Minute)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					f, err := st.FireNext(ctx, now, cfg)
					if err != nil {
						t.Error(err)
						return
					}
					if f == nil {
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	if n := countRows(t, pool, `SELECT count(*) FROM schedule_runs`); n != 500 {
		t.Fatalf("%d runs, want 500", n)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM (SELECT DISTINCT schedule_id, scheduled_for FROM jobs) d`); n != 500 {
		t.Fatalf("%d distinct fire times with a job, want 500", n)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM jobs`); n != 500 {
		t.Fatalf("%d jobs, want 500", n)
	}
}

func TestRetryCountsOneFire(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	s := create(t, st, schedule.Spec{CronExpression: "@yearly", MaxRetries: 2, RetryDelaySeconds: 30}, now)
	job, err := st.RunNow(ctx, s.ID, now, mustID(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	failAt := now.Add(time.Minute)
	m, err := st.JobChanged(ctx, schedstore.JobChange{JobID: job.ID, Status: schedule.JobFailed, At: failAt, Message: "boom"}, failAt)
	if err != nil || m == nil || m.Run.Status != schedule.RunRetrying {
		t.Fatalf("first failure: %+v %v", m, err)
	}
	if m, _ := st.JobChanged(ctx, schedstore.JobChange{JobID: job.ID, Status: schedule.JobFailed, At: failAt}, failAt); m != nil {
		t.Fatal("a repeated failure moved the run again")
	}
	if r, _ := st.RetryNext(ctx, failAt.Add(29*time.Second), newID); r != nil {
		t.Fatal("retried before retry_delay_seconds")
	}
	r, err := st.RetryNext(ctx, failAt.Add(30*time.Second), newID)
	if err != nil || r == nil || r.Job == nil || r.Run.Attempt != 2 {
		t.Fatalf("retry: %+v %v", r, err)
	}
	if !r.Job.ScheduledFor.Equal(*job.ScheduledFor) {
		t.Fatal("the retry is not of the same fire time")
	}
	m, err = st.JobChanged(ctx, schedstore.JobChange{JobID: r.Job.ID, Status: schedule.JobCompleted, At: failAt.Add(time.Minute)}, failAt)
	if err != nil || m == nil || m.Outcome != schedule.OutcomeSuccess {
		t.Fatalf("completion: %+v %v", m, err)
	}
	st.JobChanged(ctx, schedstore.JobChange{JobID: r.Job.ID, Status: schedule.JobCompleted, At: failAt.Add(time.Minute)}, failAt)
	got, _ := st.Get(ctx, s.ID)
	if got.Stats.Runs != 1 || got.Stats.Successes != 1 || got.Stats.Failures != 0 || *got.Stats.LastStatus != schedule.RunCompleted || *got.Stats.LastJobID != r.Job.ID {
		t.Fatalf("stats = %+v", got.Stats)
	}
	runs, _, err := st.Runs(ctx, got, schedstore.RunFilter{})
	if err != nil || len(runs) != 1 || len(runs[0].JobIDs) != 2 || runs[0].Trigger != schedule.TriggerManual {
		t.Fatalf("run log = %+v %v", runs, err)
	}
}

func TestAllAttemptsFail(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	s := create(t, st, schedule.Spec{CronExpression: "@yearly", MaxRetries: 1}, now)
	job, _ := st.RunNow(ctx, s.ID, now, mustID(t), nil)
	st.JobChanged(ctx, schedstore.JobChange{JobID: job.ID, Status: schedule.JobFailed, At: now}, now)
	r, err := st.RetryNext(ctx, now.Add(5*time.Minute), newID)
	if err != nil || r == nil || r.Job == nil {
		t.Fatalf("retry: %+v %v", r, err)
	}
	st.JobChanged(ctx, schedstore.JobChange{JobID: r.Job.ID, Status: schedule.JobFailed, At: now}, now)
	if r, _ := st.RetryNext(ctx, now.Add(time.Hour), newID); r != nil {
		t.Fatal("retried beyond max_retries")
	}
	got, _ := st.Get(ctx, s.ID)
	if got.Stats.Runs != 1 || got.Stats.Failures != 1 || got.Stats.ConsecutiveFailures != 1 || got.Stats.Successes != 0 {
		t.Fatalf("stats = %+v", got.Stats)
	}
}

func TestMisfireAfterDowntime(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	created := time.Date(2026, 6, 1, 12, 0, 30, 0, time.UTC)
	once := create(t, st, schedule.Spec{CronExpression: "* * * * *"}, created)
	skip := create(t, st, schedule.Spec{CronExpression: "* * * * *", MisfirePolicy: schedule.MisfireSkip}, created)
	back := created.Add(3*time.Minute + 20*time.Second) // down from 12:00:30 to 12:03:50
	for {
		f, err := st.FireNext(ctx, back, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if f == nil {
			break
		}
	}
	for _, c := range []struct {
		s             schedule.Schedule
		jobs, missing int
	}{{once, 1, 2}, {skip, 0, 3}} {
		if n := countRows(t, pool, `SELECT count(*) FROM jobs WHERE schedule_id = $1`, c.s.ID); n != c.jobs {
			t.Errorf("%s: %d jobs, want %d", c.s.MisfirePolicy, n, c.jobs)
		}
		if n := countRows(t, pool, `SELECT count(*) FROM schedule_runs WHERE schedule_id = $1 AND status = 'missed'`, c.s.ID); n != c.missing {
			t.Errorf("%s: %d missed, want %d", c.s.MisfirePolicy, n, c.missing)
		}
	}
	if n := countRows(t, pool, `SELECT count(*) FROM schedule_runs WHERE schedule_id = $1 AND trigger = 'catch_up'
		AND scheduled_for = '2026-06-01T12:03:00Z'`, once.ID); n != 1 {
		t.Error("the catch-up run is not the latest missed fire time")
	}
}

func TestToggleAndBadStoredExpression(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 30, 0, time.UTC)
	s := create(t, st, schedule.Spec{CronExpression: "* * * * *"}, now)
	off, err := st.Change(ctx, s.ID, nil, func(s *schedule.Schedule) ([]schedule.Fire, error) { return s.SetEnabled(false, now, 24*time.Hour) })
	if err != nil || off.Enabled || off.NextRunAt != nil {
		t.Fatalf("toggle off: %+v %v", off, err)
	}
	if f, _ := st.FireNext(ctx, now.Add(5*time.Minute), cfg); f != nil {
		t.Fatal("a disabled schedule fired")
	}
	later := now.Add(5*time.Minute + 10*time.Second)
	on, err := st.Change(ctx, s.ID, nil, func(s *schedule.Schedule) ([]schedule.Fire, error) { return s.SetEnabled(true, later, 24*time.Hour) })
	if err != nil || !on.Enabled || !on.NextRunAt.Equal(time.Date(2026, 6, 1, 12, 6, 0, 0, time.UTC)) {
		t.Fatalf("toggle on: %+v %v", on, err)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM schedule_runs WHERE schedule_id = $1 AND status = 'disabled'`, s.ID); n != 5 {
		t.Fatalf("%d fire times logged disabled, want 5", n)
	}
	// An expression no API would accept, stored by hand: the scheduler disables it, no panic.
	if _, err := pool.Exec(ctx, `UPDATE schedules SET cron_expression = 'TZ=', next_run_at = $2 WHERE id = $1`, s.ID, now); err != nil {
		t.Fatal(err)
	}
	f, err := st.FireNext(ctx, later, cfg)
	if err != nil || f == nil || f.Disabled == nil {
		t.Fatalf("bad stored expression: %+v %v", f, err)
	}
	got, _ := st.Get(ctx, s.ID)
	if got.Enabled || got.LastError == "" {
		t.Fatalf("after a bad expression: %+v", got)
	}
}

func mustID(t *testing.T) string {
	id, err := newID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestOverlapCountsARunNotFoldedYet: a job that just failed, before its event is folded,
// still keeps its run going: the next fire time under overlap skip is skipped, not started
// beside the retry to come.
func TestOverlapCountsARunNotFoldedYet(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 30, 0, time.UTC)
	s := create(t, st, schedule.Spec{CronExpression: "* * * * *", MaxRetries: 1}, now)
	f, err := st.FireNext(ctx, now.Add(30*time.Second), cfg)
	if err != nil || f == nil || len(f.Jobs) != 1 {
		t.Fatalf("first fire: %+v %v", f, err)
	}
	// The exporter ended the job; the scheduler has not folded the event yet.
	if _, err := pool.Exec(ctx, `UPDATE jobs SET status = 'failed' WHERE id = $1`, f.Jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	f, err = st.FireNext(ctx, now.Add(90*time.Second), cfg)
	if err != nil || f == nil || len(f.Fires) != 1 || f.Fires[0].Status != schedule.RunSkippedOverlap {
		t.Fatalf("second fire: %+v %v, want skipped_overlap", f, err)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM jobs WHERE schedule_id = $1`, s.ID); n != 1 {
		t.Fatalf("%d jobs, want 1", n)
	}
}

// TestChangesWriteTheirAudit: each change given an audit event writes it to the outbox in its
// own transaction, completed with the schedule's details; a change refused by its function
// writes nothing.
func TestChangesWriteTheirAudit(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 30, 0, time.UTC)
	s := create(t, st, schedule.Spec{CronExpression: "@daily"}, now)
	req := func(action string) *events.Accessed {
		return &events.Accessed{ID: action, Action: action, ActorID: "bob", ClientIP: "192.0.2.7", At: now}
	}
	audits := func() []string {
		rows, err := pool.Query(ctx, `SELECT d->>'action' FROM (SELECT id, convert_from(data, 'UTF8')::jsonb AS d
			FROM outbox WHERE key = $1) o WHERE d->>'actor_id' = 'bob' AND d->>'owner' = 'alice'
			AND d->>'entity' = 'products' AND d->>'client_ip' = '192.0.2.7' ORDER BY id`, "access:"+s.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if _, err := st.Change(ctx, s.ID, req(events.ActionScheduleToggled), func(s *schedule.Schedule) ([]schedule.Fire, error) {
		return s.SetEnabled(false, now, 24*time.Hour)
	}); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused")
	if _, err := st.Change(ctx, s.ID, req(events.ActionScheduleUpdated), func(*schedule.Schedule) ([]schedule.Fire, error) {
		return nil, refused
	}); !errors.Is(err, refused) {
		t.Fatalf("refused change: %v", err)
	}
	if _, err := st.RunNow(ctx, s.ID, now, mustID(t), req(events.ActionScheduleRun)); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, s.ID, req(events.ActionScheduleDeleted)); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, s.ID, req(events.ActionScheduleDeleted)); !errors.Is(err, schedstore.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	want := []string{events.ActionScheduleToggled, events.ActionScheduleRun, events.ActionScheduleDeleted}
	if got := audits(); !slices.Equal(got, want) {
		t.Errorf("audited %v, want %v", got, want)
	}
}

// TestRunsMergeTheirPlatform: a run of a schedule tied to a platform exports the schedule's
// configuration over the platform's defaults as they are when it fires, and its job records
// the merged configuration and the platform.
func TestRunsMergeTheirPlatform(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 30, 0, time.UTC)
	plats := platformstore.New(pool)
	pid, _ := newID()
	spec := platform.Spec{Name: "Google", Type: platform.GoogleShopping, DefaultConfig: export.Request{Compression: "gzip"}}
	if err := spec.Normalize(); err != nil {
		t.Fatal(err)
	}
	p, err := plats.Create(ctx, platform.New(pid, spec, "alice", now), nil)
	if err != nil {
		t.Fatal(err)
	}
	sid, _ := newID()
	sspec := schedule.Spec{Name: "feed", CronExpression: "@daily", Enabled: true, PlatformID: &p.ID,
		ExportConfig: schedule.ExportConfig{Fields: []string{"sku", "name", "price"}, Headers: map[string]string{"price": "prix"}}}
	if err := sspec.Normalize(now); err != nil {
		t.Fatal(err)
	}
	s, err := schedule.New(sid, sspec, "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	job, err := st.RunNow(ctx, s.ID, now, mustID(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if job.Entity != "products" || job.Format != "csv" || job.Compression != "gzip" || job.Headers["sku"] != "id" ||
		job.Headers["price"] != "prix" || job.Options["delimiter"] != "tab" || !slices.Equal(job.Fields, []string{"sku", "name", "price"}) ||
		job.PlatformID == nil || *job.PlatformID != p.ID {
		t.Errorf("job of the first run %+v", job)
	}
	// The platform changes: the next run takes it.
	if _, err := plats.Change(ctx, p.ID, nil, func(p *platform.Platform) error { p.DefaultConfig.Compression = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	job, err = st.RunNow(ctx, s.ID, now.Add(time.Minute), mustID(t), nil)
	if err != nil || job.Compression != "" {
		t.Errorf("job of the second run: compression %q %v", job.Compression, err)
	}
}

// TestListPages: pages of 2 walk every enabled schedule of its owner once, newest first, with
// ties on created_at broken by id; the filters hold on every page; a forged cursor is refused.
func TestListPages(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var want []string
	for i := range 7 {
		at := now.Add(time.Duration(i/2) * time.Minute) // pairs share a created_at
		s := create(t, st, schedule.Spec{Name: fmt.Sprintf("s%d", i), CronExpression: "0 3 * * *"}, at)
		if i%3 == 2 { // off: filtered out
			if _, err := st.Change(ctx, s.ID, nil, func(s *schedule.Schedule) ([]schedule.Fire, error) {
				return s.SetEnabled(false, at, time.Hour)
			}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want = append(want, s.ID)
	}
	slices.SortFunc(want, func(a, b string) int { return strings.Compare(b, a) }) // UUIDv7: id order is creation order
	on := true
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		page, next, err := st.List(ctx, schedstore.ListFilter{Enabled: &on, Owner: "alice", Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 2 || pages > 10 {
			t.Fatalf("page %d holds %d schedules", pages, len(page))
		}
		for _, s := range page {
			if !s.Enabled || s.Owner != "alice" {
				t.Errorf("%s on the list: enabled %v, owner %q", s.ID, s.Enabled, s.Owner)
			}
			got = append(got, s.ID)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged %v, want %v", got, want)
	}
	if page, _, err := st.List(ctx, schedstore.ListFilter{Owner: "bob"}); err != nil || len(page) != 0 {
		t.Errorf("bob's list %v %v, want none", page, err)
	}
	if _, _, err := st.List(ctx, schedstore.ListFilter{Cursor: "not-a-cursor"}); !errors.Is(err, jobstore.ErrBadCursor) {
		t.Errorf("forged cursor: %v, want ErrBadCursor", err)
	}
}
