// Package telemetrytest records the spans code under test makes: Record installs a tracer
// provider that keeps every span in memory (no exporter, no goroutine) and turns
// telemetry.Enabled on until the test ends.
//
// Tracing is process-wide, so a test that records must not run in parallel with others
// (no t.Parallel, like t.Setenv); the parallel tests of its package run after it.
package telemetrytest

import (
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
