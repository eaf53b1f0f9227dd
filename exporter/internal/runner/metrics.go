package runner

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the runner's Prometheus metrics.
type Metrics struct {
	running  prometheus.Gauge
	jobs     *prometheus.CounterVec
	rows     prometheus.Counter
	duration prometheus.Histogram
	rescued  prometheus.Counter
}

// NewMetrics registers the runner's metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "exporter_running_jobs", Help: "Jobs running in this instance."}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exporter_job_attempts_total", Help: "Job attempts by outcome.",
		}, []string{"outcome"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{Name: "exporter_rows_total", Help: "Rows written to completed exports."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "exporter_job_duration_seconds", Help: "Duration of completed exports.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 14),
		}),
		rescued: prometheus.NewCounter(prometheus.CounterOpts{Name: "exporter_jobs_rescued_total",
			Help: "Jobs this instance took over from a worker whose lease lapsed (killed, hung or cut off)."}),
	}
	if reg != nil {
		reg.MustRegister(m.running, m.jobs, m.rows, m.duration, m.rescued)
	}
	return m
}
