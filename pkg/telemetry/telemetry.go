// Package telemetry sets up OpenTelemetry tracing for a service, from the standard OTEL_*
// environment variables, and carries a trace context where the platform stores or sends it:
// as a W3C traceparent/tracestate pair (the outbox row, the job row, the CloudEvents
// traceparent extension).
//
// Tracing is off unless an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): the global tracer provider stays OpenTelemetry's no-op,
// Enabled reports false, and the instrumented code skips its work (no kotel hooks, no spans,
// no header to extract), so a service without a collector pays nothing. OTEL_SDK_DISABLED=true
// or OTEL_TRACES_EXPORTER=none turn it off even with an endpoint.
//
// When on, spans go to the endpoint over OTLP/HTTP (protobuf) through a batch processor; the
// exporter and the SDK read the rest of their settings from the environment themselves
// (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, OTEL_TRACES_SAMPLER and _ARG,
// OTEL_BSP_*), OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the resource (the service's
// own name by default), and the propagator is W3C Trace Context with Baggage. The shutdown
// Setup returns flushes what is buffered: services call it last, after their own shutdown.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName prefixes the instrumentation scope of the platform's own spans.
const ScopeName = "github.com/productsmanager/exportplatform"

var enabled atomic.Bool

// Enabled reports whether Setup installed a tracer provider that exports spans. Code on a hot
// path checks it before doing tracing work of its own.
func Enabled() bool { return enabled.Load() }

// Tracer is the platform's tracer for a component (pkg/relay, exporter/runner, ...): the
// global provider's, so a no-op one while tracing is off.
func Tracer(component string) trace.Tracer {
	return otel.Tracer(ScopeName + "/" + component)
}

// On reports whether the environment asks for traces to be exported (see the package comment).
func On(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")), "none") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs the global tracer provider and propagator of service when the process
// environment asks for traces (On), and returns the function that flushes and stops it; with
// tracing off it installs nothing and the shutdown does nothing. log receives the exporter's
// errors (a collector that went away), which never stop the service.
func Setup(ctx context.Context, service string, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	if !On(os.Getenv) {
		return noop, nil
	}
	// The exporter reads its endpoint, headers, timeout and compression from OTEL_* itself.
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return noop, fmt.Errorf("tracing: creating the OTLP exporter: %w", err)
	}
	// Later options win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the default.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return noop, fmt.Errorf("tracing: resource: %w", err)
	}
	// The sampler (OTEL_TRACES_SAMPLER, default parent-based always-on) and the batch
	// processor's settings (OTEL_BSP_*) come from the environment.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	if log != nil {
		log = log.With("component", "telemetry")
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "err", err) }))
	}
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	enabled.Store(true)
	return func(ctx context.Context) error {
		enabled.Store(false)
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("tracing: flushing spans: %w", err)
		}
		return nil
	}, nil
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

// Main runs a service's run func between Setup and the flush of its spans (within 5 s, a
// collector that went away cannot hold the exit longer), for the command's main: tracing is
// process-wide, set from the process environment, so it is set up there rather than in run,
// which tests call. A failed flush is logged, not returned: the service's own outcome is.
func Main(ctx context.Context, service string, log *slog.Logger, run func() error) error {
	shutdown, err := Setup(ctx, service, log)
	if err != nil {
		return err
	}
	err = run()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := shutdown(sctx); serr != nil {
		log.Warn("flushing traces at exit", "err", serr)
	}
	return err
}
