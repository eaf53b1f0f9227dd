package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productsmanager/exportplatform/audit-sink/internal/audit"
	"github.com/productsmanager/exportplatform/audit-sink/internal/audit/audittest"
	"github.com/productsmanager/exportplatform/audit-sink/internal/store"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
)

// newStore is a migrated store on a database of its own.
func newStore(t *testing.T) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	pool := pgdbtest.NewDatabase(t, "audittest")
	s := store.New(pool)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, pool
}

func TestRecorderConformance(t *testing.T) {
	t.Parallel()
	// One database, a table truncated per subtest: the suite's subtests run in sequence.
	s, pool := newStore(t)
	audittest.RecorderSuite(t, func(t *testing.T) audit.Recorder {
		if _, err := pool.Exec(t.Context(), "TRUNCATE audit_logs"); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestMigrateIsIdempotent: instances starting together, then restarting, all succeed.
func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	s := store.New(pgdbtest.NewDatabase(t, "audittest"))
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() { errs <- s.Migrate(t.Context()) }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Migrate: %v", err)
		}
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate on a migrated database: %v", err)
	}
}

// TestSameEventTwiceIsOneRow is the feature: a real event, mapped and delivered twice, leaves
// one row holding what the event said.
func TestSameEventTwiceIsOneRow(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := events.ExportRequested{
		JobID: "job-42", Entity: "products", Format: "csv",
		Filters:     map[string]any{"status": "active", "category_id": []any{3.0, 7.0}},
		RequestedBy: "alice", RequesterName: "Alice", RequestedAt: at,
	}
	env, err := events.Wrap(ev)
	if err != nil {
		t.Fatal(err)
	}
	sink := audit.NewSink(s, nil)
	for i := range 2 {
		if err := sink.Handle(ctx, env); err != nil {
			t.Fatalf("Handle #%d: %v", i+1, err)
		}
	}

	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM audit_logs").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("audit_logs has %d rows, want 1", n)
	}

	var (
		eventID, action, actorID, actorName, resourceID, entity, format, risk string
		occurred, recorded                                                    time.Time
		filters                                                               []byte
		rowCount                                                              *int64
	)
	err = pool.QueryRow(ctx, `SELECT event_id, action, actor_id, actor_name, resource_id, entity, format,
	                                 risk_level, occurred_at, recorded_at, filters, row_count
	                            FROM audit_logs`).
		Scan(&eventID, &action, &actorID, &actorName, &resourceID, &entity, &format, &risk, &occurred, &recorded, &filters, &rowCount)
	if err != nil {
		t.Fatal(err)
	}
	if eventID != env.ID || action != audit.ActionRequested || actorID != "alice" || actorName != "Alice" ||
		resourceID != "job-42" || entity != "products" || format != "csv" || risk != audit.RiskMedium ||
		!occurred.Equal(at) || rowCount != nil || recorded.IsZero() {
		t.Errorf("row = %q %q %q %q %q %q %q %q %v %v %v", eventID, action, actorID, actorName, resourceID, entity, format, risk, occurred, recorded, rowCount)
	}
	var gotFilters map[string]any
	if err := json.Unmarshal(filters, &gotFilters); err != nil {
		t.Fatal(err)
	}
	if gotFilters["status"] != "active" || len(gotFilters["category_id"].([]any)) != 2 {
		t.Errorf("filters = %s", filters)
	}
}

// TestNullsForUnknowns: what an event does not say is NULL, not "" or JSON null.
func TestNullsForUnknowns(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	rec := audit.Record{EventID: "e-1", EventType: events.TypeFailed, Action: audit.ActionFailed,
		ResourceID: "job-1", RiskLevel: audit.RiskMedium}
	if _, err := s.Record(ctx, rec); err != nil {
		t.Fatal(err)
	}
	var nulls bool
	err := pool.QueryRow(ctx, `SELECT occurred_at IS NULL AND actor_id IS NULL AND actor_name IS NULL
	                              AND entity IS NULL AND format IS NULL AND filters IS NULL
	                              AND details IS NULL AND row_count IS NULL
	                         FROM audit_logs WHERE event_id = 'e-1'`).Scan(&nulls)
	if err != nil {
		t.Fatal(err)
	}
	if !nulls {
		t.Error("unknown values were not stored as NULL")
	}
}
