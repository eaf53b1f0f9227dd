// Package telemetry is what instrumented code needs of OpenTelemetry tracing, and no more: the
// platform's tracers, spans that cost nothing while tracing is off, and the trace context
// where the platform stores or sends it: a W3C traceparent/tracestate pair (the outbox row,
// the job row, the CloudEvents traceparent extension).
//
// It imports only the OpenTelemetry API (go.opentelemetry.io/otel, otel/trace,
// otel/propagation), so the storage and messaging packages that use it do not link the SDK,
// the OTLP exporter or protobuf. The mains set tracing up with pkg/telemetry/otlpsetup, which
// calls Install; until then (and without an OTLP endpoint) the global tracer provider stays
// OpenTelemetry's no-op, Enabled reports false, and instrumented code skips its work (no
// kotel hooks, no spans, no header to extract).
package telemetry

import (
	"context"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName prefixes the instrumentation scope of the platform's own spans.
const ScopeName = "github.com/productsmanager/exportplatform"

var enabled atomic.Bool

// Enabled reports whether a tracer provider that records spans is installed (Install). Code
// on a hot path checks it before doing tracing work of its own.
func Enabled() bool { return enabled.Load() }

// Install makes tp the global tracer provider, W3C Trace Context with Baggage the global
// propagator, and turns Enabled on; the returned func turns it off and puts back the no-op
// provider. pkg/telemetry/otlpsetup calls it with the exporting provider; tests with a
// recording one (telemetrytest), never in parallel with other tests: it is process-wide.
func Install(tp trace.TracerProvider) (uninstall func()) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	enabled.Store(true)
	return func() {
		enabled.Store(false)
		otel.SetTracerProvider(noop.NewTracerProvider())
	}
}

// Tracer is the platform's tracer for a component (pkg/relay, exporter/runner, ...): the
// global provider's, so a no-op one while tracing is off.
func Tracer(component string) trace.Tracer {
	return otel.Tracer(ScopeName + "/" + component)
}

// Start starts the span name of component's tracer, a child of ctx's span, when tracing is
// on; with it off it returns ctx itself and a no-op span, so callers end it unconditionally.
func Start(ctx context.Context, component, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !Enabled() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return Tracer(component).Start(ctx, name, opts...)
}

// End ends span, marking it failed with err when err is not nil.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// TraceParent returns the W3C traceparent and tracestate of ctx's span, or "" when ctx has no
// valid span context (tracing off, or no span): what the outbox and the job row store.
func TraceParent(ctx context.Context) (traceparent, tracestate string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"], c["tracestate"]
}

// ContextWithTraceParent returns ctx carrying the remote span context a stored traceparent
// (and tracestate) names, so that spans started from it continue that trace; ctx unchanged
// when traceparent is empty or malformed.
func ContextWithTraceParent(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	c := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		c["tracestate"] = tracestate
	}
	return propagation.TraceContext{}.Extract(ctx, c)
}
