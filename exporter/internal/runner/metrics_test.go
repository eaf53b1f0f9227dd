package runner_test

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/productsmanager/exportplatform/exporter/internal/runner"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
)

// TestRunCountsRescues: an attempt whose claim took the job over from a lapsed lease counts as
// a rescue, whatever its outcome; one claimed from the queue does not.
func TestRunCountsRescues(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	e := newEnv()
	reg := prometheus.NewPedanticRegistry()
	r := runner.New(e.cfg, db, objectstore.NewMemory(), e.jobs, slog.New(slog.NewTextHandler(t.Output(), nil)), runner.NewMetrics(reg))
	invalid := func(j *events.ExportRequested) { j.Fields = []string{"colour"} } // fails at once
	rescues := func() float64 {
		t.Helper()
		n, err := testutil.GatherAndCount(reg, "exporter_jobs_rescued_total")
		if err != nil || n != 1 {
			t.Fatalf("exporter_jobs_rescued_total: %d series (%v)", n, err)
		}
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "exporter_jobs_rescued_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return -1
	}

	j, lease := e.newJob(t, 1, invalid)
	r.Run(t.Context(), j, lease)
	if n := rescues(); n != 0 {
		t.Errorf("after a claim from the queue: %v rescues, want 0", n)
	}
	j, lease = e.newJob(t, 1, invalid)
	lease.Rescued = true
	r.Run(t.Context(), j, lease)
	if n := rescues(); n != 1 {
		t.Errorf("after a rescue: %v rescues, want 1", n)
	}
}
