package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/server"
	"github.com/productsmanager/exportplatform/pkg/telemetry/telemetrytest"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
)

// TestServerSpansNamedByRoute: behind server.Traced, as run.go serves it, a request's span is
// named by its method and mux route (the variables' patterns left out), never by its path;
// the WebSocket proxy's handshake has none (it would last as long as the connection). Not
// parallel: it records spans.
func TestServerSpansNamedByRoute(t *testing.T) {
	rec := telemetrytest.Record(t)
	h := server.Traced("producer-api", api.NewServer(testDeps(t, prometheus.NewRegistry())))
	const id = "0192d1f0-0000-7000-8000-000000000001"
	tests := []struct {
		method, target string
		header         http.Header
		want           string
	}{
		{method: http.MethodGet, target: "/api/v1/exports/" + id, want: "GET /api/v1/exports/{id}"},
		{method: http.MethodDelete, target: "/api/v1/exports/" + id, want: "DELETE /api/v1/exports/{id}"},
		{method: http.MethodPost, target: "/api/v1/exports/" + id + "/cancel", want: "POST /api/v1/exports/{id}/cancel"},
		{method: http.MethodPost, target: "/api/v1/exports/csv/products", want: "POST /api/v1/exports/{format}/{entity}"},
		{method: http.MethodGet, target: "/api/v1/exports/schedules/" + id + "/runs", want: "GET /api/v1/exports/schedules/{id}/runs"},
		{method: http.MethodGet, target: "/no/such/path/" + id, want: "GET"},
		{method: http.MethodGet, target: "/api/v1/exports/ws", header: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.target, nil)
		for k, v := range tt.header {
			req.Header[k] = v
		}
		names := telemetrytest.ServedSpans(rec, h, req)
		switch {
		case tt.want == "" && len(names) != 0:
			t.Errorf("%s %s: spans %q, want none", tt.method, tt.target, names)
		case tt.want != "" && (len(names) != 1 || names[0] != tt.want):
			t.Errorf("%s %s: spans %q, want %q", tt.method, tt.target, names, tt.want)
		}
	}
}
