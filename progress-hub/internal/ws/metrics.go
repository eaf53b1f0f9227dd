package ws

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the hub's Prometheus metrics.
type Metrics struct {
	clients    prometheus.Gauge
	maxClients prometheus.Gauge
	pushed     prometheus.Counter
	dropped    prometheus.Counter
	rejected   *prometheus.CounterVec
}

// rejectReasons are the reason labels of progress_hub_ws_rejected_total (see Server.refuse).
var rejectReasons = []string{"method", "origin", "unauthenticated", "permission_denied", "shutting_down",
	"too_many_connections", "too_many_user_connections", "bad_handshake"}

// NewMetrics registers the hub's metrics with reg (nil: not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "progress_hub_ws_clients",
			Help: "WebSocket clients connected.",
		}),
		maxClients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "progress_hub_ws_max_clients",
			Help: "WebSocket clients this hub holds at once (HUB_MAX_CONNECTIONS); more are refused with 503.",
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
	// Every reason starts at 0: a series born at its first refusal has no earlier sample, so
	// increase() would miss that refusal (HubConnectionsRefused, on a hub's first full moment).
	for _, r := range rejectReasons {
		m.rejected.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.clients, m.maxClients, m.pushed, m.dropped, m.rejected)
	}
	return m
}

// SetMaxClients exports the hub's connection limit (ws.Options.MaxConns), set once at start,
// so that alerts compare progress_hub_ws_clients with the limit the hub really has.
func (m *Metrics) SetMaxClients(n int) { m.maxClients.Set(float64(n)) }
