package catalog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
)

// generated is a catalog of 2,500 products spread over every filter's values, a category tree
// three levels deep, and products with zero, one or two suppliers (some keys without relation
// rows, between keys with some).
var generated = struct {
	once sync.Once
	url  string
}{}

const generatedRows = `
	INSERT INTO categories (id, parent_id, name, slug, path)
		SELECT 1, NULL, 'Home', 'home', 'Home';
	INSERT INTO categories (id, parent_id, name, slug, path)
		SELECT i, 1, 'C' || i, 'c' || i, 'Home > C' || i FROM generate_series(2, 6) i;
	INSERT INTO categories (id, parent_id, name, slug, path)
		SELECT i, 2 + (i - 7) % 5, 'C' || i, 'c' || i, 'Home > C' || (2 + (i - 7) % 5) || ' > C' || i
		FROM generate_series(7, 20) i;
	INSERT INTO suppliers (id, code, name, email, phone, country, city, active, created_at, updated_at)
		SELECT i, 'S' || i, 'Supplier ' || i, 's' || i || '@x.fr', '+33', (ARRAY['FR','DE','IT','ES'])[1 + i % 4],
		       'City', i % 3 <> 0, '2025-01-01Z', timestamptz '2025-01-01Z' + i * interval '10 days'
		FROM generate_series(1, 20) i;
	INSERT INTO products (id, sku, name, description, brand, ean, price, currency, stock, status, category_id,
	                      weight_grams, attributes, created_at, updated_at)
		SELECT i, 'SKU-' || i, CASE WHEN i % 11 = 0 THEN 'Câble ' || i ELSE 'Product ' || i END, 'd',
		       'B' || i % 7, lpad(i::text, 13, '0'), (i % 1000) / 10.0, 'EUR', i % 37,
		       (ARRAY['active','draft','archived'])[1 + i % 3],
		       CASE WHEN i % 50 = 0 THEN NULL ELSE 1 + i % 20 END, NULL, '{}',
		       timestamptz '2025-01-01Z' + i * interval '1 hour', timestamptz '2025-06-01Z' + i * interval '1 hour'
		FROM generate_series(1, 2500) i;
	INSERT INTO product_suppliers (product_id, supplier_id, supplier_sku, cost_price, lead_time_days, is_primary)
		SELECT i, 1 + i % 20, 'P' || i, (i % 100) / 10.0, i % 9, true FROM generate_series(1, 2500) i WHERE i % 100 <> 0
		UNION ALL
		SELECT i, 1 + (i + 5) % 20, 'Q' || i, 1.25, 2, false FROM generate_series(1, 2500) i WHERE i % 3 = 0;`

func newGenerated(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := pgdbtest.NewDatabase(t, "catalogfilters")
	schema, err := os.ReadFile("../../dev/sql/catalog.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), string(schema)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), generatedRows); err != nil {
		t.Fatal(err)
	}
	return pool
}

