package otlpsetup_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/productsmanager/exportplatform/pkg/telemetry"
	"github.com/productsmanager/exportplatform/pkg/telemetry/otlpsetup"
)

// clearEnv unsets every variable that would turn tracing on or off.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		t.Setenv(k, "")
	}
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
}

func TestOn(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{name: "nothing set", env: nil, want: false},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, want: true},
		{name: "traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, want: true},
		{name: "sdk disabled", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}, want: false},
		{name: "exporter none", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, want: false},
		{name: "sdk not disabled", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "false"}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := otlpsetup.On(func(k string) string { return tt.env[k] }); got != tt.want {
				t.Errorf("On = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSetupOffWithoutEndpoint: without an endpoint nothing is installed: spans do not record
// and nothing is exported.
func TestSetupOffWithoutEndpoint(t *testing.T) {
	clearEnv(t)
	shutdown, err := otlpsetup.Setup(context.Background(), "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if telemetry.Enabled() {
		t.Error("Enabled() with no OTEL endpoint set")
	}
	_, span := telemetry.Tracer("test").Start(context.Background(), "nothing")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("a span records with tracing off: %+v", span.SpanContext())
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSetupExports: with OTEL_EXPORTER_OTLP_ENDPOINT a span reaches the OTLP/HTTP endpoint by
// the time shutdown returns, under the service's name.
func TestSetupExports(t *testing.T) {
	clearEnv(t)
	var mu sync.Mutex
	var got []*collectortrace.ExportTraceServiceRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req := &collectortrace.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Write(b)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)

	shutdown, err := otlpsetup.Setup(context.Background(), "svc-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !telemetry.Enabled() {
		t.Fatal("Enabled() false with an endpoint set")
	}
	ctx, span := telemetry.Tracer("test").Start(context.Background(), "hello")
	want := span.SpanContext()
	// The stored form continues the same trace.
	tp, _ := telemetry.TraceParent(ctx)
	back := trace.SpanContextFromContext(telemetry.ContextWithTraceParent(context.Background(), tp, ""))
	if back.TraceID() != want.TraceID() || back.SpanID() != want.SpanID() || !back.IsRemote() {
		t.Errorf("traceparent %q read back as %+v, want %+v", tp, back, want)
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if telemetry.Enabled() {
		t.Error("still Enabled() after shutdown")
	}
	mu.Lock()
	defer mu.Unlock()
	var found bool
	for _, req := range got {
		for _, rs := range req.ResourceSpans {
			var service string
			for _, a := range rs.Resource.GetAttributes() {
				if a.Key == "service.name" {
					service = a.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					if s.Name == "hello" && trace.TraceID(s.TraceId) == want.TraceID() {
						found = true
						if service != "svc-test" {
							t.Errorf("service.name = %q, want svc-test", service)
						}
					}
				}
			}
		}
	}
	if !found {
		t.Errorf("span not exported; the endpoint got %d request(s)", len(got))
	}
}

// TestSetupRefusesOtherProtocols: the services export over OTLP/HTTP with protobuf only, so
// Setup refuses gRPC or JSON rather than sending protobuf to a collector that expects them;
// the traces variable wins over the general one.
func TestSetupRefusesOtherProtocols(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{name: "unset", env: nil},
		{name: "http/protobuf", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}},
		{name: "traces http/protobuf", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}},
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, wantErr: `OTEL_EXPORTER_OTLP_PROTOCOL="grpc" is not supported`},
		{name: "http/json", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: `OTEL_EXPORTER_OTLP_PROTOCOL="http/json" is not supported`},
		{name: "traces grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			wantErr: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc" is not supported`},
		{name: "traces variable wins", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			// Nothing listens there: spans would only be lost, and none is made.
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			shutdown, err := otlpsetup.Setup(context.Background(), "svc", nil)
			if err == nil {
				defer shutdown(context.Background())
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Setup: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Setup error %v, want one saying %s", err, tt.wantErr)
			case tt.wantErr != "" && telemetry.Enabled():
				t.Error("tracing enabled although Setup failed")
			}
		})
	}
}
