package audit

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/events"
)

const (
	outcomeRecorded  = "recorded"
	outcomeDuplicate = "duplicate"
	outcomeIgnored   = "ignored"
	outcomeMalformed = "malformed"
)

// Metrics counts what the sink did with each event.
type Metrics struct {
	events *prometheus.CounterVec
}

// NewMetrics registers the sink's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "audit_events_total",
		Help: "Events seen by the audit sink, by ce_type and outcome (recorded, duplicate, ignored, malformed).",
	}, []string{"ce_type", "outcome"})}
	// A job's end starts at 0 for every outcome, so that increase() over ExportFailureRateHigh's
	// window counts the first failure after a restart (a series born at 1 has no earlier
	// sample to increase from).
	for _, t := range []events.Type{events.TypeCompleted, events.TypeFailed, events.TypeCancelled} {
		for _, o := range []string{outcomeRecorded, outcomeDuplicate, outcomeIgnored, outcomeMalformed} {
			m.events.WithLabelValues(string(t), o)
		}
	}
	reg.MustRegister(m.events)
	return m
}

func (m *Metrics) observe(t events.Type, outcome string) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(typeLabel(t), outcome).Inc()
}

// typeLabel bounds the label's values: ce_type comes from the wire.
func typeLabel(t events.Type) string {
	switch t {
	case events.TypeRequested, events.TypeStarted, events.TypeProgress,
		events.TypeCompleted, events.TypeFailed, events.TypeCancelled:
		return string(t)
	}
	return "other"
}
