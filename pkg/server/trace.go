package server

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// Traced wraps a service's HTTP handler in otelhttp when tracing is on (pkg/telemetry): each
// request gets a server span, continuing the caller's trace when its request carries a W3C
// traceparent, and handlers' spans and events belong to it. The ops endpoints (/healthz,
// /readyz, /metrics) are left out: probes and scrapes would drown the traces. With tracing
// off it returns h itself.
func Traced(service string, h http.Handler) http.Handler {
	if !telemetry.Enabled() {
		return h
	}
	return otelhttp.NewHandler(h, service, otelhttp.WithFilter(func(r *http.Request) bool {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
			return false
		}
		return true
	}))
}
