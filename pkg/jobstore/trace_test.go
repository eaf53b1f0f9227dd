package jobstore_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// TestOutboxKeepsTraceContext: the trace context of the change that wrote an event is stored
// with its outbox row and handed to the relay, and the job keeps its request's; a change made
// outside a trace stores none.
func TestOutboxKeepsTraceContext(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c},
		SpanID:     trace.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31},
		TraceFlags: trace.FlagsSampled,
	})
	const want = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	traced := trace.ContextWithSpanContext(context.Background(), sc)
	req := request(t)
	if _, err := s.Create(traced, req); err != nil {
		t.Fatal(err)
	}
	// Cancelled outside any trace: its ExportCancelled has no trace context.
	if _, err := s.Cancel(context.Background(), req.JobID, "alice"); err != nil {
		t.Fatal(err)
	}

	tp, ts, err := s.TraceContext(context.Background(), req.JobID)
	if err != nil || tp != want || ts != "" {
		t.Errorf("TraceContext = %q, %q, %v; want %q", tp, ts, err, want)
	}
	pending, err := s.Pending(context.Background(), req.JobID)
	if err != nil {
		t.Fatal(err)
	}
	byType := map[events.Type]string{}
	for _, m := range pending {
		byType[m.Envelope.Type] = m.Envelope.TraceParent
	}
	if byType[events.TypeRequested] != want || byType[events.TypeCancelled] != "" || len(byType) != 2 {
		t.Errorf("pending events' traceparent: %v; want the request's on ExportRequested only", byType)
	}

	var relayed []jobstore.OutboxMessage
	if _, err := s.RelayOutbox(context.Background(), 100, func(_ context.Context, m []jobstore.OutboxMessage) []error {
		relayed = append(relayed, m...)
		return make([]error, len(m))
	}); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, m := range relayed {
		if m.Envelope.Key == req.JobID && m.Envelope.Type == events.TypeRequested {
			found = true
			if m.Envelope.TraceParent != want {
				t.Errorf("relayed ExportRequested traceparent %q, want %q", m.Envelope.TraceParent, want)
			}
		}
	}
	if !found {
		t.Error("the relay was not handed the ExportRequested")
	}
	if _, _, err := s.TraceContext(context.Background(), "0192d1f0-0000-7000-8000-00000000ffff"); err != jobstore.ErrNotFound {
		t.Errorf("TraceContext of an unknown job: %v, want ErrNotFound", err)
	}
}
