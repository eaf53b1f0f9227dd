package ws

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsStartAtZero: the connection limit is exported as set, and every refusal reason
// is at 0 before the first refusal, so that increase() over the alerts' window counts that
// first refusal (a series born at 1 has no earlier sample to increase from).
func TestMetricsStartAtZero(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.SetMaxClients(500)
	want := `
# HELP progress_hub_ws_max_clients WebSocket clients this hub holds at once (HUB_MAX_CONNECTIONS); more are refused with 503.
# TYPE progress_hub_ws_max_clients gauge
progress_hub_ws_max_clients 500
# HELP progress_hub_ws_rejected_total WebSocket handshakes refused, by reason.
# TYPE progress_hub_ws_rejected_total counter
progress_hub_ws_rejected_total{reason="bad_handshake"} 0
progress_hub_ws_rejected_total{reason="method"} 0
progress_hub_ws_rejected_total{reason="origin"} 0
progress_hub_ws_rejected_total{reason="permission_denied"} 0
progress_hub_ws_rejected_total{reason="shutting_down"} 0
progress_hub_ws_rejected_total{reason="too_many_connections"} 0
progress_hub_ws_rejected_total{reason="too_many_user_connections"} 0
progress_hub_ws_rejected_total{reason="unauthenticated"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"progress_hub_ws_max_clients", "progress_hub_ws_rejected_total"); err != nil {
		t.Error(err)
	}
}

// rejectedFromStart fails the test when the server refused for a reason not in rejectReasons:
// that reason's series would be born at its first refusal, which increase() cannot see.
func rejectedFromStart(t *testing.T, m *Metrics) {
	t.Helper()
	if n := testutil.CollectAndCount(m.rejected); n != len(rejectReasons) {
		t.Errorf("progress_hub_ws_rejected_total has %d series after refusals, want the %d of rejectReasons: a reason is missing there",
			n, len(rejectReasons))
	}
}
