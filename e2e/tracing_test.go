package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// otlpSpan is one span as the receiver got it.
type otlpSpan struct {
	service, name, traceID string
	kind                   tracepb.Span_SpanKind
	attrs                  map[string]string
}

// otlpReceiver is an OTLP/HTTP traces endpoint (POST /v1/traces, protobuf), the peer the
// services' real OTLP exporters send to.
type otlpReceiver struct {
	url   string
	mu    sync.Mutex
	spans []otlpSpan
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
			http.NotFound(w, req)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ex collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &ex); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(&ex)
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *otlpReceiver) add(ex *collectortrace.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range ex.ResourceSpans {
		service := attrMap(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				r.spans = append(r.spans, otlpSpan{service: service, name: sp.Name, kind: sp.Kind,
					traceID: hex.EncodeToString(sp.TraceId), attrs: attrMap(sp.Attributes)})
			}
		}
	}
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.Key] = fmt.Sprint(v.IntValue)
		case *commonpb.AnyValue_BoolValue:
			m[kv.Key] = fmt.Sprint(v.BoolValue)
		}
	}
	return m
}

// trace returns the spans received so far of one trace.
func (r *otlpReceiver) trace(id string) []otlpSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []otlpSpan
	for _, sp := range r.spans {
		if sp.traceID == id {
			out = append(out, sp)
		}
	}
	return out
}

// stackCmdEnv runs dev/stack.sh with args and extra environment (NAME=value), which a service
// it starts inherits.
func (s stack) stackCmdEnv(t *testing.T, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(s.root, "dev/stack.sh")}, args...)...)
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s dev/stack.sh %s: %v\n%s", strings.Join(env, " "), strings.Join(args, " "), err, out)
	}
	t.Logf("%s dev/stack.sh %s:\n%s", strings.Join(env, " "), strings.Join(args, " "), out)
}

// tracedServices are restarted with tracing on: the four a job crosses (the API, the
// exporter, the hub, and audit-sink reading its outcome) and the scheduler, whose relay may
// be the one that relays the job's events (one relay at a time, in any process).
var tracedServices = []string{"producer-api", "progress-hub", "exporter", "audit-sink", "scheduler"}

