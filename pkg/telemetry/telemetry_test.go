package telemetry_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/telemetry"
	"github.com/productsmanager/exportplatform/pkg/telemetry/telemetrytest"
)

// TestStartOffIsFree: with tracing off Start hands back ctx itself and a span that records
// nothing, so callers end it unconditionally.
func TestStartOffIsFree(t *testing.T) {
	t.Parallel()
	ctx := context.WithValue(context.Background(), struct{}{}, 1)
	got, span := telemetry.Start(ctx, "test", "nothing")
	defer telemetry.End(span, errors.New("ignored"))
	if got != ctx {
		t.Error("Start with tracing off changed the context")
	}
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("a span records with tracing off: %+v", span.SpanContext())
	}
}

// TestStartEnd: with tracing on Start makes a child of ctx's span, End ends it, failed with
// the error it is given. Not parallel: it turns tracing on for the process.
func TestStartEnd(t *testing.T) {
	rec := telemetrytest.Record(t)
	ctx, parent := telemetry.Tracer("test").Start(context.Background(), "parent")
	_, ok := telemetry.Start(ctx, "test", "ok")
	telemetry.End(ok, nil)
	_, failed := telemetry.Start(ctx, "test", "failed")
	telemetry.End(failed, errors.New("boom"))
	parent.End()

	ended := rec.Ended()
	if len(ended) != 3 {
		t.Fatalf("%d spans ended, want 3", len(ended))
	}
	for _, s := range ended[:2] {
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %s is not a child of the context's span", s.Name())
		}
	}
	if s := ended[0]; s.Name() != "ok" || s.Status().Code != codes.Unset {
		t.Errorf("span %s status %v, want ok and unset", s.Name(), s.Status())
	}
	if s := ended[1]; s.Name() != "failed" || s.Status().Code != codes.Error || s.Status().Description != "boom" || len(s.Events()) != 1 {
		t.Errorf("span %s status %v with %d events, want failed, error boom and the error recorded", s.Name(), s.Status(), len(s.Events()))
	}
	if got := ended[0].InstrumentationScope().Name; got != telemetry.ScopeName+"/test" {
		t.Errorf("scope %q", got)
	}
}

func TestTraceParentRoundTrip(t *testing.T) {
	t.Parallel()
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x0a}, SpanID: trace.SpanID{0x0b}, TraceFlags: trace.FlagsSampled,
	})
	tp, _ := telemetry.TraceParent(trace.ContextWithSpanContext(context.Background(), sc))
	back := trace.SpanContextFromContext(telemetry.ContextWithTraceParent(context.Background(), tp, ""))
	if back.TraceID() != sc.TraceID() || back.SpanID() != sc.SpanID() || !back.IsRemote() || !back.IsSampled() {
		t.Errorf("traceparent %q read back as %+v, want %+v", tp, back, sc)
	}
}

func TestTraceParentWithoutSpan(t *testing.T) {
	t.Parallel()
	if tp, ts := telemetry.TraceParent(context.Background()); tp != "" || ts != "" {
		t.Errorf("TraceParent of a context without span = %q, %q", tp, ts)
	}
	ctx := telemetry.ContextWithTraceParent(context.Background(), "not-a-traceparent", "")
	if trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("a malformed traceparent gave a valid span context")
	}
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	sc := trace.SpanContextFromContext(telemetry.ContextWithTraceParent(context.Background(), tp, "vendor=x"))
	if sc.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || sc.SpanID().String() != "b7ad6b7169203331" ||
		!sc.IsSampled() || sc.TraceState().Get("vendor") != "x" {
		t.Errorf("traceparent %s read as %+v", tp, sc)
	}
}
