// Package auditlog reads db_analytics.audit_logs (written by the audit sink) for
// GET /api/v1/exports/audit: filtered, newest first, paged by cursor.
package auditlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrBadCursor is returned for a cursor List did not make.
var ErrBadCursor = errors.New("invalid cursor")

// Filter selects rows; zero fields select everything.
type Filter struct {
	Actor, Action, Resource, Risk string
	From, To                      time.Time // occurred_at in [From, To)
	Cursor                        string
	Limit                         int
}

// Row is one audit record as the API shows it.
type Row struct {
	ID         int64          `json:"id"`
	EventID    string         `json:"event_id"`
	EventType  string         `json:"event_type"`
	OccurredAt *time.Time     `json:"occurred_at"`
	Action     string         `json:"action"`
	ActorID    *string        `json:"actor_id"`
	ActorName  *string        `json:"actor_name"`
	ResourceID string         `json:"resource_id"`
	Entity     *string        `json:"entity"`
	Format     *string        `json:"format"`
	Filters    map[string]any `json:"filters"`
	RowCount   *int64         `json:"row_count"`
	Bytes      *int64         `json:"bytes"`
	ClientIP   *string        `json:"client_ip"`
	UserAgent  *string        `json:"user_agent"`
	RiskLevel  string         `json:"risk_level"`
	Details    map[string]any `json:"details"`
	RecordedAt time.Time      `json:"recorded_at"`
}

// Store reads audit_logs.
type Store struct{ pool *pgxpool.Pool }

// New wraps a pool on db_analytics.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// List returns up to f.Limit rows, newest first, and the cursor of the next page ("" at the end).
func (s *Store) List(ctx context.Context, f Filter) ([]Row, string, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Actor != "" {
		add("actor_id = $%d", f.Actor)
	}
	if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if f.Resource != "" {
		add("resource_id = $%d", f.Resource)
	}
	if f.Risk != "" {
		add("risk_level = $%d", f.Risk)
	}
	if !f.From.IsZero() {
		add("occurred_at >= $%d", f.From)
	}
	if !f.To.IsZero() {
		add("occurred_at < $%d", f.To)
	}
	if f.Cursor != "" {
		id, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || id <= 0 {
			return nil, "", ErrBadCursor
		}
		add("id < $%d", id)
	}
	q := `SELECT id, event_id, event_type, occurred_at, action, actor_id, actor_name, resource_id, entity, format,
		filters, row_count, bytes, client_ip, user_agent, risk_level, details, recorded_at FROM audit_logs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := max(f.Limit, 1)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT %d", limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("reading audit_logs: %w", err)
	}
	defer rows.Close()
	out := []Row{}
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.ID, &r.EventID, &r.EventType, &r.OccurredAt, &r.Action, &r.ActorID, &r.ActorName,
			&r.ResourceID, &r.Entity, &r.Format, &r.Filters, &r.RowCount, &r.Bytes, &r.ClientIP, &r.UserAgent,
			&r.RiskLevel, &r.Details, &r.RecordedAt); err != nil {
			return nil, "", fmt.Errorf("reading audit_logs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("reading audit_logs: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(out[limit-1].ID, 10)
	}
	return out, next, nil
}
