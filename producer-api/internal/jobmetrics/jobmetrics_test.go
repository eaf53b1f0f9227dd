package jobmetrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/jobstore/jobstoretest"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
	"github.com/productsmanager/exportplatform/producer-api/internal/jobmetrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const help = `# HELP export_jobs Export jobs that have not ended, by status (queued, running).
# TYPE export_jobs gauge
# HELP export_jobs_lease_expired Running jobs whose worker's lease lapsed and that no exporter has rescued yet.
# TYPE export_jobs_lease_expired gauge
# HELP export_jobs_oldest_age_seconds By status, the longest any job went unchanged: queued, its wait since queued or handed back; running, its time since its claim, start or last progress report (0 when none).
# TYPE export_jobs_oldest_age_seconds gauge
# HELP export_jobs_stats_errors_total Scrapes that could not read the job queue's state.
# TYPE export_jobs_stats_errors_total counter
`

// TestCollector: on a real exports database, each scrape reads the queue as it is now.
func TestCollector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgdbtest.NewDatabase(t, "jobmetrics")
	if err := jobstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	store := jobstore.New(pool)
	clock := time.Now().UTC().Truncate(time.Second)
	store.SetClock(func() time.Time { return clock })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(jobmetrics.New(store))
	scrape := func(want string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(help+want)); err != nil {
			t.Error(err)
		}
	}
	scrape(`export_jobs{status="queued"} 0
export_jobs{status="running"} 0
export_jobs_lease_expired 0
export_jobs_oldest_age_seconds{status="queued"} 0
export_jobs_oldest_age_seconds{status="running"} 0
export_jobs_stats_errors_total 0
`)
	a, b := jobstoretest.Request(t, clock.Add(-90*time.Second)), jobstoretest.Request(t, clock.Add(-30*time.Second))
	if _, err := store.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Claim(ctx, a.JobID, jobstore.ClaimOptions{Owner: "w", TTL: time.Minute, MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(2 * time.Minute)
	scrape(`export_jobs{status="queued"} 1
export_jobs{status="running"} 1
export_jobs_lease_expired 1
export_jobs_oldest_age_seconds{status="queued"} 150
export_jobs_oldest_age_seconds{status="running"} 120
export_jobs_stats_errors_total 0
`)
}

type failing struct{}

func (failing) ActiveStats(context.Context) (jobstore.ActiveStats, error) {
	return jobstore.ActiveStats{}, errors.New("database away")
}

// TestCollectorError: a failed read exports no queue figures, counts an error, and does not
// fail the scrape.
func TestCollectorError(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(jobmetrics.New(failing{}))
	for range 2 {
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	want := `# HELP export_jobs_stats_errors_total Scrapes that could not read the job queue's state.
# TYPE export_jobs_stats_errors_total counter
export_jobs_stats_errors_total 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
