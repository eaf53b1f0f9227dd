package server

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// Traced wraps a service's HTTP handler in otelhttp when tracing is on (pkg/telemetry): each
// request gets a server span, continuing the caller's trace when its request carries a W3C
// traceparent, and handlers' spans and events belong to it. Left out: the ops endpoints
// (/healthz, /readyz, /metrics: probes and scrapes would drown the traces) and upgrades
// (WebSockets: a span would last as long as the connection, hours, and say nothing the hub's
// own spans do not). With tracing off it returns h itself.
//
// Spans are named by method and route, never by path (ids would make every name unique):
// "GET /api/v1/exports/{id}". otelhttp names a span before routing; a net/http ServeMux sets
// r.Pattern, read once the handler returns; a router that does not (gorilla/mux) names it
// with Route. A request no route matched keeps the method alone.
func Traced(service string, h http.Handler) http.Handler {
	if !telemetry.Enabled() {
		return h
	}
	return otelhttp.NewHandler(h, service, otelhttp.WithFilter(traced),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return spanName(r, r.Pattern) }))
}

// traced reports whether r gets a server span.
func traced(r *http.Request) bool {
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		return false
	}
	return !upgrade(r)
}

// upgrade reports whether r asks to switch protocols (a WebSocket handshake).
func upgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// Route names r's server span after the route that matched it (a path template such as
// "/api/v1/exports/{id}"), and sets its http.route: for routers that do not set r.Pattern
// (gorilla/mux), from a middleware run once the route is known. A no-op without a span.
func Route(r *http.Request, route string) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	span.SetName(spanName(r, route))
	span.SetAttributes(attribute.String("http.route", routeOf(route)))
}

// spanName is "<method> <route>", or the method alone without a route; a method HTTP does not
// define is named HTTP (as OpenTelemetry's conventions say), so no client can mint names.
func spanName(r *http.Request, route string) string {
	method := r.Method
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
	default:
		method = "HTTP"
	}
	if route = routeOf(route); route == "" {
		return method
	}
	return method + " " + route
}

// routeOf is the path of a route: a ServeMux pattern's method and host left out
// ("GET example.com/x/{id}" → "/x/{id}").
func routeOf(pattern string) string {
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		return pattern[i:]
	}
	return ""
}
