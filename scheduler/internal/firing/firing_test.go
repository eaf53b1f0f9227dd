package firing_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
	"github.com/productsmanager/exportplatform/pkg/schedstore"
	"github.com/productsmanager/exportplatform/pkg/schedule"
	"github.com/productsmanager/exportplatform/scheduler/internal/firing"
)

func newID() (string, error) {
	id, err := uuid.NewV7()
	return id.String(), err
}

// newStore is the schedules' repository on a throwaway, migrated database.
func newStore(t *testing.T) (*schedstore.Store, *pgxpool.Pool) {
	t.Helper()
	pool := pgdbtest.NewDatabase(t, "firingtest")
	if err := jobstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return schedstore.New(pool), pool
}

// create saves an enabled schedule of spec (a products CSV, in UTC unless spec says) made at
// now, and returns its id.
func create(t *testing.T, st *schedstore.Store, spec schedule.Spec, now time.Time) string {
	t.Helper()
	spec.Name, spec.Enabled = "s", true
	if spec.Timezone == "" {
		spec.Timezone = "UTC"
	}
	spec.ExportConfig = schedule.ExportConfig{Entity: "products", Format: "csv"}
	if err := spec.Normalize(now); err != nil {
		t.Fatal(err)
	}
	id, _ := newID()
	s, err := schedule.New(id, spec, "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(context.Background(), s, nil); err != nil {
		t.Fatal(err)
	}
	return id
}

// refuseFor makes inserts into table fail for one schedule (a trigger), the way a broken
// schedule would fail every time.
func refuseFor(t *testing.T, pool *pgxpool.Pool, table, scheduleID string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.schedule_id = '`+scheduleID+`' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON `+table+` FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
		t.Fatal(err)
	}
}

// TestTickWithAnInjectedClock walks a clock over an every-minute schedule: one fire per
// minute, a three-minute gap caught up once, each counted in the metrics.
func TestTickWithAnInjectedClock(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 10, 25, 0, 58, 30, 0, time.UTC)
	create(t, st, schedule.Spec{CronExpression: "* * * * *", OverlapPolicy: schedule.OverlapQueue}, now)
	reg := prometheus.NewRegistry()
	m := firing.NewMetrics(reg)
	clock := now
	loop := firing.New(st, firing.Config{Grace: 10 * time.Second, Window: time.Hour, Poll: time.Second, Workers: 4},
		func() time.Time { return clock }, newID, slog.New(slog.DiscardHandler), m)
	tick := func(at time.Time) {
		t.Helper()
		clock = at
		if err := loop.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tick(time.Date(2026, 10, 25, 0, 59, 0, 100, time.UTC))
	tick(time.Date(2026, 10, 25, 1, 0, 0, 100, time.UTC))
	tick(time.Date(2026, 10, 25, 1, 0, 30, 0, time.UTC)) // nothing due
	tick(time.Date(2026, 10, 25, 1, 4, 20, 0, time.UTC)) // 01:01..01:04 due: 3 missed, 1 catch-up
	fires := testutil.ToFloat64(m.Fires().WithLabelValues("timetable"))
	catchUp := testutil.ToFloat64(m.Fires().WithLabelValues("catch_up"))
	if fires != 2 || catchUp != 1 || testutil.ToFloat64(m.Misfires()) != 3 {
		t.Fatalf("fires %v, catch-up %v, misfires %v; want 2, 1, 3", fires, catchUp, testutil.ToFloat64(m.Misfires()))
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d jobs (%v), want 3", n, err)
	}
	next, err := st.NextWake(ctx)
	if err != nil || !next.Equal(time.Date(2026, 10, 25, 1, 5, 0, 0, time.UTC)) {
		t.Fatalf("next wake %s %v", next, err)
	}
}

// TestOneBrokenScheduleDoesNotHoldUpTheOthers: a schedule whose decision fails every time
// (here a trigger refuses its run rows) is reported, and the schedules due after it still fire.
func TestOneBrokenScheduleDoesNotHoldUpTheOthers(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 30, 0, time.UTC)
	ids := []string{ // the broken one is due first
		create(t, st, schedule.Spec{CronExpression: "1 * * * *"}, now),
		create(t, st, schedule.Spec{CronExpression: "2 * * * *"}, now.Add(time.Second)),
	}
	refuseFor(t, pool, "schedule_runs", ids[0])
	clock := time.Date(2026, 6, 1, 13, 2, 10, 0, time.UTC)
	loop := firing.New(st, firing.Config{Grace: time.Minute, Window: time.Hour, Poll: time.Second, Workers: 4},
		func() time.Time { return clock }, newID, slog.New(slog.DiscardHandler), firing.NewMetrics(nil))
	err := loop.Tick(ctx)
	if err == nil || !strings.Contains(err.Error(), ids[0]) {
		t.Fatalf("Tick = %v, want the broken schedule's error", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE schedule_id = $1`, ids[1]).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the healthy schedule has %d jobs (%v), want 1", n, err)
	}
}

// TestOneBrokenRetryDoesNotHoldUpTheOthers: a retry that cannot be started (a trigger refuses
// its job's link) is reported, and the other due retries still start.
func TestOneBrokenRetryDoesNotHoldUpTheOthers(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 2 {
		id := create(t, st, schedule.Spec{CronExpression: "@yearly", MaxRetries: 1, RetryDelaySeconds: 10}, now)
		jobID, _ := newID()
		job, err := st.RunNow(ctx, id, now.Add(time.Duration(i)*time.Second), jobID, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The broken one fails first, so its retry is due first.
		at := now.Add(time.Duration(i) * time.Minute)
		if _, err := st.JobChanged(ctx, schedstore.JobChange{JobID: job.ID, Status: schedule.JobFailed, At: at}, at); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	refuseFor(t, pool, "schedule_attempts", ids[0])
	loop := firing.New(st, firing.Config{Grace: time.Minute, Window: time.Hour, Poll: time.Second, Workers: 4},
		func() time.Time { return now.Add(time.Hour) }, newID, slog.New(slog.DiscardHandler), firing.NewMetrics(nil))
	if err := loop.Tick(ctx); err == nil || !strings.Contains(err.Error(), ids[0]) {
		t.Fatalf("Tick = %v, want the broken retry's error", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schedule_attempts WHERE schedule_id = $1`, ids[1]).Scan(&n); err != nil || n != 2 {
		t.Fatalf("the healthy run has %d attempts (%v), want 2", n, err)
	}
}
