// Package audittest holds the in-memory twin of audit.Recorder and the conformance suite every
// Recorder must pass (the pgx one in internal/store runs it against PostgreSQL).
package audittest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/audit-sink/internal/audit"
)

// Memory is an in-memory audit.Recorder.
type Memory struct {
	mu      sync.Mutex
	records []audit.Record
	seen    map[string]bool
}

// Record keeps rec unless its EventID was seen.
func (m *Memory) Record(ctx context.Context, rec audit.Record) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[rec.EventID] {
		return false, nil
	}
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	m.seen[rec.EventID] = true
	m.records = append(m.records, rec)
	return true, nil
}

// Records is a copy of what was kept, in order.
func (m *Memory) Records() []audit.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]audit.Record(nil), m.records...)
}

// Sample is a complete record, for tests.
func Sample(eventID string) audit.Record {
	rows := int64(42)
	return audit.Record{
		EventID:    eventID,
		EventType:  "com.productsmanager.export.completed.v1",
		OccurredAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Action:     audit.ActionCompleted,
		ActorID:    "alice",
		ActorName:  "Alice",
		ResourceID: "job-" + eventID,
		Entity:     "products",
		Format:     "csv",
		Filters:    map[string]any{"status": "active"},
		RowCount:   &rows,
		RiskLevel:  audit.RiskMedium,
		Details:    map[string]any{"code": "x"},
	}
}

// RecorderSuite checks the behaviour every audit.Recorder shares; newRecorder returns an empty
// one for each subtest.
func RecorderSuite(t *testing.T, newRecorder func(t *testing.T) audit.Recorder) {
	t.Run("first record is inserted, a repeat is not", func(t *testing.T) {
		r := newRecorder(t)
		ctx := t.Context()
		rec := Sample("11111111-1111-5111-8111-111111111111")
		for i, want := range []bool{true, false, false} {
			got, err := r.Record(ctx, rec)
			if err != nil {
				t.Fatalf("Record #%d: %v", i+1, err)
			}
			if got != want {
				t.Fatalf("Record #%d inserted = %v, want %v", i+1, got, want)
			}
		}
	})
	t.Run("distinct events are both inserted", func(t *testing.T) {
		r := newRecorder(t)
		ctx := t.Context()
		for _, id := range []string{"a-1", "a-2"} {
			got, err := r.Record(ctx, Sample(id))
			if err != nil || !got {
				t.Fatalf("Record(%s) = %v, %v; want true, nil", id, got, err)
			}
		}
	})
	t.Run("a record with only the required fields is inserted", func(t *testing.T) {
		r := newRecorder(t)
		rec := audit.Record{EventID: "min-1", EventType: "com.productsmanager.export.failed.v1",
			Action: audit.ActionFailed, ResourceID: "job-min", RiskLevel: audit.RiskMedium}
		got, err := r.Record(t.Context(), rec)
		if err != nil || !got {
			t.Fatalf("Record = %v, %v; want true, nil", got, err)
		}
	})
	t.Run("a cancelled context is an error", func(t *testing.T) {
		r := newRecorder(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := r.Record(ctx, Sample("c-1")); err == nil {
			t.Fatal("Record with a cancelled context succeeded")
		}
	})
}