// TestEveryFilterMatchesItsSQL checks each filter's Count and Rows against a count written by
// hand in SQL, independent of the builder.
func TestEveryFilterMatchesItsSQL(t *testing.T) {
	t.Parallel()
	db := newGenerated(t)
	ctx := t.Context()
	tests := []struct {
		entity  string
		filters map[string]any
		where   string // the hand-written condition
	}{
		{"products", map[string]any{"status": "active"}, "status = 'active'"},
		{"products", map[string]any{"status": "active,draft"}, "status IN ('active', 'draft')"},
		{"products", map[string]any{"category_id": []any{2.0, 7.0}}, "category_id IN (2, 7)"},
		{"products", map[string]any{"category_id": "2", "include_subcategories": true},
			"category_id IN (2, 7, 12, 17)"},
		{"products", map[string]any{"category_id": []any{1.0}, "include_subcategories": "true"}, "category_id IS NOT NULL"},
		{"products", map[string]any{"category_id": []any{1.0}, "include_subcategories": false}, "category_id = 1"},
		{"products", map[string]any{"supplier_id": []any{3.0}}, "id IN (SELECT product_id FROM product_suppliers WHERE supplier_id = 3)"},
		{"products", map[string]any{"supplier_id": "3,4"}, "id IN (SELECT product_id FROM product_suppliers WHERE supplier_id IN (3, 4))"},
		{"products", map[string]any{"brand": "B3"}, "brand = 'B3'"},
		{"products", map[string]any{"price_min": 10.0}, "price >= 10"},
		{"products", map[string]any{"price_max": "9.95"}, "price <= 9.95"},
		{"products", map[string]any{"price_min": 10, "price_max": 20.5}, "price BETWEEN 10 AND 20.5"},
		{"products", map[string]any{"stock_min": 30.0}, "stock >= 30"},
		{"products", map[string]any{"stock_max": "0"}, "stock <= 0"},
		{"products", map[string]any{"stock_min": 5, "stock_max": 5}, "stock = 5"},
		{"products", map[string]any{"updated_since": "2025-06-30T00:00:00+02:00"}, "updated_at >= '2025-06-29T22:00:00Z'"},
		{"products", map[string]any{"created_since": "2025-03-01T00:00:00Z"}, "created_at >= '2025-03-01T00:00:00Z'"},
		{"products", map[string]any{"search": "CÂBLE"}, "name ILIKE '%câble%'"},
		{"products", map[string]any{"search": "sku-12"}, "sku ILIKE 'sku-12%'"},
		{"products", map[string]any{"search": "0000000000777"}, "ean = '0000000000777'"},
		{"products", map[string]any{"search": "_"}, "false"},
		{"products", map[string]any{"ids": []any{1.0, 2.0, 2500.0, 99999.0}}, "id IN (1, 2, 2500)"},
		{"products", map[string]any{"ids": "5, 6"}, "id IN (5, 6)"},
		{"products", map[string]any{"status": "archived", "brand": "B1", "stock_min": 10}, "status = 'archived' AND brand = 'B1' AND stock >= 10"},
		{"products", map[string]any{"status": nil}, "true"},
		{"suppliers", map[string]any{"country": "fr"}, "country = 'FR'"},
		{"suppliers", map[string]any{"country": []any{"DE", "it"}}, "country IN ('DE', 'IT')"},
		{"suppliers", map[string]any{"active": false}, "NOT active"},
		{"suppliers", map[string]any{"active": "true"}, "active"},
		{"suppliers", map[string]any{"search": "supplier 1"}, "name ILIKE 'supplier 1%'"},
		{"suppliers", map[string]any{"updated_since": "2025-03-01T00:00:00Z"}, "updated_at >= '2025-03-01T00:00:00Z'"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.entity, tt.filters), func(t *testing.T) {
			var want int64
			if err := db.QueryRow(ctx, "SELECT count(*) FROM "+tt.entity+" WHERE "+tt.where).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if want == 0 && tt.where != "false" {
				t.Fatalf("the hand-written SQL selects nothing: the case proves nothing")
			}
			q, err := catalog.NewQuery(tt.entity, nil, nil, tt.filters)
			if err != nil {
				t.Fatal(err)
			}
			count, err := q.Count(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := q.Rows(ctx, db, func([][]byte) error { return nil }, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			if count != want || rows != want {
				t.Errorf("count %d, rows %d, want %d", count, rows, want)
			}
		})
	}
}

func TestFilterValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entity  string
		filters map[string]any
		want    string // the filter named in the error
	}{
		{"stock not a number", "products", map[string]any{"stock_min": "lots"}, "stock_min"},
		{"stock fractional", "products", map[string]any{"stock_max": 1.5}, "stock_max"},
		{"stock too large", "products", map[string]any{"stock_max": 1e12}, "stock_max"},
		{"stock min over max", "products", map[string]any{"stock_min": 9, "stock_max": 1}, "stock_min"},
		{"created_since not RFC 3339", "products", map[string]any{"created_since": "2026-01-01"}, "created_since"},
		{"created_since a number", "products", map[string]any{"created_since": 20260101.0}, "created_since"},
		{"ids empty", "products", map[string]any{"ids": []any{}}, "ids"},
		{"ids negative", "products", map[string]any{"ids": []any{-1.0}}, "ids"},
		{"ids text", "products", map[string]any{"ids": "1,x"}, "ids"},
		{"include_subcategories not bool", "products", map[string]any{"include_subcategories": "yes please"}, "include_subcategories"},
		{"country of three letters", "suppliers", map[string]any{"country": "FRA"}, "country"},
		{"country with digits", "suppliers", map[string]any{"country": "F1"}, "country"},
		{"ids on suppliers", "suppliers", map[string]any{"ids": "1"}, "ids"},
		{"search too long", "products", map[string]any{"search": strings.Repeat("x", 201)}, "search"},
		{"search not text", "products", map[string]any{"search": 12.0}, "search"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := catalog.NewQuery(tt.entity, nil, nil, tt.filters)
			var fe *catalog.FilterError
			if !errors.As(err, &fe) || fe.Filter != tt.want {
				t.Errorf("err = %v, want a filter error on %s", err, tt.want)
			}
		})
	}
}

