// Package otlpsetup sets up OpenTelemetry tracing for a service's main, from the standard
// OTEL_* environment variables: the SDK's tracer provider exporting over OTLP/HTTP. Only the
// mains import it, so the SDK, the exporter and protobuf are linked into the commands, not
// into every package that traces (those use pkg/telemetry).
//
// Tracing is off unless an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): nothing is installed and telemetry.Enabled reports
// false, so a service without a collector pays nothing. OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none turn it off even with an endpoint.
//
// When on, spans go to the endpoint over OTLP/HTTP with protobuf payloads through a batch
// processor; any other OTEL_EXPORTER_OTLP_TRACES_PROTOCOL (or OTEL_EXPORTER_OTLP_PROTOCOL)
// than http/protobuf is refused rather than ignored. The exporter and the SDK read the rest of
// their settings from the environment themselves (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT,
// _COMPRESSION, OTEL_TRACES_SAMPLER and _ARG, OTEL_BSP_*), OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES name the resource (the service's own name by default), and the
// propagator is W3C Trace Context with Baggage. The shutdown Setup returns flushes what is
// buffered: services call it last, after their own shutdown.
package otlpsetup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

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

// protocol is the one OTLP transport the services export with.
const protocol = "http/protobuf"

// checkProtocol refuses an OTLP protocol other than OTLP/HTTP with protobuf: the exporter is
// OTLP/HTTP only, and a collector listening for gRPC (or expecting JSON) would never see a
// span while the service believed it traced. The traces variable wins over the general one,
// as the OpenTelemetry specification says.
func checkProtocol(getenv func(string) string) error {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		v := strings.TrimSpace(getenv(k))
		if v == "" {
			continue
		}
		if v != protocol {
			return fmt.Errorf("tracing: %s=%q is not supported: the services export over OTLP/HTTP with protobuf only (%s, or leave it unset)", k, v, protocol)
		}
		return nil
	}
	return nil
}

// Setup installs the global tracer provider and propagator of service when the process
// environment asks for traces (On), and returns the function that flushes and stops it; with
// tracing off it installs nothing and the shutdown does nothing. log receives the exporter's
// errors (a collector that went away), which never stop the service. An unsupported OTLP
// protocol is an error: the service should not start believing it traces.
func Setup(ctx context.Context, service string, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	if !On(os.Getenv) {
		return noop, nil
	}
	if err := checkProtocol(os.Getenv); err != nil {
		return noop, err
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
	uninstall := telemetry.Install(tp)
	return func(ctx context.Context) error {
		uninstall()
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("tracing: flushing spans: %w", err)
		}
		return nil
	}, nil
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
