package auditlog

import (
	"context"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestList: filters, newest first, and cursor paging over the audit sink's own schema.
func TestList(t *testing.T) {
	t.Parallel()
	pool := pgdbtest.NewDatabase(t, "auditlog")
	schema, err := os.ReadFile("../../../audit-sink/internal/store/schema.sql") // the sink owns the table
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, string(schema)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for i, r := range []struct{ actor, action, risk string }{
		{"alice", "export.downloaded", "medium"}, {"bob", "access.denied", "low"},
		{"alice", "export.streamed", "high"}, {"alice", "export.downloaded", "low"},
	} {
		if _, err := pool.Exec(ctx, `INSERT INTO audit_logs (event_id, event_type, occurred_at, action, actor_id,
			resource_id, risk_level, bytes, client_ip) VALUES ($1, 'com.productsmanager.export.accessed.v1', $2, $3, $4, 'job-1', $5, 10, '127.0.0.1')`,
			"e"+string(rune('a'+i)), t0.Add(time.Duration(i)*time.Minute), r.action, r.actor, r.risk); err != nil {
			t.Fatal(err)
		}
	}
	s := New(pool)
	rows, next, err := s.List(ctx, Filter{Actor: "alice", Limit: 2})
	if err != nil || len(rows) != 2 || next == "" || rows[0].EventID != "ed" || rows[1].EventID != "ec" {
		t.Fatalf("page 1: %+v %q %v", rows, next, err)
	}
	rows, next, err = s.List(ctx, Filter{Actor: "alice", Limit: 2, Cursor: next})
	if err != nil || len(rows) != 1 || next != "" || rows[0].EventID != "ea" || *rows[0].Bytes != 10 {
		t.Fatalf("page 2: %+v %q %v", rows, next, err)
	}
	if rows, _, err := s.List(ctx, Filter{Risk: "high", Limit: 10}); err != nil || len(rows) != 1 || rows[0].Action != "export.streamed" {
		t.Errorf("risk high: %+v %v", rows, err)
	}
	if rows, _, err := s.List(ctx, Filter{Action: "export.downloaded", From: t0.Add(time.Minute), To: t0.Add(time.Hour), Limit: 10}); err != nil || len(rows) != 1 || rows[0].EventID != "ed" {
		t.Errorf("action and range: %+v %v", rows, err)
	}
	if _, _, err := s.List(ctx, Filter{Cursor: "x", Limit: 1}); err != ErrBadCursor {
		t.Errorf("bad cursor: %v", err)
	}
}
