// Package telemetrytest records the spans code under test makes: Record installs a tracer
// provider that keeps every span in memory (no exporter, no goroutine) and turns
// telemetry.Enabled on until the test ends.
//
// Tracing is process-wide, so a test that records must not run in parallel with others
// (no t.Parallel, like t.Setenv); the parallel tests of its package run after it.
package telemetrytest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// Record turns tracing on for the rest of t with a provider that records every span, and
// returns the recorder: Ended() are the finished spans, Started() all of them.
func Record(t testing.TB) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	uninstall := telemetry.Install(tp)
	t.Cleanup(func() {
		uninstall()
		_ = tp.Shutdown(t.Context())
	})
	return rec
}

// ServedSpans serves req with h and returns the names of the spans that ended meanwhile.
func ServedSpans(rec *tracetest.SpanRecorder, h http.Handler, req *http.Request) []string {
	before := len(rec.Ended())
	h.ServeHTTP(httptest.NewRecorder(), req)
	var names []string
	for _, s := range rec.Ended()[before:] {
		names = append(names, s.Name())
	}
	return names
}
