package catalog

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Querier is what a Query runs on (a *pgxpool.Pool, *pgx.Conn or pgx.Tx). A query with batch
// relations runs a second query while its cursor is open, so it needs a pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// BatchSize is how many rows share one relation query.
const BatchSize = 1000

// Query is a validated export query: an entity, its columns and its filters.
type Query struct {
	Entity    *Entity
	Fields    []Field
	Relations []Relation // included relations, output after Fields
	// Filters are the request's filters as parsed: numbers as numbers, lists as lists, times
	// in RFC 3339, absent ones dropped. A job stores these, never the raw input, so what it
	// records and announces is only what the query uses.
	Filters map[string]any
	conds   []string
	args    []any
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
	conds, args, normal, err := e.conditions(filters)
	if err != nil {
		return nil, err
	}
	return &Query{Entity: e, Fields: cols, Filters: normal, conds: conds, args: args}, nil
}

// SheetQuery is every row of a sheet entity (LookupSheet) with its default fields.
func SheetQuery(name string) (*Query, error) {
	e, ok := LookupSheet(name)
	if !ok {
		return nil, fmt.Errorf("unknown sheet %q", name)
	}
	cols, err := e.Resolve(nil, nil)
	if err != nil {
		return nil, err
	}
	return &Query{Entity: e, Fields: cols}, nil
}

// IncludeRelations adds the entity's relations to the rows, after the fields.
func (q *Query) IncludeRelations() { q.Relations = q.Entity.Relations }

// Columns are the output columns: the fields, then the included relations.
func (q *Query) Columns() []Field {
	out := append([]Field(nil), q.Fields...)
	for _, r := range q.Relations {
		out = append(out, r.Field)
	}
	return out
}

func (q *Query) where() string {
	if len(q.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.conds, " AND ")
}

