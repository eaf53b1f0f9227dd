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

// TraceContext of the twin is always empty: it keeps no trace context.
func (m *Memory) TraceContext(context.Context, string) (traceparent, tracestate string, err error) {
	return "", "", nil
}

// nullable stores "" as NULL.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