func TestRelations(t *testing.T) {
	t.Parallel()
	db := newGenerated(t)
	ctx := t.Context()

	q, err := catalog.NewQuery("products", []string{"sku"}, nil, map[string]any{"ids": "3, 100, 1000, 1001, 2500"})
	if err != nil {
		t.Fatal(err)
	}
	q.IncludeRelations()
	var names []string
	for _, c := range q.Columns() {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "sku,category,suppliers" {
		t.Fatalf("columns = %s", got)
	}
	type supplier struct {
		SupplierID   int64   `json:"supplier_id"`
		Code         string  `json:"code"`
		Name         string  `json:"name"`
		SupplierSKU  string  `json:"supplier_sku"`
		CostPrice    float64 `json:"cost_price"`
		LeadTimeDays int     `json:"lead_time_days"`
		IsPrimary    bool    `json:"is_primary"`
	}
	got := map[string][]supplier{}
	cats := map[string]string{}
	_, err = q.Rows(ctx, db, func(cells [][]byte) error {
		var s []supplier
		if err := json.Unmarshal(cells[2], &s); err != nil {
			return fmt.Errorf("suppliers of %s: %w", cells[0], err)
		}
		got[string(cells[0])] = s
		cats[string(cells[0])] = string(cells[1])
		return nil
	}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// 3: primary 4 and secondary 9; 100: no primary (i%100=0), no secondary; 1000: none, 1001: primary 2.
	if s := got["SKU-3"]; len(s) != 2 || !s[0].IsPrimary || s[0].SupplierID != 4 || s[0].Code != "S4" ||
		s[0].SupplierSKU != "P3" || s[0].CostPrice != 0.3 || s[0].LeadTimeDays != 3 || s[1].SupplierID != 9 || s[1].IsPrimary {
		t.Errorf("SKU-3 suppliers = %+v", s)
	}
	if s, ok := got["SKU-100"]; !ok || s == nil || len(s) != 0 {
		t.Errorf("SKU-100 suppliers = %#v, want an empty array", s)
	}
	if s := got["SKU-1001"]; len(s) != 1 || s[0].SupplierID != 2 {
		t.Errorf("SKU-1001 suppliers = %+v", s)
	}
	if cats["SKU-100"] != "" {
		t.Errorf("SKU-100 has no category, got %q", cats["SKU-100"])
	}
	var cat struct {
		ID       int64  `json:"id"`
		ParentID *int64 `json:"parent_id"`
		Path     string `json:"path"`
	}
	if err := json.Unmarshal([]byte(cats["SKU-3"]), &cat); err != nil || cat.ID != 4 || cat.ParentID == nil || *cat.ParentID != 1 || cat.Path != "Home > C4" {
		t.Errorf("SKU-3 category = %s (%v)", cats["SKU-3"], err)
	}

	// Across batch boundaries every product gets its own suppliers, and nothing is dropped.
	all, err := catalog.NewQuery("products", []string{"id"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	all.IncludeRelations()
	n, err := all.Rows(ctx, db, func(cells [][]byte) error {
		var s []supplier
		if err := json.Unmarshal(cells[2], &s); err != nil {
			return err
		}
		var id int64
		fmt.Sscan(string(cells[0]), &id)
		want := 0
		if id%100 != 0 {
			want++
		}
		if id%3 == 0 {
			want++
		}
		if len(s) != want || (id%100 != 0 && s[0].SupplierSKU != fmt.Sprint("P", id)) {
			return fmt.Errorf("product %d: suppliers %+v, want %d", id, s, want)
		}
		return nil
	}, nil, 0)
	if err != nil || n != 2500 {
		t.Fatalf("Rows = %d, %v", n, err)
	}

	sq, err := catalog.NewQuery("suppliers", []string{"code"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sq.IncludeRelations()
	counts := map[string]string{}
	if _, err := sq.Rows(ctx, db, func(cells [][]byte) error {
		counts[string(cells[0])] = string(cells[1])
		return nil
	}, nil, 0); err != nil {
		t.Fatal(err)
	}
	for code, c := range counts {
		var want string
		if err := db.QueryRow(ctx, `SELECT count(*)::text FROM product_suppliers ps JOIN suppliers s ON s.id = ps.supplier_id
			WHERE s.code = $1`, code).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if c != want {
			t.Errorf("%s product_count = %s, want %s", code, c, want)
		}
	}
	if len(counts) != 20 {
		t.Errorf("%d suppliers, want 20", len(counts))
	}
}

// TestTwoPrimarySuppliers: the contract does not promise one primary supplier per product; a
// product with two still comes out once.
func TestTwoPrimarySuppliers(t *testing.T) {
	t.Parallel()
	db := newGenerated(t)
	ctx := t.Context()
	if _, err := db.Exec(ctx, `DROP INDEX product_suppliers_primary_uidx;
		UPDATE product_suppliers SET is_primary = true WHERE product_id IN (3, 6, 9)`); err != nil {
		t.Fatal(err)
	}
	q, err := catalog.NewQuery("products", []string{"id", "supplier_id"}, nil, map[string]any{"ids": "3,4,6,9"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if _, err := q.Rows(ctx, db, func(cells [][]byte) error {
		ids = append(ids, string(cells[0]))
		return nil
	}, nil, 0); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids, ","); got != "3,4,6,9" {
		t.Errorf("ids = %s, want 3,4,6,9", got)
	}
}

func TestSheetQuery(t *testing.T) {
	t.Parallel()
	db := newGenerated(t)
	q, err := catalog.SheetQuery("categories")
	if err != nil {
		t.Fatal(err)
	}
	var last []string
	n, err := q.Rows(t.Context(), db, func(cells [][]byte) error {
		last = last[:0]
		for _, c := range cells {
			last = append(last, string(c))
		}
		return nil
	}, nil, 0)
	if err != nil || n != 20 {
		t.Fatalf("Rows = %d, %v", n, err)
	}
	if got := strings.Join(last, "|"); got != "20|5|C20|c20|Home > C5 > C20" {
		t.Errorf("last category = %s", got)
	}
	if _, err := catalog.SheetQuery("orders"); err == nil {
		t.Error("SheetQuery(orders) succeeded")
	}
	if _, ok := catalog.Lookup("categories"); ok {
		t.Error("categories must not be an export entity of its own")
	}
}
