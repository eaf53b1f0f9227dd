package catalog

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Querier is what a Query runs on (a *pgxpool.Pool, *pgx.Conn or pgx.Tx). A query with stream
// relations reads their cursors beside its own, one connection each, so it needs a pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

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
	// rangeLo and rangeHi are the positions ($n) of a range's bounds among args; 0 for none.
	rangeLo, rangeHi int
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

// from is the entity's FROM clause, its joins bounded like a range's key.
func (q *Query) from() string {
	from := q.Entity.from
	for {
		i := strings.Index(from, "{{range ")
		if i < 0 {
			return from
		}
		j := strings.Index(from[i:], "}}")
		col := from[i+len("{{range ") : i+j]
		var cond string
		if q.rangeLo > 0 {
			cond += " AND " + col + " >= $" + strconv.Itoa(q.rangeLo)
		}
		if q.rangeHi > 0 {
			cond += " AND " + col + " < $" + strconv.Itoa(q.rangeHi)
		}
		from = from[:i] + cond + from[i+j+2:]
	}
}

func (q *Query) where() string {
	if len(q.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.conds, " AND ")
}

// SQL is the statement Rows runs (exposed for benchmarks and EXPLAIN): the fields, the row
// relations' columns, then the row key.
func (q *Query) SQL() (string, []any) {
	exprs := make([]string, 0, len(q.Fields)+len(q.Relations)+1)
	for _, f := range q.Fields {
		exprs = append(exprs, f.expr)
	}
	for _, r := range q.Relations {
		exprs = append(exprs, r.cols...)
	}
	exprs = append(exprs, q.Entity.order+"::text")
	return "SELECT " + strings.Join(exprs, ", ") + " FROM " + q.from() + q.where() +
		" ORDER BY " + q.Entity.order, q.args
}

// RelationSQL is the statement of stream relation r (an index into Relations): its rows for
// the keys the query selects, in key order. Unfiltered, it reads every row of the relation
// (a semi-join with the whole entity would only cost a scan more).
func (q *Query) RelationSQL(r int) (string, []any) {
	st := q.Relations[r].stream
	if len(q.conds) == 0 {
		return st.sql + st.tail, nil
	}
	return st.sql + " WHERE " + st.key + " IN (SELECT " + q.Entity.order + " FROM " + q.Entity.Name + " " +
		q.Entity.alias + q.where() + ")" + st.tail, q.args
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
// fn consumes it, never buffered whole, and so are the stream relations' results beside it;
// cancelling ctx cancels the queries.
// every > 0 calls progress with the row count every that many rows.
func (q *Query) Rows(ctx context.Context, db Querier, fn func(cells [][]byte) error, progress func(int64), every int64) (int64, error) {
	return q.Stream(ctx, db, nil, fn, progress, every)
}

// Stream is Rows with opened, called once the database has accepted the query (planned it,
// described its columns) and before the first row is looked for: a stream sends its header
// then, so an unreachable database or a refused query is still answered with an error
// instead of a cut-off file, while a query slow to find its first row shows bytes at once.
func (q *Query) Stream(ctx context.Context, db Querier, opened func() error, fn func(cells [][]byte) error, progress func(int64), every int64) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	var cursors []pgx.Rows
	// Cancelling first: a return before the last row ends the queries instead of letting Close
	// read (and discard) the rest of a million-row result.
	defer func() {
		cancel()
		for _, c := range cursors {
			c.Close()
		}
	}()
	sql, args := q.SQL()
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("querying %s: %w", q.Entity.Name, err)
	}
	cursors = append(cursors, rows)
	streams := make([]*relationCursor, len(q.Relations))
	for i, r := range q.Relations {
		if r.stream == nil {
			continue
		}
		sql, args := q.RelationSQL(i)
		rr, err := db.Query(ctx, sql, args...)
		if err != nil {
			return 0, fmt.Errorf("querying %s %s: %w", q.Entity.Name, r.Name, err)
		}
		cursors = append(cursors, rr)
		streams[i] = &relationCursor{rows: rr, r: r, name: q.Entity.Name + " " + r.Name}
		if err := streams[i].next(); err != nil {
			return 0, err
		}
	}
	if opened != nil {
		if err := opened(); err != nil {
			return 0, err
		}
	}
	nf := len(q.Fields)
	out := make([][]byte, nf+len(q.Relations))
	type span struct {
		start, end int
		ok         bool
	}
	spans := make([]span, len(q.Relations))
	var buf, prev []byte // the relations' values of the row; the previous row's key
	var n int64
	for rows.Next() {
		raw := rows.RawValues()
		key := raw[len(raw)-1]
		if prev != nil && bytes.Equal(key, prev) {
			continue // a second primary supplier: the row is already out
		}
		prev = append(prev[:0], key...)
		copy(out, raw[:nf])
		if len(q.Relations) > 0 {
			k, err := strconv.ParseInt(string(key), 10, 64)
			if err != nil {
				return n, fmt.Errorf("reading %s key %q: %w", q.Entity.Name, key, err)
			}
			buf = buf[:0]
			src := nf // the next row relation's first column
			for i, r := range q.Relations {
				start, ok := len(buf), true
				if s := streams[i]; s != nil {
					if buf, err = s.value(buf, k); err != nil {
						return n, err
					}
				} else {
					buf, ok = r.value(buf, raw[src:src+len(r.cols)])
					src += len(r.cols)
				}
				spans[i] = span{start, len(buf), ok}
			}
			for i, sp := range spans { // buf may have moved while it grew: slice it now
				out[nf+i] = nil
				if sp.ok {
					out[nf+i] = buf[sp.start:sp.end:sp.end]
				}
			}
		}
		if err := fn(out); err != nil {
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

// relationCursor reads a stream relation's rows in step with the entity's: it is always at
// the first row whose key the entity has not passed yet.
type relationCursor struct {
	rows    pgx.Rows
	r       Relation
	name    string
	key     int64
	cols    [][]byte // the current row's columns after the key; valid until next
	started bool
	done    bool
}

func (c *relationCursor) next() error {
	if !c.rows.Next() {
		c.done = true
		if err := c.rows.Err(); err != nil {
			return fmt.Errorf("reading %s: %w", c.name, err)
		}
		return nil
	}
	raw := c.rows.RawValues()
	k, err := strconv.ParseInt(string(raw[0]), 10, 64)
	if err != nil {
		return fmt.Errorf("reading %s key %q: %w", c.name, raw[0], err)
	}
	if c.started && k < c.key {
		// The merge needs key order: values would go to the wrong rows.
		return fmt.Errorf("reading %s: key %d after %d, not in key order", c.name, k, c.key)
	}
	c.key, c.cols, c.started = k, raw[1:], true
	return nil
}

// value appends the relation's value for key k: its rows', skipping rows of keys below k
// (none, unless a row came or went between the two queries' snapshots).
func (c *relationCursor) value(dst []byte, k int64) ([]byte, error) {
	for !c.done && c.key < k {
		if err := c.next(); err != nil {
			return dst, err
		}
	}
	st := c.r.stream
	if c.done || c.key > k {
		return append(dst, st.empty...), nil
	}
	if st.list {
		dst = append(dst, '[')
	}
	for first := true; !c.done && c.key == k; first = false {
		if !first && st.list {
			dst = append(dst, ',')
		}
		if first || st.list {
			dst, _ = c.r.value(dst, c.cols)
		}
		if err := c.next(); err != nil {
			return dst, err
		}
	}
	if st.list {
		dst = append(dst, ']')
	}
	return dst, nil
}
