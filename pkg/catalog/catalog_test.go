package catalog_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
)

// newCatalog creates a throwaway catalog with the given schema and a few tricky rows.
func newCatalog(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgdbtest.NewDatabase(t, "catalogtest")
	schema, err := os.ReadFile("../../dev/sql/catalog.sql")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, string(schema)); err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `
		INSERT INTO categories (id, parent_id, name, slug, path) VALUES
			(1, NULL, 'Home', 'home', 'Home'), (2, 1, 'Audio', 'audio', 'Home > Audio');
		INSERT INTO suppliers (id, code, name, email, phone, country, city, active, created_at, updated_at) VALUES
			(1, 'S1', 'Acme "Paris"', 'a@x.fr', '+33 1', 'FR', 'Paris', true, '2025-01-01Z', '2025-06-01Z'),
			(2, 'S2', 'Beta', 'b@x.de', '0049', 'DE', 'Köln', false, '2025-01-01Z', '2026-02-01Z');
		INSERT INTO products (id, sku, name, description, brand, ean, price, currency, stock, status, category_id,
		                      weight_grams, attributes, created_at, updated_at) VALUES
			(1, 'SKU-1', 'Câble "Ultra", 2m', E'line1\nline2', 'Acme', '4006381333931', 12.5, 'EUR', 3, 'active', 2, 120, '{"color":"red"}', '2025-01-01Z', '2026-03-01T10:00:00Z'),
			(2, 'SKU-2', '=HYPERLINK("x")', '', 'Beta', '0000000000017', 1000000.00, 'EUR', 0, 'draft', NULL, NULL, '{}', '2025-01-01Z', '2025-03-01Z'),
			(3, 'SKU-3', 'Casque 🎧 sans fil', '-50% promo', 'Acme', '4006381333948', 0.5, 'EUR', 10, 'archived', 1, 5, '{}', '2025-01-01Z', '2025-03-01Z');
		INSERT INTO product_suppliers VALUES (1, 1, 'A-1', 5.00, 3, true), (1, 2, 'B-1', 6.00, 9, false), (3, 2, 'B-3', 0.1, 1, true);`)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func TestRowsAndCounts(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	ctx := context.Background()
	q, err := catalog.NewQuery("products", []string{"id", "name", "price", "category_path", "supplier_name", "updated_at", "weight_grams"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	n, err := q.Rows(ctx, db, func(cells [][]byte) error {
		parts := make([]string, len(cells))
		for i, c := range cells {
			if c == nil {
				parts[i] = "<NULL>"
			} else {
				parts[i] = string(c)
			}
		}
		got = append(got, strings.Join(parts, "|"))
		return nil
	}, nil, 0)
	if err != nil || n != 3 {
		t.Fatalf("Rows = %d, %v", n, err)
	}
	want := []string{
		`1|Câble "Ultra", 2m|12.50|Home > Audio|Acme "Paris"|2026-03-01T10:00:00Z|120`,
		`2|=HYPERLINK("x")|1000000.00|<NULL>|<NULL>|2025-03-01T00:00:00Z|<NULL>`,
		`3|Casque 🎧 sans fil|0.50|Home|Beta|2025-03-01T00:00:00Z|5`,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d = %s\n        want %s", i, got[i], want[i])
		}
	}

	// Every filter's count equals the SQL count it stands for.
	filters := []struct {
		entity  string
		filters map[string]any
		want    int64
	}{
		{"products", map[string]any{"status": "active"}, 1},
		{"products", map[string]any{"status": []any{"active", "draft"}}, 2},
		{"products", map[string]any{"category_id": []any{2.0}}, 1},
		{"products", map[string]any{"supplier_id": []any{2.0}}, 2},
		{"products", map[string]any{"brand": "Acme"}, 2},
		{"products", map[string]any{"price_min": 1.0, "price_max": 100.0}, 1},
		{"products", map[string]any{"updated_since": "2026-01-01T00:00:00Z"}, 1},
		{"products", map[string]any{"search": "casque"}, 1},
		{"products", map[string]any{"search": "sku-"}, 3},
		{"products", map[string]any{"search": "%"}, 0},
		{"suppliers", map[string]any{"country": "DE"}, 1},
		{"suppliers", map[string]any{"active": true}, 1},
		{"suppliers", map[string]any{"search": "acme"}, 1},
	}
	for _, f := range filters {
		q, err := catalog.NewQuery(f.entity, nil, nil, f.filters)
		if err != nil {
			t.Fatalf("%v: %v", f.filters, err)
		}
		c, err := q.Count(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := q.Rows(ctx, db, func([][]byte) error { return nil }, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if c != f.want || rows != f.want {
			t.Errorf("%s %v: count %d, rows %d, want %d", f.entity, f.filters, c, rows, f.want)
		}
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		entity        string
		fields, excl  []string
		filters       map[string]any
		wantField     string
		wantFilterErr string
	}{
		{name: "unknown field", entity: "products", fields: []string{"sku", "colour"}, wantField: "colour"},
		{name: "unknown excluded field", entity: "products", excl: []string{"colour"}, wantField: "colour"},
		{name: "unknown filter", entity: "products", filters: map[string]any{"colour": "red"}, wantFilterErr: "colour"},
		{name: "supplier filter on products", entity: "products", filters: map[string]any{"country": "FR"}, wantFilterErr: "country"},
		{name: "bad status", entity: "products", filters: map[string]any{"status": "deleted"}, wantFilterErr: "status"},
		{name: "bad price", entity: "products", filters: map[string]any{"price_min": "x"}, wantFilterErr: "price_min"},
		{name: "negative price", entity: "products", filters: map[string]any{"price_max": -1.0}, wantFilterErr: "price_max"},
		{name: "min over max", entity: "products", filters: map[string]any{"price_min": 10.0, "price_max": 1.0}, wantFilterErr: "price_min"},
		{name: "bad id list", entity: "products", filters: map[string]any{"category_id": []any{1.5}}, wantFilterErr: "category_id"},
		{name: "bad time", entity: "suppliers", filters: map[string]any{"updated_since": "2026-13-01"}, wantFilterErr: "updated_since"},
		{name: "bad bool", entity: "suppliers", filters: map[string]any{"active": "maybe"}, wantFilterErr: "active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := catalog.NewQuery(tt.entity, tt.fields, tt.excl, tt.filters)
			var ue catalog.ErrUnknownField
			var fe *catalog.FilterError
			switch {
			case tt.wantField != "":
				if !errors.As(err, &ue) || ue.Name != tt.wantField {
					t.Errorf("err = %v, want unknown field %s", err, tt.wantField)
				}
			case !errors.As(err, &fe) || fe.Filter != tt.wantFilterErr:
				t.Errorf("err = %v, want filter error on %s", err, tt.wantFilterErr)
			}
		})
	}
	q, err := catalog.NewQuery("products", []string{"price", "sku"}, []string{"price"}, nil)
	if err != nil || len(q.Fields) != 1 || q.Fields[0].Name != "sku" {
		t.Errorf("fields+exclude = %v, %v", q, err)
	}
}