// SQL is the statement Rows runs (exposed for benchmarks and EXPLAIN): the fields, the
// relations computed by expression, then the row key.
func (q *Query) SQL() (string, []any) {
	exprs := make([]string, 0, len(q.Fields)+len(q.Relations)+1)
	for _, f := range q.Fields {
		exprs = append(exprs, f.expr)
	}
	for _, r := range q.Relations {
		if r.batch == "" {
			exprs = append(exprs, r.expr)
		}
	}
	exprs = append(exprs, q.Entity.order+"::text")
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

// Rows streams the selected rows in key order to fn, one at a time: cells are the columns'
// text (nil for NULL), valid only during the call. The result is read from the connection as
// fn consumes it, never buffered whole (rows wait in batches of BatchSize only when a relation
// is fetched per batch); cancelling ctx cancels the query.
// every > 0 calls progress with the row count every that many rows.
func (q *Query) Rows(ctx context.Context, db Querier, fn func(cells [][]byte) error, progress func(int64), every int64) (int64, error) {
	return q.Stream(ctx, db, nil, fn, progress, every)
}

// Stream is Rows with opened, called once the database has accepted the query (planned it,
// described its columns) and before the first row is looked for: a stream sends its header
// then, so an unreachable database or a refused query is still answered with an error
// instead of a cut-off file, while a query slow to find its first row shows bytes at once.
func (q *Query) Stream(ctx context.Context, db Querier, opened func() error, fn func(cells [][]byte) error, progress func(int64), every int64) (int64, error) {
	sql, args := q.SQL()
	ctx, cancel := context.WithCancel(ctx)
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		cancel()
		return 0, fmt.Errorf("querying %s: %w", q.Entity.Name, err)
	}
	defer rows.Close()
	// Runs before Close: a return before the last row cancels the query instead of
	// letting Close read (and discard) the rest of a million-row result.
	defer cancel()
	if opened != nil {
		if err := opened(); err != nil {
			return 0, err
		}
	}
	var n int64
	emit := func(cells [][]byte) error {
		if err := fn(cells); err != nil {
			return err
		}
		n++
		if every > 0 && n%every == 0 {
			progress(n)
		}
		return nil
	}
	var b *batcher
	for _, r := range q.Relations {
		if r.batch != "" {
			b = newBatcher(q, db, emit)
			defer b.wait()
			break
		}
	}
	nf := len(q.Fields)
	var prev []byte
	for rows.Next() {
		raw := rows.RawValues()
		key := raw[len(raw)-1]
		if prev != nil && bytes.Equal(key, prev) {
			continue // a second primary supplier: the row is already out
		}
		prev = append(prev[:0], key...)
		if b != nil {
			err = b.add(ctx, raw)
		} else if len(q.Relations) == 0 {
			err = emit(raw[:nf])
		} else {
			err = emit(raw[:len(raw)-1])
		}
		if err != nil {
			return n, err
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("reading %s: %w", q.Entity.Name, err)
	}
	if b != nil {
		if err := b.flush(ctx); err != nil {
			return n, err
		}
	}
	return n, nil
}

// batcher holds up to BatchSize rows (copied out of the cursor's buffer) until their batch
// relations are fetched, one query per relation per batch. While one batch's relations are
// fetched (on another connection) the cursor fills the next batch, so the two queries overlap;
// at most two batches are held.
type batcher struct {
	q       *Query
	db      Querier
	emit    func([][]byte) error
	filling *batch
	spare   *batch
	pending *batch // its relations are being fetched
	out     [][]byte
}

type batch struct {
	rows   [][][]byte
	keys   []int64
	arena  []byte
	values []map[int64][]byte // per relation, nil for an expression relation
	done   chan error
}

func newBatcher(q *Query, db Querier, emit func([][]byte) error) *batcher {
	return &batcher{q: q, db: db, emit: emit, filling: &batch{}, spare: &batch{},
		out: make([][]byte, len(q.Fields)+len(q.Relations))}
}

func (b *batcher) add(ctx context.Context, raw [][]byte) error {
	key, err := strconv.ParseInt(string(raw[len(raw)-1]), 10, 64)
	if err != nil {
		return fmt.Errorf("reading %s key %q: %w", b.q.Entity.Name, raw[len(raw)-1], err)
	}
	f := b.filling
	row := make([][]byte, len(raw)-1)
	for i, c := range raw[:len(raw)-1] {
		if c != nil {
			start := len(f.arena)
			f.arena = append(f.arena, c...)
			row[i] = f.arena[start:len(f.arena):len(f.arena)]
		}
	}
	f.rows = append(f.rows, row)
	f.keys = append(f.keys, key)
	if len(f.rows) >= BatchSize {
		return b.dispatch(ctx)
	}
	return nil
}

// dispatch starts fetching the filled batch's relations, after writing out the batch whose
// relations were being fetched.
func (b *batcher) dispatch(ctx context.Context) error {
	if err := b.drain(); err != nil {
		return err
	}
	f := b.filling
	if len(f.rows) == 0 {
		return nil
	}
	b.filling, b.spare = b.spare, nil
	f.done = make(chan error, 1)
	if f.values == nil {
		f.values = make([]map[int64][]byte, len(b.q.Relations))
	}
	go func() {
		for i, r := range b.q.Relations {
			if r.batch == "" {
				continue
			}
			m, err := fetch(ctx, b.db, r, f.keys)
			if err != nil {
				f.done <- fmt.Errorf("fetching %s %s: %w", b.q.Entity.Name, r.Name, err)
				return
			}
			f.values[i] = m
		}
		f.done <- nil
	}()
	b.pending = f
	return nil
}

// drain waits for the pending batch's relations and writes its rows out.
func (b *batcher) drain() error {
	p := b.pending
	if p == nil {
		return nil
	}
	b.pending = nil
	if err := <-p.done; err != nil {
		return err
	}
	nf := len(b.q.Fields)
	for j, row := range p.rows {
		copy(b.out, row[:nf])
		src := nf // the next expression relation in the row
		for i, r := range b.q.Relations {
			if r.batch == "" {
				b.out[nf+i] = row[src]
				src++
				continue
			}
			v, ok := p.values[i][p.keys[j]]
			if !ok {
				v = r.empty
			}
			b.out[nf+i] = v
		}
		if err := b.emit(b.out); err != nil {
			return err
		}
	}
	p.rows, p.keys, p.arena = p.rows[:0], p.keys[:0], p.arena[:0]
	b.spare = p
	return nil
}

// flush writes out every row held: the pending batch, then the last, partial one.
func (b *batcher) flush(ctx context.Context) error {
	if err := b.dispatch(ctx); err != nil {
		return err
	}
	return b.drain()
}

// wait lets a fetch still running end, so that nothing outlives Rows (on an early return).
func (b *batcher) wait() {
	if b.pending != nil {
		<-b.pending.done
		b.pending = nil
	}
}

func fetch(ctx context.Context, db Querier, r Relation, keys []int64) (map[int64][]byte, error) {
	rows, err := db.Query(ctx, r.batch, keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := make(map[int64][]byte, len(keys))
	for rows.Next() {
		var k int64
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, rows.Err()
}
