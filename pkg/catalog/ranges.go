package catalog

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// A range of an export is the rows whose key lies in [Lo, Hi): an export split into ranges
// that partition its key space, each read by its own worker, gives the same rows as the
// whole when they all read the same snapshot (SetSnapshot), and its file is their outputs
// one after the other.

// Bounds cuts the query's rows, in key order, into ranges of about rowsPerRange rows: it
// returns the keys where each range after the first begins (none when the rows fit one
// range). Read inside the snapshot the ranges will read, they partition exactly the rows the
// snapshot holds.
func (q *Query) Bounds(ctx context.Context, db Querier, rowsPerRange int64) ([]int64, error) {
	if rowsPerRange < 1 {
		return nil, fmt.Errorf("rows per range %d: must be positive", rowsPerRange)
	}
	n := len(q.args) + 1
	// row_number over the key index: one ordered scan of the entity's own table (the filters
	// reference nothing else), no join.
	sql := "SELECT k FROM (SELECT " + q.Entity.order + " AS k, row_number() OVER (ORDER BY " + q.Entity.order +
		") AS rn FROM " + q.Entity.Name + " " + q.Entity.alias + q.where() + ") t WHERE rn > 1 AND rn % $" +
		strconv.Itoa(n) + " = 1 ORDER BY k"
	rows, err := db.Query(ctx, sql, append(slices.Clone(q.args), rowsPerRange)...)
	if err != nil {
		return nil, fmt.Errorf("cutting %s into ranges: %w", q.Entity.Name, err)
	}
	bounds, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("cutting %s into ranges: %w", q.Entity.Name, err)
	}
	return bounds, nil
}

// Range is the query restricted to keys in [lo, hi); nil leaves that side open. The copy
// shares nothing mutable with q.
func (q *Query) Range(lo, hi *int64) *Query {
	r := *q
	r.conds, r.args = slices.Clone(q.conds), slices.Clone(q.args)
	r.rangeLo, r.rangeHi = 0, 0
	if lo != nil {
		r.args = append(r.args, *lo)
		r.rangeLo = len(r.args)
		r.conds = append(r.conds, q.Entity.order+" >= $"+strconv.Itoa(r.rangeLo))
	}
	if hi != nil {
		r.args = append(r.args, *hi)
		r.rangeHi = len(r.args)
		r.conds = append(r.conds, q.Entity.order+" < $"+strconv.Itoa(r.rangeHi))
	}
	return &r
}

// Ranges turns the bounds into the ranges they cut: [nil, b0), [b0, b1), …, [bn, nil).
func Ranges(bounds []int64) [][2]*int64 {
	out := make([][2]*int64, 0, len(bounds)+1)
	var lo *int64
	for i := range bounds {
		hi := &bounds[i]
		out = append(out, [2]*int64{lo, hi})
		lo = hi
	}
	return append(out, [2]*int64{lo, nil})
}

// ExportSnapshot begins a repeatable-read, read-only transaction on conn and exports its
// snapshot: while tx stays open, other transactions may read exactly what it sees
// (SetSnapshot). The caller commits or rolls tx back once every range is read.
func ExportSnapshot(ctx context.Context, conn interface {
	BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
}) (pgx.Tx, string, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, "", fmt.Errorf("beginning the export's snapshot: %w", err)
	}
	var id string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&id); err != nil {
		_ = tx.Rollback(ctx)
		return nil, "", fmt.Errorf("exporting the snapshot: %w", err)
	}
	return tx, id, nil
}

// SetSnapshot begins a repeatable-read, read-only transaction on conn that reads the snapshot
// id (ExportSnapshot), which must still be held open by its exporter.
func SetSnapshot(ctx context.Context, conn interface {
	BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
}, id string) (pgx.Tx, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("beginning a range's transaction: %w", err)
	}
	// The id comes from pg_export_snapshot, never from a user; SET takes no parameter.
	if !validSnapshotID(id) {
		_ = tx.Rollback(ctx)
		return nil, fmt.Errorf("snapshot id %q is not one PostgreSQL exports", id)
	}
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+id+"'"); err != nil {
		_ = tx.Rollback(ctx)
		return nil, fmt.Errorf("reading snapshot %s: %w", id, err)
	}
	return tx, nil
}

// validSnapshotID reports whether id looks like pg_export_snapshot's output (hexadecimal
// groups joined by dashes, e.g. 00000003-0000001B-1).
func validSnapshotID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F' || 'a' <= c && c <= 'f' || c == '-') {
			return false
		}
	}
	return true
}
