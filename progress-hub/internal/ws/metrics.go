package ws

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the hub's Prometheus metrics.
type Metrics struct {
	clients  prometheus.Gauge
	pushed   prometheus.Counter
	dropped  prometheus.Counter
	rejected *prometheus.CounterVec
}

// NewMetrics registers the hub's metrics with reg (nil: not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "progress_hub_ws_clients",
			Help: "WebSocket clients connected.",
		}),
		pushed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "progress_hub_ws_messages_pushed_total",
			Help: "Job updates queued to WebSocket clients (one per client).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "progress_hub_ws_clients_dropped_total",
			Help: "WebSocket clients disconnected because their send buffer was full.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "progress_hub_ws_rejected_total",
			Help: "WebSocket handshakes refused, by reason.",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.clients, m.pushed, m.dropped, m.rejected)
	}
	return m
}
