package catalog

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Querier is what a Query runs on (a *pgxpool.Pool, *pgx.Conn or pgx.Tx).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Query is a validated export query: an entity, its columns and its filters.
type Query struct {
	Entity *Entity
	Fields []Field
	conds  []string
	args   []any
}

// NewQuery validates a request's fields and filters against the allow-lists.
func NewQuery(entity string, fields, exclude []string, filters map[string]any) (*Query, error) {
	e, ok := Lookup(entity)
	if !ok {
		return nil, fmt.Errorf("unknown entity %q", entity)
	}
	cols, err := e.Resolve(fields, exclude)
	if err != nil {
		return nil, err
	}
	conds, args, err := e.conditions(filters)
	if err != nil {
		return nil, err
	}
	return &Query{Entity: e, Fields: cols, conds: conds, args: args}, nil
}

func (q *Query) where() string {
	if len(q.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.conds, " AND ")
}

// SQL is the statement Rows runs (exposed for benchmarks and EXPLAIN).
func (q *Query) SQL() (string, []any) {
	exprs := make([]string, len(q.Fields))
	for i, f := range q.Fields {
		exprs[i] = f.expr
	}
	return "SELECT " + strings.Join(exprs, ", ") + " FROM " + q.Entity.from + q.where() +
		" ORDER BY " + q.Entity.order, q.args
}

// Count returns how many rows the query selects. Filters only reference the entity's own
// table, so the count skips the joins.
func (q *Query) Count(ctx context.Context, db Querier) (int64, error) {
	table := q.Entity.Name + " " + q.Entity.alias
	var n int64
	if err := db.QueryRow(ctx, "SELECT count(*) FROM "+table+q.where(), q.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting %s: %w", q.Entity.Name, err)
	}
	return n, nil
}

// Rows streams the selected rows in id order to fn, one at a time: cells are the fields' text
// (nil for NULL), valid only during the call. The result is read from the connection as fn
// consumes it, never buffered whole; cancelling ctx cancels the query.
// every > 0 calls progress with the row count every that many rows.
func (q *Query) Rows(ctx context.Context, db Querier, fn func(cells [][]byte) error, progress func(int64), every int64) (int64, error) {
	sql, args := q.SQL()
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("querying %s: %w", q.Entity.Name, err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		if err := fn(rows.RawValues()); err != nil {
			return n, err
		}
		n++
		if every > 0 && n%every == 0 {
			progress(n)
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("reading %s: %w", q.Entity.Name, err)
	}
	return n, nil
}
