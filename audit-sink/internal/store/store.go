// Package store is the PostgreSQL side of the audit sink: the audit_logs schema of
// db_analytics and the audit.Recorder that writes it.
//
// Invariant: audit_logs.event_id is unique and Record inserts with ON CONFLICT DO NOTHING, so
// however often an event is delivered, it leaves one row.
package store

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productsmanager/exportplatform/audit-sink/internal/audit"
)

//go:embed schema.sql
var schema string

// schemaLockKey serialises Migrate between instances starting together: two concurrent
// CREATE TABLE IF NOT EXISTS can still collide on the catalog.
const schemaLockKey int64 = 0x617564697473696e // "auditsin"

const insertSQL = `
INSERT INTO audit_logs (event_id, event_type, occurred_at, action, actor_id, actor_name,
                        resource_id, entity, format, filters, row_count, risk_level, details,
                        bytes, client_ip, user_agent)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (event_id) DO NOTHING`

// Store writes audit_logs.
type Store struct {
	pool *pgxpool.Pool
}

// New wraps a pool on db_analytics.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Migrate creates audit_logs and its indexes if they are missing.
func (s *Store) Migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrating audit_logs: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", schemaLockKey); err != nil {
		return fmt.Errorf("migrating audit_logs: locking: %w", err)
	}
	// No arguments: pgx sends it with the simple protocol, which runs several statements.
	if _, err := tx.Exec(ctx, schema); err != nil {
		return fmt.Errorf("migrating audit_logs: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrating audit_logs: %w", err)
	}
	return nil
}

// Record inserts rec unless a row with its event_id exists.
func (s *Store) Record(ctx context.Context, rec audit.Record) (bool, error) {
	var occurred any
	if !rec.OccurredAt.IsZero() {
		occurred = rec.OccurredAt
	}
	var filters, details any
	if rec.Filters != nil {
		filters = rec.Filters
	}
	if rec.Details != nil {
		details = rec.Details
	}
	tag, err := s.pool.Exec(ctx, insertSQL,
		rec.EventID, string(rec.EventType), occurred, rec.Action, null(rec.ActorID), null(rec.ActorName),
		rec.ResourceID, null(rec.Entity), null(rec.Format), filters, rec.RowCount, rec.RiskLevel, details,
		rec.Bytes, null(rec.ClientIP), null(rec.UserAgent))
	if err != nil {
		return false, fmt.Errorf("inserting audit record %s: %w", rec.EventID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Denials counts actor's access.denied rows since since (the repeated-refusals rule).
func (s *Store) Denials(ctx context.Context, actor string, since time.Time) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM audit_logs
		WHERE action = 'access.denied' AND actor_id = $1 AND occurred_at >= $2`, actor, since).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting the refusals of %s: %w", actor, err)
	}
	return n, nil
}

// null is nil for "", so an unknown value is NULL rather than an empty string.
func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}
