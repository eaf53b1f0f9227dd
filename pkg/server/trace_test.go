package server

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/productsmanager/exportplatform/pkg/telemetry/telemetrytest"
)

// TestTracedSpans: a server span per request, named by method and route (a ServeMux's
// pattern, or Route for other routers), never by path; none for the ops endpoints or for a
// WebSocket handshake, whose span would last as long as the connection. Not parallel: it
// records spans.
func TestTracedSpans(t *testing.T) {
	rec := telemetrytest.Record(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/things/{id}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/ws", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	served := Traced("svc", mux)
	// A router that does not set r.Pattern (gorilla/mux) names the span itself.
	other := Traced("svc", http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { Route(r, "/other/jobs/{id}") }))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/other/") {
			other.ServeHTTP(w, r)
			return
		}
		served.ServeHTTP(w, r)
	})

	tests := []struct {
		name   string
		method string
		target string
		header http.Header
		want   string // "" : no span
	}{
		{name: "ServeMux pattern", method: http.MethodGet, target: "/api/v1/things/0192d1f0-0000-7000-8000-000000000001",
			want: "GET /api/v1/things/{id}"},
		{name: "route named by the handler", method: http.MethodPost, target: "/other/jobs/42", want: "POST /other/jobs/{id}"},
		{name: "no route", method: http.MethodGet, target: "/nothing/here/7", want: "GET"},
		{name: "unknown method", method: "BREW", target: "/nothing", want: "HTTP"},
		{name: "websocket handshake", method: http.MethodGet, target: "/ws",
			header: http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}},
		{name: "plain request to the websocket path", method: http.MethodGet, target: "/ws", want: "GET /ws"},
		{name: "ops endpoint", method: http.MethodGet, target: "/healthz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, nil)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			names := telemetrytest.ServedSpans(rec, h, req)
			want := []string{}
			if tt.want != "" {
				want = []string{tt.want}
			}
			if !slices.Equal(names, want) && !(len(names) == 0 && len(want) == 0) {
				t.Errorf("spans %q, want %q", names, want)
			}
		})
	}
}