// TestTracingAcrossServices: with the services exporting to an OTLP receiver, one export's
// spans, from the POST through the outbox relay, the exporter's catalog query, writer and S3
// upload, the ExportCompleted's produce, to the hub's WebSocket push and audit-sink's
// processing, share the trace the POST started; the records carry it as traceparent and as
// the CloudEvents ce_traceparent. The services run with tracing off otherwise: the test turns
// it on by restarting them, and restarts them as they were when it ends.
func TestTracingAcrossServices(t *testing.T) {
	s := getStack(t)
	recv := newOTLPReceiver(t)
	t.Cleanup(func() {
		for _, svc := range tracedServices {
			s.stackCmd(t, "restart", svc)
		}
	})
	env := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + recv.url, "OTEL_BSP_SCHEDULE_DELAY=200",
		"OTEL_TRACES_SAMPLER=parentbased_always_on", "OTEL_SDK_DISABLED=false", "OTEL_TRACES_EXPORTER=otlp",
		"OTEL_SERVICE_NAME=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="}
	for _, svc := range tracedServices {
		s.stackCmdEnv(t, env, "restart", svc)
	}

	token := s.writer(t)
	ws := s.dialWS(t, token)
	if err := ws.WriteJSON(map[string]any{"type": "subscribe", "all": true}); err != nil {
		t.Fatal(err)
	}

	// The POST starts the trace: its caller's traceparent is continued by otelhttp.
	traceID := randomHex(t, 16)
	body, _ := json.Marshal(map[string]any{"fields": []string{"sku", "name", "price"}, "filters": map[string]any{"ids": []int{1, 2, 3}}})
	req, err := http.NewRequest(http.MethodPost, s.api+"/api/v1/exports/csv/products", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+randomHex(t, 8)+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var job acceptedJob
	err = json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted || job.JobID == "" {
		t.Fatalf("POST: %d %+v %v", resp.StatusCode, job, err)
	}

	// The WebSocket client sees the job complete.
	ws.SetReadDeadline(time.Now().Add(2 * time.Minute))
	for done := false; !done; {
		var msg struct {
			Type   string `json:"type"`
			TaskID string `json:"task_id"`
		}
		if err := readPush(ws, &msg); err != nil {
			t.Fatalf("waiting for job %s to complete on the WebSocket: %v", job.JobID, err)
		}
		switch {
		case msg.TaskID != job.JobID:
		case msg.Type == "completed":
			done = true
		case msg.Type == "failed" || msg.Type == "cancelled":
			t.Fatalf("job %s ended %s", job.JobID, msg.Type)
		}
	}

	// The ExportCompleted on Kafka names the trace as the CloudEvents extension.
	completed := s.findEvent(t, job.JobID, events.TypeCompleted, time.Minute)
	if !strings.Contains(completed.TraceParent, traceID) {
		t.Errorf("ExportCompleted ce_traceparent %q, want trace %s", completed.TraceParent, traceID)
	}

	// Every expected span arrives, in that one trace.
	type want struct {
		what    string
		service string // "" : any (the relay runs in whichever process holds its lock)
		match   func(otlpSpan) bool
	}
	named := func(name string) func(otlpSpan) bool { return func(sp otlpSpan) bool { return sp.name == name } }
	wants := []want{
		{"the POST's server span", "producer-api", func(sp otlpSpan) bool {
			return sp.kind == tracepb.Span_SPAN_KIND_SERVER && sp.attrs["http.request.method"] == http.MethodPost &&
				sp.name == "POST /api/v1/exports/{format}/{entity}" // by route, never by path
		}},
		{"the relay's publish of ExportRequested", "", named("outbox relay " + string(events.TypeRequested))},
		{"kotel's produce to exports.requested", "", named(events.TopicRequested + " publish")},
		{"the exporter's processing of ExportRequested", "exporter", named(events.TopicRequested + " process")},
		{"the export job", "exporter", func(sp otlpSpan) bool { return sp.name == "export job" && sp.attrs["job_id"] == job.JobID }},
		{"the catalog query", "exporter", named("catalog query products")},
		{"the writer", "exporter", named("export write csv")},
		{"the S3 upload", "exporter", named("s3 upload")},
		{"the relay's publish of ExportCompleted", "", named("outbox relay " + string(events.TypeCompleted))},
		{"kotel's produce to exports.events", "", named(events.TopicEvents + " publish")},
		{"the hub's push of the completion", "progress-hub", func(sp otlpSpan) bool {
			return sp.name == "websocket push" && sp.attrs["job_id"] == job.JobID && sp.attrs["job.status"] == "completed"
		}},
		{"audit-sink's processing of an event", "audit-sink", named(events.TopicEvents + " process")},
	}
	missing := func() []string {
		spans := recv.trace(traceID)
		var out []string
		for _, w := range wants {
			if !slices.ContainsFunc(spans, func(sp otlpSpan) bool { return (w.service == "" || sp.service == w.service) && w.match(sp) }) {
				out = append(out, w.what)
			}
		}
		return out
	}
	deadline := time.Now().Add(time.Minute)
	for m := missing(); len(m) > 0; m = missing() {
		if time.Now().After(deadline) {
			var got []string
			for _, sp := range recv.trace(traceID) {
				got = append(got, sp.service+": "+sp.name)
			}
			t.Fatalf("trace %s lacks %s; it has %d span(s):\n%s", traceID, strings.Join(m, ", "), len(got), strings.Join(got, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	services := map[string]bool{}
	for _, sp := range recv.trace(traceID) {
		services[sp.service] = true
	}
	for _, svc := range []string{"producer-api", "exporter", "progress-hub", "audit-sink"} {
		if !services[svc] {
			t.Errorf("no span of %s in the trace (services: %v)", svc, services)
		}
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
