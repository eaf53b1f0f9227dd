package eventbus

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/telemetry"
	"github.com/productsmanager/exportplatform/pkg/telemetry/telemetrytest"
)

// TestProcessSpanContinuesTheRecordsTrace: the span a record is handled under belongs to the
// record's trace, whichever way the trace came: kotel's receive span, the traceparent header,
// or only the event's ce_traceparent (relayed by a process without tracing).
func TestProcessSpanContinuesTheRecordsTrace(t *testing.T) {
	t.Parallel()
	const (
		fromHeader = "00-11111111111111111111111111111111-1111111111111111-01"
		fromEvent  = "00-22222222222222222222222222222222-2222222222222222-01"
	)
	kotelSpan := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x33}, SpanID: trace.SpanID{0x33}, TraceFlags: trace.FlagsSampled,
	})
	env := events.Envelope{ID: "id", Source: events.Source, Type: events.TypeCompleted, Key: "job", TraceParent: fromEvent}
	tests := []struct {
		name      string
		ctx       context.Context
		header    string
		wantTrace string
	}{
		{name: "kotel receive span", ctx: trace.ContextWithSpanContext(context.Background(), kotelSpan), header: fromHeader,
			wantTrace: kotelSpan.TraceID().String()},
		{name: "traceparent header", header: fromHeader, wantTrace: "11111111111111111111111111111111"},
		// kotel always puts a receive span on r.Context; without the header it is a new root.
		{name: "kotel root span, ce_traceparent only", ctx: trace.ContextWithSpanContext(context.Background(), kotelSpan),
			wantTrace: "22222222222222222222222222222222"},
		{name: "ce_traceparent only", wantTrace: "22222222222222222222222222222222"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := Record(events.TopicEvents, env)
			r.Context = tt.ctx
			if tt.header != "" {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: "traceparent", Value: []byte(tt.header)})
			}
			ctx, span := startProcess(context.Background(), r, env, "group")
			defer span.End()
			// The global provider is the no-op one here: its span carries its parent's context.
			if got := trace.SpanContextFromContext(ctx).TraceID().String(); got != tt.wantTrace {
				t.Errorf("handler's trace %s, want %s", got, tt.wantTrace)
			}
		})
	}
}

// TestProcessSpanOfARecordRelayedUntraced: a record relayed by a process with tracing off has
// no traceparent header, so kotel's receive span (on r.Context, as kotel's fetch hook always
// leaves it) is the root of a new trace: the process span continues the event's
// ce_traceparent instead, and links the receive span. Not parallel: it records spans.
func TestProcessSpanOfARecordRelayedUntraced(t *testing.T) {
	rec := telemetrytest.Record(t)
	const fromEvent = "00-22222222222222222222222222222222-2222222222222222-01"
	env := events.Envelope{ID: "id", Source: events.Source, Type: events.TypeCompleted, Key: "job", TraceParent: fromEvent}
	r := Record(events.TopicEvents, env)
	// kotel's receive span: a root, as no header named a parent.
	rctx, receive := telemetry.Tracer("kotel").Start(context.Background(), "exports.events receive", trace.WithNewRoot())
	receive.End()
	r.Context = rctx

	ctx, span := startProcess(context.Background(), r, env, "group")
	span.End()
	got := rec.Ended()[1]
	if got.Name() != events.TopicEvents+" process" {
		t.Fatalf("span %q", got.Name())
	}
	if tid := got.SpanContext().TraceID().String(); tid != "22222222222222222222222222222222" {
		t.Errorf("process span in trace %s, want the event's 22222222222222222222222222222222", tid)
	}
	if p := got.Parent(); p.SpanID().String() != "2222222222222222" || !p.IsRemote() {
		t.Errorf("process span's parent %s (remote %v), want the event's span 2222222222222222", p.SpanID(), p.IsRemote())
	}
	if links := got.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != receive.SpanContext().SpanID() {
		t.Errorf("process span links %+v, want kotel's receive span %s", links, receive.SpanContext().SpanID())
	}
	if trace.SpanContextFromContext(ctx).SpanID() != got.SpanContext().SpanID() {
		t.Error("the handler's context does not carry the process span")
	}
}

// TestRecordCarriesTraceParent: a relayed event's stored trace context leaves as the
// CloudEvents ce_traceparent header and comes back from the record.
func TestRecordCarriesTraceParent(t *testing.T) {
	t.Parallel()
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	env := events.Envelope{ID: "id", Source: events.Source, Type: events.TypeRequested, Key: "job", TraceParent: tp}
	r := Record(events.TopicRequested, env)
	var header string
	for _, h := range r.Headers {
		if h.Key == "ce_traceparent" {
			header = string(h.Value)
		}
	}
	if header != tp {
		t.Errorf("ce_traceparent header %q, want %q", header, tp)
	}
	back, err := Envelope(r)
	if err != nil {
		t.Fatal(err)
	}
	if back.TraceParent != tp {
		t.Errorf("envelope read back with traceparent %q", back.TraceParent)
	}
}
