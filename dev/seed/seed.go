// Package seed generates the demo catalog of products_manager (CONTRACT.md §7): about 200
// categories in a three-level tree, N/100 suppliers (at least 10), N products with text that
// exercises every export (quotes, separators, line breaks, emoji, leading = + - @), and their
// product_suppliers links. The data depend only on N: the same N gives byte-identical tables.
//
// Rows are generated on the fly and streamed with binary COPY; nothing is held in memory whole.
package seed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	catalogsql "github.com/productsmanager/exportplatform/dev/sql"
)

// Config sets what Seed generates.
type Config struct {
	// Products is the number of products (0 loads categories and suppliers only).
	Products int
	// Schema is the DDL applied before loading; empty means the embedded catalog.sql.
	Schema string
	// Logger receives progress records; nil discards them.
	Logger *slog.Logger
}

// Stats reports a load.
type Stats struct {
	Products, Suppliers, Categories, Links int64
	// Load is the time spent in COPY, Index rebuilding indexes and constraints, Analyze in
	// ANALYZE; Elapsed is the whole call, schema and commit included.
	Load, Index, Analyze, Elapsed time.Duration
}

func (s Stats) String() string {
	return fmt.Sprintf("products=%d suppliers=%d categories=%d links=%d elapsed=%s",
		s.Products, s.Suppliers, s.Categories, s.Links, s.Elapsed.Round(time.Millisecond))
}

// Tables are the catalog tables, in load order.
var Tables = []string{"categories", "suppliers", "products", "product_suppliers"}

// ApplySchema runs the idempotent catalog DDL (schema, or the embedded catalog.sql when empty).
func ApplySchema(ctx context.Context, conn *pgx.Conn, schema string) error {
	if schema == "" {
		schema = catalogsql.Catalog
	}
	if _, err := conn.Exec(ctx, schema); err != nil {
		return fmt.Errorf("applying the catalog schema: %w", err)
	}
	return nil
}

// HasProducts reports whether the products table exists and holds at least one row.
func HasProducts(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('products') IS NOT NULL").Scan(&exists); err != nil {
		return false, fmt.Errorf("looking for the products table: %w", err)
	}
	if !exists {
		return false, nil
	}
	var any bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM products)").Scan(&any); err != nil {
		return false, fmt.Errorf("counting products: %w", err)
	}
	return any, nil
}

