package export_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/export"
)

// manyProducts adds products 100..(100+n-1) after newCatalog's four, with texts that exercise
// quoting and formula escapes.
func manyProducts(t *testing.T, db *pgxpool.Pool, n int) {
	t.Helper()
	if _, err := db.Exec(t.Context(), `
		INSERT INTO products (id, sku, name, description, price, currency, stock, status, category_id, created_at, updated_at)
		SELECT g, 'R-' || g, CASE WHEN g % 7 = 0 THEN '=cmd' || g ELSE 'name, "' || g || '"' END, E'two\nlines',
			g / 100.0, 'EUR', g % 13, 'active', 1 + g % 2, '2025-01-01Z', '2025-02-01Z'
		FROM generate_series(100, 99 + $1::int) g`, n); err != nil {
		t.Fatal(err)
	}
}

// runRanges writes each range of spec between bounds, reading through read(i) (then calling
// the done it returned), and returns their outputs one after the other.
func runRanges(t *testing.T, ctx context.Context, spec *export.Spec, bounds []int64, read func(i int) (catalog.Querier, func())) []byte {
	t.Helper()
	var out bytes.Buffer
	for i, r := range catalog.Ranges(bounds) {
		var part bytes.Buffer
		db, done := read(i)
		_, err := export.RunRange(ctx, db, spec, r[0], r[1], &part, nil)
		done()
		if err != nil {
			t.Fatalf("range %d: %v", i, err)
		}
		out.Write(part.Bytes())
	}
	return out.Bytes()
}

// TestRangesMakeTheWholeFile: a CSV (byte order mark, header, formula escapes, quoting) and a
// JSON Lines export cut into key ranges give, range after range, the very bytes of the export
// done whole, filtered or not.
func TestRangesMakeTheWholeFile(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	manyProducts(t, db, 250)
	ctx := t.Context()
	for _, req := range []export.Request{
		{Entity: "products", Format: "csv"},
		{Entity: "products", Format: "csv", Options: map[string]any{"delimiter": ";", "decimal": ",", "line_ending": "crlf"},
			Filters: map[string]any{"status": "active"}},
		{Entity: "products", Format: "json", Options: map[string]any{"lines": true}, Fields: []string{"id", "name", "price"}},
		{Entity: "suppliers", Format: "csv"},
	} {
		t.Run(fmt.Sprintf("%s %s %v %v", req.Format, req.Entity, req.Options, req.Filters), func(t *testing.T) {
			spec, err := export.Prepare(req)
			if err != nil {
				t.Fatal(err)
			}
			var whole bytes.Buffer
			if _, err := export.Run(ctx, db, spec, &whole, nil); err != nil {
				t.Fatal(err)
			}
			for _, per := range []int64{1, 7, 100, 10000} {
				bounds, err := spec.Query.Bounds(ctx, db, per)
				if err != nil {
					t.Fatal(err)
				}
				got := runRanges(t, ctx, spec, bounds, func(int) (catalog.Querier, func()) { return db, func() {} })
				if !bytes.Equal(got, whole.Bytes()) {
					t.Fatalf("%d rows a range (%d ranges): %d bytes, whole %d\n got: %.300q\nwant: %.300q",
						per, len(bounds)+1, len(got), whole.Len(), got, whole.Bytes())
				}
			}
		})
	}
}

// TestRangesReadOneSnapshot: ranges read by other transactions through the snapshot a first
// one exported see the catalog as it was then, while rows are updated, inserted and deleted
// meanwhile: their file is the export done inside that snapshot, no row twice, none missing.
func TestRangesReadOneSnapshot(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	manyProducts(t, db, 300)
	ctx := t.Context()
	spec, err := export.Prepare(export.Request{Entity: "products", Format: "csv", Fields: []string{"id", "name", "stock"}})
	if err != nil {
		t.Fatal(err)
	}
	holder, err := db.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	snap, id, err := catalog.ExportSnapshot(ctx, holder)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = snap.Rollback(context.WithoutCancel(ctx)) }()
	bounds, err := spec.Query.Bounds(ctx, snap, 50)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer // the export as the snapshot sees it
	if _, err := export.Run(ctx, snap, spec, &want, nil); err != nil {
		t.Fatal(err)
	}

	// The catalog changes after the snapshot: at the start, the middle and the end of the keys.
	if _, err := db.Exec(ctx, `
		UPDATE products SET name = 'changed', stock = 999 WHERE id % 10 = 3;
		DELETE FROM products WHERE id IN (1, 150, 251, 399);
		INSERT INTO products (id, sku, name, price) VALUES (2, 'NEW-2', 'inserted', 1) ON CONFLICT (id) DO NOTHING;
		INSERT INTO products (id, sku, name, price) VALUES (175, 'NEW-175', 'inserted', 1), (1000, 'NEW-1000', 'inserted', 1)
			ON CONFLICT (id) DO NOTHING;`); err != nil {
		t.Fatal(err)
	}
	var now bytes.Buffer
	if _, err := export.Run(ctx, db, spec, &now, nil); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(now.Bytes(), want.Bytes()) {
		t.Fatal("the changes did not change the export: the test shows nothing")
	}

	got := runRanges(t, ctx, spec, bounds, func(i int) (catalog.Querier, func()) {
		conn, err := db.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := catalog.SetSnapshot(ctx, conn, id)
		if err != nil {
			conn.Release()
			t.Fatal(err)
		}
		return tx, func() {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			conn.Release()
		}
	})
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("ranges over the snapshot: %d bytes, the snapshot's export %d", len(got), want.Len())
	}
	lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(string(got), "\ufeff")), "\n")
	if len(lines) != 1+4+300 || strings.Contains(string(got), "changed") || strings.Contains(string(got), "inserted") {
		t.Errorf("%d lines, want the header and the 304 products of the snapshot, none changed", len(lines))
	}
	if _, err := catalog.SetSnapshot(ctx, db, "'; DROP TABLE products; --"); err == nil { // refused before any SQL
		t.Error("a snapshot id that is not one was used")
	}
}

// TestRangeRefusesWhatCannotBeSplit: a JSON array, a workbook, a compressed file and an export
// with relations are one piece each.
func TestRangeRefusesWhatCannotBeSplit(t *testing.T) {
	t.Parallel()
	for _, req := range []export.Request{
		{Entity: "products", Format: "json"},
		{Entity: "products", Format: "excel"},
		{Entity: "products", Format: "csv", Compression: "gzip"},
		{Entity: "products", Format: "json", Options: map[string]any{"lines": true, "include_relations": true}},
	} {
		spec, err := export.Prepare(req)
		if err != nil {
			t.Fatal(err)
		}
		if ok, why := spec.Splittable(); ok || why == "" {
			t.Errorf("%+v splittable (%v, %q)", req, ok, why)
		}
		lo := int64(5)
		if _, err := export.RunRange(t.Context(), nil, spec, &lo, nil, &bytes.Buffer{}, nil); err == nil {
			t.Errorf("%+v: a range was written", req)
		}
	}
}
