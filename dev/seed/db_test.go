package seed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testDB connects to a throwaway database created next to $CATALOG_DATABASE_URL and dropped at
// the end of the test; it skips the test when no server is reachable.
func testDB(t *testing.T) *pgx.Conn {
	t.Helper()
	url := os.Getenv("CATALOG_DATABASE_URL")
	if url == "" {
		t.Skip("CATALOG_DATABASE_URL not set: skipping the database test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Skipf("no database reachable at CATALOG_DATABASE_URL: %v", err)
	}
	name := fmt.Sprintf("seedtest_%d_%08x", os.Getpid(), rand.Uint32())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		t.Fatalf("creating %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
		admin.Close(ctx)
	})
	cfg := admin.Config().Copy()
	cfg.Database = name
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connecting to %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestSeedDatabase(t *testing.T) {
	conn := testDB(t)
	ctx := t.Context()
	one := func(q string, args ...any) (v string) {
		t.Helper()
		if err := conn.QueryRow(ctx, q, args...).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return v
	}

	if has, err := HasProducts(ctx, conn); err != nil || has {
		t.Fatalf("HasProducts on an empty database: %v, %v", has, err)
	}
	if err := ApplySchema(ctx, conn, ""); err != nil {
		t.Fatal(err)
	}
	if err := ApplySchema(ctx, conn, ""); err != nil { // idempotent
		t.Fatalf("second ApplySchema: %v", err)
	}
	// An index of someone else's must survive the reseed like ours.
	if _, err := conn.Exec(ctx, "CREATE INDEX extra_lower_name_idx ON products (lower(name))"); err != nil {
		t.Fatal(err)
	}
	const objects = `SELECT (SELECT count(*) FROM pg_indexes WHERE tablename = ANY($1)) || '/' ||
		(SELECT count(*) FROM pg_constraint WHERE conrelid = ANY($1::text[]::regclass[]))`
	before := one(objects, Tables)

	const n = 2000
	st, err := Seed(ctx, conn, Config{Products: n})
	if err != nil {
		t.Fatal(err)
	}
	if st.Products != n || st.Suppliers != 20 || st.Categories != int64(len(tree.categories)) || st.Links < n {
		t.Fatalf("stats %+v", st)
	}
	counts := fmt.Sprintf("%d/%d/%d/%d", st.Categories, st.Suppliers, st.Products, st.Links)
	if got := one(`SELECT (SELECT count(*) FROM categories) || '/' || (SELECT count(*) FROM suppliers) || '/' ||
		(SELECT count(*) FROM products) || '/' || (SELECT count(*) FROM product_suppliers)`); got != counts {
		t.Errorf("table counts %s, stats %s", got, counts)
	}
	if after := one(objects, Tables); after != before {
		t.Errorf("indexes/constraints before the seed %s, after %s", before, after)
	}
	if got := one(`SELECT count(*) FROM (SELECT product_id FROM product_suppliers GROUP BY 1
		HAVING count(*) FILTER (WHERE is_primary) <> 1) x`); got != "0" {
		t.Errorf("%s products without exactly one primary supplier", got)
	}
	if got := one(`SELECT count(*) FROM products WHERE category_id IS NULL`); got == "0" {
		t.Error("no product without category")
	}

	// Values arrive byte for byte, numeric included.
	src := newProductSource(n)
	for src.Next() {
		v, _ := src.Values()
		if id := v[0].(int64); id == 7 || id == 57 || id%97 == 0 {
			var name, desc, price, attrs string
			if err := conn.QueryRow(ctx, `SELECT name, description, price::text, attributes::text FROM products WHERE id = $1`,
				id).Scan(&name, &desc, &price, &attrs); err != nil {
				t.Fatal(err)
			}
			if name != string(v[2].([]byte)) || desc != string(v[3].([]byte)) || price != v[6].(Cents).String() {
				t.Errorf("product %d: stored %q %q %s, generated %q %q %s", id, name, desc, price,
					v[2], v[3], v[6].(Cents))
			}
		}
	}

	digest := `SELECT md5(string_agg(p::text, E'\n' ORDER BY id)) FROM products p`
	first := one(digest)

	// New rows get ids after the seeded ones.
	if got := one(`INSERT INTO products (sku, name, price) VALUES ('TEST-1', 'test', 1) RETURNING id::text`); got != fmt.Sprint(n+1) {
		t.Errorf("next product id %s, want %d", got, n+1)
	}
	// Reseeding replaces everything and gives the same data.
	if _, err := Seed(ctx, conn, Config{Products: n}); err != nil {
		t.Fatalf("reseed: %v", err)
	}
	if again := one(digest); again != first {
		t.Error("reseeding the same N gave different products")
	}
	if has, err := HasProducts(ctx, conn); err != nil || !has {
		t.Fatalf("HasProducts after a seed: %v, %v", has, err)
	}
	// A failed load leaves the previous catalog in place.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Seed(cctx, conn, Config{Products: 10}); err == nil {
		t.Fatal("seed with a cancelled context succeeded")
	}
	if got := one(`SELECT count(*) FROM products`); got != fmt.Sprint(n) {
		t.Errorf("after a failed seed: %s products, want %d", got, n)
	}
}