// Seed applies the schema, then replaces the whole catalog with the one generated for
// cfg.Products, in a single transaction: concurrent readers see the old catalog or the new one.
//
// Inside the transaction the tables are truncated, their keys, unique constraints, foreign keys
// and secondary indexes dropped, the rows streamed with binary COPY, and everything that was
// dropped rebuilt (exactly as it was found, so extra indexes survive), then ANALYZE. Any error
// rolls all of it back.
func Seed(ctx context.Context, conn *pgx.Conn, cfg Config) (Stats, error) {
	start := time.Now()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Products < 0 {
		return Stats{}, fmt.Errorf("products must be >= 0, got %d", cfg.Products)
	}
	n := int64(cfg.Products)
	st := Stats{Products: n, Suppliers: int64(SupplierCount(cfg.Products)), Categories: int64(len(tree.categories))}

	if err := ApplySchema(ctx, conn, cfg.Schema); err != nil {
		return Stats{}, err
	}
	restore := useCentsCodec(conn)
	defer restore()

	tx, err := conn.Begin(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("beginning the load: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	for _, q := range []string{
		// One seed at a time; a second waits for the first to finish.
		"SELECT pg_advisory_xact_lock(hashtext('exportplatform.dev.seed'))",
		"SET LOCAL maintenance_work_mem = '256MB'",
		"SET LOCAL synchronous_commit = off",
		"TRUNCATE categories, suppliers, products, product_suppliers RESTART IDENTITY CASCADE",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return Stats{}, fmt.Errorf("preparing the load (%s): %w", q, err)
		}
	}
	rebuild, err := dropKeysAndIndexes(ctx, tx)
	if err != nil {
		return Stats{}, err
	}
	log.Info("seed: tables truncated", "products", n, "suppliers", st.Suppliers,
		"dropped", len(rebuild))

	t := time.Now()
	links := newLinkSource(n, st.Suppliers)
	for _, c := range []struct {
		table string
		cols  []string
		src   pgx.CopyFromSource
	}{
		{"categories", CategoryColumns, &categorySource{}},
		{"suppliers", SupplierColumns, newSupplierSource(st.Suppliers)},
		{"products", ProductColumns, newProductSource(n)},
		{"product_suppliers", LinkColumns, links},
	} {
		ct := time.Now()
		rows, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, c.src)
		if err != nil {
			return Stats{}, fmt.Errorf("copying %s: %w", c.table, err)
		}
		log.Info("seed: copied", "table", c.table, "rows", rows, "ms", time.Since(ct).Milliseconds())
	}
	st.Links = links.rows
	st.Load = time.Since(t)

	t = time.Now()
	for _, ddl := range rebuild {
		it := time.Now()
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return Stats{}, fmt.Errorf("rebuilding (%s): %w", ddl, err)
		}
		log.Debug("seed: rebuilt", "ddl", ddl, "ms", time.Since(it).Milliseconds())
	}
	// Rows carry explicit ids: move the identity sequences past them.
	for _, seq := range []struct {
		table string
		last  int64
	}{{"categories", st.Categories}, {"suppliers", st.Suppliers}, {"products", n}} {
		table, last := seq.table, seq.last
		if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence($1, 'id'), $2, $3)
			WHERE pg_get_serial_sequence($1, 'id') IS NOT NULL`, table, max(last, 1), last > 0); err != nil {
			return Stats{}, fmt.Errorf("moving the id sequence of %s: %w", table, err)
		}
	}
	st.Index = time.Since(t)
	log.Info("seed: keys and indexes rebuilt", "count", len(rebuild), "ms", st.Index.Milliseconds())

	t = time.Now()
	if _, err := tx.Exec(ctx, "ANALYZE categories, suppliers, products, product_suppliers"); err != nil {
		return Stats{}, fmt.Errorf("analyzing: %w", err)
	}
	st.Analyze = time.Since(t)
	if err := tx.Commit(ctx); err != nil {
		return Stats{}, fmt.Errorf("committing the load: %w", err)
	}
	st.Elapsed = time.Since(start)
	log.Info("seed: done", "products", st.Products, "suppliers", st.Suppliers,
		"categories", st.Categories, "links", st.Links, "load_ms", st.Load.Milliseconds(),
		"index_ms", st.Index.Milliseconds(), "analyze_ms", st.Analyze.Milliseconds(),
		"elapsed_ms", st.Elapsed.Milliseconds())
	return st, nil
}

// dropKeysAndIndexes drops the primary keys, unique constraints and foreign keys of the catalog
// tables (and the foreign keys of other tables pointing at them), and their other indexes,
// returning the DDL that recreates them as they were: indexes, then keys, then foreign keys.
// Building an index once over the loaded rows is much faster than maintaining it row by row.
func dropKeysAndIndexes(ctx context.Context, tx pgx.Tx) ([]string, error) {
	const q = `
WITH t AS (SELECT to_regclass(x) AS oid FROM unnest($1::text[]) AS x)
SELECT drop_sql, create_sql FROM (
    SELECT 0 AS drop_order, c.conname::text AS name,
           format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname) AS drop_sql,
           format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
                  pg_get_constraintdef(c.oid)) AS create_sql
      FROM pg_constraint c
     WHERE c.contype = 'f' AND (c.conrelid IN (SELECT oid FROM t) OR c.confrelid IN (SELECT oid FROM t))
    UNION ALL
    SELECT 1, c.conname::text,
           format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
           format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
                  pg_get_constraintdef(c.oid))
      FROM pg_constraint c
     WHERE c.contype IN ('p', 'u') AND c.conrelid IN (SELECT oid FROM t)
    UNION ALL
    SELECT 2, i.indexrelid::regclass::text,
           format('DROP INDEX %s', i.indexrelid::regclass),
           pg_get_indexdef(i.indexrelid)
      FROM pg_index i
     WHERE i.indrelid IN (SELECT oid FROM t)
       AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                        WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
) d
ORDER BY drop_order, name`
	rows, err := tx.Query(ctx, q, Tables)
	if err != nil {
		return nil, fmt.Errorf("listing keys and indexes: %w", err)
	}
	type obj struct{ drop, create string }
	var objs []obj
	for rows.Next() {
		var o obj
		if err := rows.Scan(&o.drop, &o.create); err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing keys and indexes: %w", err)
		}
		objs = append(objs, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing keys and indexes: %w", err)
	}
	if len(objs) == 0 {
		return nil, errors.New("no keys found on the catalog tables: is the schema applied?")
	}
	// Recreate in reverse drop order: indexes, then keys, then foreign keys.
	create := make([]string, 0, len(objs))
	for i := len(objs) - 1; i >= 0; i-- {
		create = append(create, objs[i].create)
	}
	for _, o := range objs {
		if _, err := tx.Exec(ctx, o.drop); err != nil {
			return nil, fmt.Errorf("dropping (%s): %w", o.drop, err)
		}
	}
	return create, nil
}
