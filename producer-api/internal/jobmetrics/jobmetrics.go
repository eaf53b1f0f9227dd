// Package jobmetrics exports the state of the job queue, read from the job store at each
// scrape: jobs queued and running, how long the oldest of each went unchanged, and running jobs
// whose lease lapsed without a rescue. producer-api registers it (it owns the jobs); every
// replica reports the same figures, so dashboards and alerts aggregate them with max.
//
// A failed read exports none of these and counts export_jobs_stats_errors_total: the database
// being away must not fail the whole scrape (the other metrics say why it is away).
package jobmetrics

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// Stats is the job store's side (*jobstore.Store implements it).
type Stats interface {
	ActiveStats(ctx context.Context) (jobstore.ActiveStats, error)
}

// Collector is the Prometheus collector of the queue.
type Collector struct {
	stats   Stats
	timeout time.Duration
	errors  atomic.Uint64
}

// New reads stats at each scrape, within 2 s.
func New(stats Stats) *Collector { return &Collector{stats: stats, timeout: 2 * time.Second} }

var (
	jobsDesc = prometheus.NewDesc("export_jobs",
		"Export jobs that have not ended, by status (queued, running).", []string{"status"}, nil)
	oldestDesc = prometheus.NewDesc("export_jobs_oldest_age_seconds",
		"By status, the longest any job went unchanged: queued, its wait since queued or handed back; running, its time since its claim, start or last progress report (0 when none).",
		[]string{"status"}, nil)
	expiredDesc = prometheus.NewDesc("export_jobs_lease_expired",
		"Running jobs whose worker's lease lapsed and that no exporter has rescued yet.", nil, nil)
	errorsDesc = prometheus.NewDesc("export_jobs_stats_errors_total",
		"Scrapes that could not read the job queue's state.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsDesc
	ch <- oldestDesc
	ch <- expiredDesc
	ch <- errorsDesc
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	st, err := c.stats.ActiveStats(ctx)
	if err != nil {
		c.errors.Add(1)
	} else {
		for _, s := range []jobstore.Status{jobstore.StatusQueued, jobstore.StatusRunning} {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(st.Count[s]), string(s))
			ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, st.Oldest[s].Seconds(), string(s))
		}
		ch <- prometheus.MustNewConstMetric(expiredDesc, prometheus.GaugeValue, float64(st.LeaseExpired))
	}
	ch <- prometheus.MustNewConstMetric(errorsDesc, prometheus.CounterValue, float64(c.errors.Load()))
}
