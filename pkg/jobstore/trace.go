package jobstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// TraceContext returns the W3C trace context (traceparent, tracestate) the job was requested
// under, "" when the request was not traced: an exporter that claims the job from the table,
// without its ExportRequested, continues the request's trace with it.
func (s *Store) TraceContext(ctx context.Context, id string) (traceparent, tracestate string, err error) {
	if !ValidID(id) {
		return "", "", ErrNotFound
	}
	err = s.pool.QueryRow(ctx, `SELECT coalesce(traceparent, ''), coalesce(tracestate, '') FROM jobs WHERE id = $1`, id).
		Scan(&traceparent, &tracestate)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", ErrNotFound
	}
	if err != nil {
		return "", "", fmt.Errorf("reading the trace context of job %s: %w", id, err)
	}
	return traceparent, tracestate, nil
}

// TraceContext is Store.TraceContext: the trace context the job was requested under.
func (m *Memory) TraceContext(_ context.Context, id string) (traceparent, tracestate string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.jobs[id]; !ok {
		return "", "", ErrNotFound
	}
	tc := m.traces[id]
	return tc[0], tc[1], nil
}

// nullable stores "" as NULL.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
