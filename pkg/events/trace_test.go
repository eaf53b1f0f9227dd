package events_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// TestTraceParentExtension: the CloudEvents tracing extension travels as ce_traceparent and
// ce_tracestate and reads back; an event made outside a trace has neither header.
func TestTraceParentExtension(t *testing.T) {
	t.Parallel()
	const tp, ts = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "vendor=x"
	env, err := events.Wrap(events.ExportCancelled{JobID: "0192d1f0-0000-7000-8000-000000000001", CancelledAt: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range env.Headers() {
		if h.Key == events.HeaderTraceParent || h.Key == events.HeaderTraceState {
			t.Errorf("untraced event has header %s", h.Key)
		}
	}
	tests := []struct {
		name           string
		parent, state  string
		wantHeaderKeys []string
	}{
		{name: "traceparent only", parent: tp, wantHeaderKeys: []string{"ce_traceparent"}},
		{name: "with tracestate", parent: tp, state: ts, wantHeaderKeys: []string{"ce_traceparent", "ce_tracestate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := env
			e.TraceParent, e.TraceState = tt.parent, tt.state
			hs := e.Headers()
			var keys []string
			for _, h := range hs {
				switch h.Key {
				case "ce_traceparent":
					keys = append(keys, h.Key)
					if !bytes.Equal(h.Value, []byte(tt.parent)) {
						t.Errorf("ce_traceparent = %q", h.Value)
					}
				case "ce_tracestate":
					keys = append(keys, h.Key)
				}
			}
			if len(keys) != len(tt.wantHeaderKeys) {
				t.Fatalf("tracing headers %v, want %v", keys, tt.wantHeaderKeys)
			}
			back, err := events.Parse([]byte(e.Key), hs, e.Data)
			if err != nil {
				t.Fatal(err)
			}
			if back.TraceParent != tt.parent || back.TraceState != tt.state {
				t.Errorf("parsed trace %q %q, want %q %q", back.TraceParent, back.TraceState, tt.parent, tt.state)
			}
		})
	}
}
