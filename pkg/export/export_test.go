package export_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/xuri/excelize/v2"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/pkg/exportfmt"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPrepare(t *testing.T) {
	t.Parallel()
	def := exportfmt.DefaultCSVOptions()
	with := func(edit func(*exportfmt.CSVOptions)) exportfmt.CSVOptions {
		o := def
		edit(&o)
		return o
	}
	products := func(edit func(*export.Request)) export.Request {
		r := export.Request{Entity: "products", Format: "csv"}
		if edit != nil {
			edit(&r)
		}
		return r
	}
	opts := func(o map[string]any) export.Request { return products(func(r *export.Request) { r.Options = o }) }
	tests := []struct {
		name          string
		req           export.Request
		wantField     string // a *ValidationError naming this field
		wantType      string // content type, when not CSV
		wantSheets    []string
		wantCSV       exportfmt.CSVOptions
		wantFile      string
		wantColumns   []string
		skipCSVChecks bool
	}{
		// entity and format
		{name: "defaults", req: products(nil), wantCSV: def, wantFile: "products.csv"},
		{name: "suppliers", req: export.Request{Entity: "suppliers", Format: "csv"}, wantCSV: def, wantFile: "suppliers.csv",
			wantColumns: []string{"id", "code", "name", "email", "phone", "country", "city", "active", "created_at", "updated_at"}},
		{name: "unknown entity", req: export.Request{Entity: "orders", Format: "csv"}, wantField: "entity"},
		{name: "no entity", req: export.Request{Format: "csv"}, wantField: "entity"},
		{name: "entity is case sensitive", req: export.Request{Entity: "Products", Format: "csv"}, wantField: "entity"},
		{name: "unknown format", req: export.Request{Entity: "products", Format: "xml"}, wantField: "format"},
		{name: "no format", req: export.Request{Entity: "products"}, wantField: "format"},
		{name: "excel", req: export.Request{Entity: "products", Format: "excel"}, wantCSV: def, wantFile: "products.xlsx",
			wantType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", wantSheets: []string{"products"}},
		{name: "json", req: export.Request{Entity: "suppliers", Format: "json"}, wantCSV: def, wantFile: "suppliers.json",
			wantType: "application/json; charset=utf-8"},
		{name: "unknown entity before format", req: export.Request{Entity: "orders", Format: "excel"}, wantField: "entity"},

		// fields
		{name: "fields set the columns and their order", req: products(func(r *export.Request) {
			r.Fields = []string{"price", "sku", "category_path", "supplier_name"}
		}), wantCSV: def, wantFile: "products.csv", wantColumns: []string{"price", "sku", "category_path", "supplier_name"}},
		{name: "fields minus exclude_fields", req: products(func(r *export.Request) {
			r.Fields = []string{"sku", "name", "price"}
			r.ExcludeFields = []string{"name"}
		}), wantCSV: def, wantFile: "products.csv", wantColumns: []string{"sku", "price"}},
		{name: "defaults minus exclude_fields", req: products(func(r *export.Request) {
			r.ExcludeFields = []string{"description", "ean", "created_at", "updated_at", "category_id", "category_name",
				"supplier_id", "supplier_name", "currency", "brand"}
		}), wantCSV: def, wantFile: "products.csv", wantColumns: []string{"id", "sku", "name", "price", "stock", "status"}},
		{name: "unknown field", req: products(func(r *export.Request) { r.Fields = []string{"sku", "colour"} }), wantField: "fields"},
		{name: "repeated field", req: products(func(r *export.Request) { r.Fields = []string{"sku", "sku"} }), wantField: "fields"},
		{name: "supplier field on products", req: products(func(r *export.Request) { r.Fields = []string{"code"} }), wantField: "fields"},
		{name: "unknown excluded field", req: products(func(r *export.Request) { r.ExcludeFields = []string{"colour"} }), wantField: "exclude_fields"},
		{name: "nothing left", req: products(func(r *export.Request) {
			r.Fields = []string{"sku"}
			r.ExcludeFields = []string{"sku"}
		}), wantField: "fields"},

		// filters
		{name: "every product filter", req: products(func(r *export.Request) {
			r.Filters = map[string]any{"status": []any{"active", "draft"}, "category_id": []any{3.0, 7.0}, "supplier_id": 12.0,
				"brand": "Acme", "price_min": 10.0, "price_max": 99.9, "updated_since": "2026-01-01T00:00:00Z", "search": "cable"}
		}), wantCSV: def, wantFile: "products.csv"},
		{name: "unknown filter", req: products(func(r *export.Request) { r.Filters = map[string]any{"colour": "red"} }), wantField: "filters.colour"},
		{name: "supplier filter on products", req: products(func(r *export.Request) { r.Filters = map[string]any{"country": "FR"} }), wantField: "filters.country"},
		{name: "product filter on suppliers", req: export.Request{Entity: "suppliers", Format: "csv", Filters: map[string]any{"brand": "Acme"}}, wantField: "filters.brand"},
		{name: "bad status", req: products(func(r *export.Request) { r.Filters = map[string]any{"status": "deleted"} }), wantField: "filters.status"},
		{name: "bad price", req: products(func(r *export.Request) { r.Filters = map[string]any{"price_min": "cheap"} }), wantField: "filters.price_min"},
		{name: "negative price", req: products(func(r *export.Request) { r.Filters = map[string]any{"price_max": -1.0} }), wantField: "filters.price_max"},
		{name: "min over max", req: products(func(r *export.Request) { r.Filters = map[string]any{"price_min": 50.0, "price_max": 5.0} }), wantField: "filters.price_min"},
		{name: "bad id list", req: products(func(r *export.Request) { r.Filters = map[string]any{"category_id": []any{1.5}} }), wantField: "filters.category_id"},
		{name: "bad time", req: products(func(r *export.Request) { r.Filters = map[string]any{"updated_since": "yesterday"} }), wantField: "filters.updated_since"},
		{name: "search too long", req: products(func(r *export.Request) { r.Filters = map[string]any{"search": strings.Repeat("x", 201)} }), wantField: "filters.search"},

		// options
		{name: "delimiter ;", req: opts(map[string]any{"delimiter": ";"}), wantCSV: with(func(o *exportfmt.CSVOptions) { o.Delimiter = ';' }), wantFile: "products.csv"},
		{name: "delimiter |", req: opts(map[string]any{"delimiter": "|"}), wantCSV: with(func(o *exportfmt.CSVOptions) { o.Delimiter = '|' }), wantFile: "products.csv"},
		{name: "delimiter ,", req: opts(map[string]any{"delimiter": ","}), wantCSV: def, wantFile: "products.csv"},
		{name: "delimiter tab character", req: opts(map[string]any{"delimiter": "\t"}), wantCSV: with(func(o *exportfmt.CSVOptions) { o.Delimiter = '\t' }), wantFile: "products.csv"},
		{name: "delimiter tab word", req: opts(map[string]any{"delimiter": "tab"}), wantCSV: with(func(o *exportfmt.CSVOptions) { o.Delimiter = '\t' }), wantFile: "products.csv"},
		{name: `delimiter \t escape`, req: opts(map[string]any{"delimiter": `\t`}), wantCSV: with(func(o *exportfmt.CSVOptions) { o.Delimiter = '\t' }), wantFile: "products.csv"},
		{name: "delimiter two characters", req: opts(map[string]any{"delimiter": ";;"}), wantField: "options.delimiter"},
		{name: "delimiter colon", req: opts(map[string]any{"delimiter": ":"}), wantField: "options.delimiter"},
		{name: "delimiter empty", req: opts(map[string]any{"delimiter": ""}), wantField: "options.delimiter"},
		{name: "delimiter not a string", req: opts(map[string]any{"delimiter": 59.0}), wantField: "options.delimiter"},
		{name: "decimal comma with semicolons", req: opts(map[string]any{"delimiter": ";", "decimal": ","}),
			wantCSV: with(func(o *exportfmt.CSVOptions) { o.Delimiter, o.Decimal = ';', ',' }), wantFile: "products.csv"},
		{name: "decimal dot", req: opts(map[string]any{"decimal": "."}), wantCSV: def, wantFile: "products.csv"},
		{name: "decimal comma alone brings semicolons", req: opts(map[string]any{"decimal": ","}),
			wantCSV: with(func(o *exportfmt.CSVOptions) { o.Delimiter, o.Decimal = ';', ',' }), wantFile: "products.csv"},
		{name: "decimal comma with commas", req: opts(map[string]any{"decimal": ",", "delimiter": ","}), wantField: "options.decimal"},
		{name: "decimal other", req: opts(map[string]any{"decimal": "·"}), wantField: "options.decimal"},
		{name: "line ending crlf", req: opts(map[string]any{"line_ending": "crlf"}), wantCSV: with(func(o *exportfmt.CSVOptions) { o.CRLF = true }), wantFile: "products.csv"},
		{name: "line ending CRLF", req: opts(map[string]any{"line_ending": "CRLF"}), wantCSV: with(func(o *exportfmt.CSVOptions) { o.CRLF = true }), wantFile: "products.csv"},
		{name: "line ending lf", req: opts(map[string]any{"line_ending": "lf"}), wantCSV: def, wantFile: "products.csv"},
		{name: "line ending cr", req: opts(map[string]any{"line_ending": "cr"}), wantField: "options.line_ending"},
		{name: "line ending not a string", req: opts(map[string]any{"line_ending": true}), wantField: "options.line_ending"},
		{name: "bom false", req: opts(map[string]any{"bom": false}), wantCSV: with(func(o *exportfmt.CSVOptions) { o.BOM = false }), wantFile: "products.csv"},
		{name: `bom "false"`, req: opts(map[string]any{"bom": "false"}), wantCSV: with(func(o *exportfmt.CSVOptions) { o.BOM = false }), wantFile: "products.csv"},
		{name: `bom "true"`, req: opts(map[string]any{"bom": "true"}), wantCSV: def, wantFile: "products.csv"},
		{name: "bom true", req: opts(map[string]any{"bom": true}), wantCSV: def, wantFile: "products.csv"},
		{name: "bom yes", req: opts(map[string]any{"bom": "yes"}), wantField: "options.bom"},
		{name: "bom 1", req: opts(map[string]any{"bom": 1.0}), wantField: "options.bom"},
		{name: "formula_escape false", req: opts(map[string]any{"formula_escape": false}), wantCSV: with(func(o *exportfmt.CSVOptions) { o.FormulaEscape = false }), wantFile: "products.csv"},
		{name: `formula_escape "false"`, req: opts(map[string]any{"formula_escape": "false"}), wantCSV: with(func(o *exportfmt.CSVOptions) { o.FormulaEscape = false }), wantFile: "products.csv"},
		{name: `formula_escape "true"`, req: opts(map[string]any{"formula_escape": "true"}), wantCSV: def, wantFile: "products.csv"},
		{name: "formula_escape true", req: opts(map[string]any{"formula_escape": true}), wantCSV: def, wantFile: "products.csv"},
		{name: "formula_escape null", req: opts(map[string]any{"formula_escape": nil}), wantField: "options.formula_escape"},
		{name: "formula_escape off", req: opts(map[string]any{"formula_escape": "off"}), wantField: "options.formula_escape"},
		{name: "every CSV option", req: opts(map[string]any{"delimiter": "tab", "decimal": ",", "line_ending": "crlf", "bom": "false",
			"formula_escape": false}),
			wantCSV: exportfmt.CSVOptions{Delimiter: '\t', Decimal: ',', CRLF: true}, wantFile: "products.csv"},
		{name: "a JSON option on CSV", req: opts(map[string]any{"delimiter": "tab", "lines": true}), wantField: "options.lines"},
		{name: "a CSV option on JSON", req: export.Request{Entity: "products", Format: "json", Options: map[string]any{"delimiter": ";"}},
			wantField: "options.delimiter"},
		{name: "an excel option on JSON", req: export.Request{Entity: "products", Format: "json", Options: map[string]any{"sheets": "products"}},
			wantField: "options.sheets"},
		{name: "json lines", req: export.Request{Entity: "products", Format: "json", Options: map[string]any{"lines": "true", "pretty": false,
			"include_relations": true}}, wantCSV: def, wantFile: "products.jsonl", wantType: "application/x-ndjson"},
		{name: "json pretty", req: export.Request{Entity: "products", Format: "json", Options: map[string]any{"pretty": true}},
			wantCSV: def, wantFile: "products.json", wantType: "application/json; charset=utf-8"},
		{name: "json lines not a bool", req: export.Request{Entity: "products", Format: "json", Options: map[string]any{"lines": "jsonl"}},
			wantField: "options.lines"},
		{name: "include_relations not a bool", req: export.Request{Entity: "products", Format: "json", Options: map[string]any{"include_relations": 1.0}},
			wantField: "options.include_relations"},
		{name: "excel sheets in order", req: export.Request{Entity: "suppliers", Format: "excel",
			Options: map[string]any{"sheets": []any{"categories", "suppliers", "products"}}},
			wantCSV: def, wantFile: "suppliers.xlsx", wantType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
			wantSheets: []string{"categories", "suppliers", "products"}},
		{name: "excel sheets as text", req: export.Request{Entity: "products", Format: "excel", Options: map[string]any{"sheets": "products, categories"}},
			wantCSV: def, wantFile: "products.xlsx", wantType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
			wantSheets: []string{"products", "categories"}},
		{name: "excel sheets without the entity", req: export.Request{Entity: "products", Format: "excel", Options: map[string]any{"sheets": []any{"suppliers"}}},
			wantField: "options.sheets"},
		{name: "excel unknown sheet", req: export.Request{Entity: "products", Format: "excel", Options: map[string]any{"sheets": []any{"products", "orders"}}},
			wantField: "options.sheets"},
		{name: "excel sheet twice", req: export.Request{Entity: "products", Format: "excel", Options: map[string]any{"sheets": []any{"products", "products"}}},
			wantField: "options.sheets"},
		{name: "excel sheets not a list", req: export.Request{Entity: "products", Format: "excel", Options: map[string]any{"sheets": 3.0}},
			wantField: "options.sheets"},
		{name: "unknown option", req: opts(map[string]any{"quote": `"`}), wantField: "options.quote"},

		// file name
		{name: "file name kept", req: products(func(r *export.Request) { r.FileName = "Catalogue été (v2) - final_1.csv" }),
			wantCSV: def, wantFile: "Catalogue été (v2) - final_1.csv"},
		{name: "file name of 150 characters", req: products(func(r *export.Request) { r.FileName = strings.Repeat("a", 146) + ".csv" }),
			wantCSV: def, wantFile: strings.Repeat("a", 146) + ".csv"},
		{name: "file name without extension", req: products(func(r *export.Request) { r.FileName = "nightly" }),
			wantCSV: def, wantFile: "nightly.csv"},
		{name: "file name with another format's extension", req: products(func(r *export.Request) { r.FileName = "invoice.html" }),
			wantCSV: def, wantFile: "invoice.html.csv"},
		{name: "file name extension in capitals", req: products(func(r *export.Request) { r.FileName = "DATA.CSV" }),
			wantCSV: def, wantFile: "DATA.CSV"},
		{name: "file name too long", req: products(func(r *export.Request) { r.FileName = strings.Repeat("a", 200) + ".csv" }), wantField: "file_name"},
		{name: "file name parent traversal", req: products(func(r *export.Request) { r.FileName = "../x.csv" }), wantField: "file_name"},
		{name: "file name deep traversal", req: products(func(r *export.Request) { r.FileName = "a/../../x.csv" }), wantField: "file_name"},
		{name: "file name absolute", req: products(func(r *export.Request) { r.FileName = "/etc/passwd" }), wantField: "file_name"},
		{name: "file name with a directory", req: products(func(r *export.Request) { r.FileName = "exports/x.csv" }), wantField: "file_name"},
		{name: "file name with a backslash", req: products(func(r *export.Request) { r.FileName = `..\x.csv` }), wantField: "file_name"},
		{name: "file name dot dot", req: products(func(r *export.Request) { r.FileName = ".." }), wantField: "file_name"},
		{name: "hidden file name", req: products(func(r *export.Request) { r.FileName = ".bashrc" }), wantField: "file_name"},
		{name: "file name with a quote", req: products(func(r *export.Request) { r.FileName = `a".csv` }), wantField: "file_name"},
		{name: "file name with a line break", req: products(func(r *export.Request) { r.FileName = "a\r\nX-Evil: 1.csv" }), wantField: "file_name"},
		{name: "file name with a NUL", req: products(func(r *export.Request) { r.FileName = "a\x00.csv" }), wantField: "file_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec, err := export.Prepare(tt.req)
			var ve *export.ValidationError
			switch {
			case tt.wantField != "":
				if !errors.As(err, &ve) {
					t.Fatalf("Prepare = %v (%T), want a ValidationError on %s", err, err, tt.wantField)
				}
				if ve.Field != tt.wantField || ve.Message == "" || !strings.HasPrefix(ve.Error(), tt.wantField+": ") {
					t.Errorf("ValidationError field %q message %q, want field %q", ve.Field, ve.Message, tt.wantField)
				}
				if spec != nil {
					t.Errorf("a spec came with the error")
				}
				return
			case err != nil:
				t.Fatalf("Prepare = %v", err)
			}
			if tt.wantType == "" && spec.CSV != tt.wantCSV {
				t.Errorf("CSV options %+v, want %+v", spec.CSV, tt.wantCSV)
			}
			wantType := "text/csv; charset=utf-8"
			if tt.wantType != "" {
				wantType = tt.wantType
			}
			if spec.FileName != tt.wantFile || spec.ContentType != wantType {
				t.Errorf("file %q content type %q, want %q %q", spec.FileName, spec.ContentType, tt.wantFile, wantType)
			}
			var sheets []string
			for _, q := range spec.Sheets {
				sheets = append(sheets, q.Entity.Name)
			}
			if !slices.Equal(sheets, tt.wantSheets) {
				t.Errorf("sheets %q, want %q", sheets, tt.wantSheets)
			}
			if spec.Query == nil || spec.Query.Entity.Name != tt.req.Entity {
				t.Errorf("query %+v", spec.Query)
			}
			if tt.wantColumns != nil {
				var names []string
				for _, c := range spec.Columns() {
					names = append(names, c.Name)
				}
				if !slices.Equal(names, tt.wantColumns) {
					t.Errorf("columns %q, want %q", names, tt.wantColumns)
				}
			}
		})
	}
}

func TestColumnsCarryKinds(t *testing.T) {
	t.Parallel()
	spec, err := export.Prepare(export.Request{Entity: "products", Format: "csv",
		Fields: []string{"sku", "price", "stock", "attributes", "updated_at"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []exportfmt.Column{
		{Name: "sku", Kind: exportfmt.KindText}, {Name: "price", Kind: exportfmt.KindDecimal},
		{Name: "stock", Kind: exportfmt.KindInteger}, {Name: "attributes", Kind: exportfmt.KindJSON},
		{Name: "updated_at", Kind: exportfmt.KindTimestamp},
	}
	if got := spec.Columns(); !slices.Equal(got, want) {
		t.Errorf("columns %+v, want %+v", got, want)
	}
}

// newCatalog is a throwaway products_manager with the real schema and a few rows that are
// hard to write as CSV.
func newCatalog(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgdbtest.NewDatabase(t, "exporttest")
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
			(2, 'S2', 'Beta', 'b@x.de', '0049', 'DE', 'Köln', false, '2025-01-01Z', '2026-02-01T08:30:00+01:00');
		INSERT INTO products (id, sku, name, description, brand, ean, price, currency, stock, status, category_id,
		                      weight_grams, attributes, created_at, updated_at) VALUES
			(1, 'SKU-1', 'Câble "Ultra", 2m', E'line1\nline2', 'Acme', '4006381333931', 12.5, 'EUR', 3, 'active', 2, 120, '{"color":"red"}', '2025-01-01Z', '2026-03-01T10:00:00Z'),
			(2, 'SKU-2', '=HYPERLINK("x")', '', 'Beta', '0000000000017', 1000000.00, 'EUR', 0, 'draft', NULL, NULL, '{}', '2025-01-01Z', '2025-03-01Z'),
			(3, 'SKU-3', 'Casque 🎧 sans fil', '-50% promo', 'Acme', '4006381333948', 0.5, 'EUR', 10, 'archived', 1, 5, '{}', '2025-01-01Z', '2025-03-01Z'),
			(4, 'SKU-4', '+33 Adapter; EU', E'@home\r', 'Acme', '', 7, 'EUR', 1, 'active', 1, NULL, '{"tags":["a;b"]}', '2025-01-01Z', '2025-03-01Z');
		INSERT INTO product_suppliers VALUES (1, 1, 'A-1', 5.00, 3, true), (1, 2, 'B-1', 6.00, 9, false), (3, 2, 'B-3', 0.1, 1, true);`)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func TestRunGolden(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	productFields := []string{"id", "sku", "name", "description", "price", "category_path", "supplier_name",
		"weight_grams", "attributes", "updated_at"}
	tests := []struct {
		name     string
		req      export.Request
		wantRows int64
		want     string
	}{
		{
			name: "products with semicolons, decimal comma, CRLF, BOM and formula escape",
			req: export.Request{Entity: "products", Format: "csv", Fields: productFields,
				Options: map[string]any{"delimiter": ";", "decimal": ",", "line_ending": "crlf", "bom": true, "formula_escape": "true"}},
			wantRows: 4,
			want: "\uFEFFid;sku;name;description;price;category_path;supplier_name;weight_grams;attributes;updated_at\r\n" +
				`1;SKU-1;"Câble ""Ultra"", 2m";"line1` + "\n" + `line2";12,50;Home > Audio;"Acme ""Paris""";120;"{""color"": ""red""}";2026-03-01T10:00:00Z` + "\r\n" +
				`2;SKU-2;"'=HYPERLINK(""x"")";;1000000,00;;;;{};2025-03-01T00:00:00Z` + "\r\n" +
				`3;SKU-3;Casque 🎧 sans fil;'-50% promo;0,50;Home;Beta;5;{};2025-03-01T00:00:00Z` + "\r\n" +
				`4;SKU-4;"'+33 Adapter; EU";"'@home` + "\r" + `";7,00;Home;;;"{""tags"": [""a;b""]}";2025-03-01T00:00:00Z` + "\r\n",
		},
		{
			name: "products tab separated without BOM nor escape, filtered",
			req: export.Request{Entity: "products", Format: "csv", Fields: []string{"sku", "name", "price", "stock"},
				Filters: map[string]any{"brand": "Acme", "price_max": 20.0},
				Options: map[string]any{"delimiter": "tab", "bom": false, "formula_escape": false}},
			wantRows: 3,
			want: "sku\tname\tprice\tstock\n" +
				"SKU-1\t\"Câble \"\"Ultra\"\", 2m\"\t12.50\t3\n" +
				"SKU-3\tCasque 🎧 sans fil\t0.50\t10\n" +
				"SKU-4\t+33 Adapter; EU\t7.00\t1\n",
		},
		{
			name:     "suppliers with the defaults",
			req:      export.Request{Entity: "suppliers", Format: "csv"},
			wantRows: 2,
			want: "\uFEFFid,code,name,email,phone,country,city,active,created_at,updated_at\n" +
				`1,S1,"Acme ""Paris""",a@x.fr,'+33 1,FR,Paris,true,2025-01-01T00:00:00Z,2025-06-01T00:00:00Z` + "\n" +
				`2,S2,Beta,b@x.de,0049,DE,Köln,false,2025-01-01T00:00:00Z,2026-02-01T07:30:00Z` + "\n",
		},
		{
			name:     "nothing matches: the header alone",
			req:      export.Request{Entity: "products", Format: "csv", Fields: []string{"sku"}, Filters: map[string]any{"search": "%"}},
			wantRows: 0,
			want:     "\uFEFFsku\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec, err := export.Prepare(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			var reported []int64
			res, err := export.Run(t.Context(), db, spec, &buf, func(done int64) { reported = append(reported, done) })
			if err != nil {
				t.Fatal(err)
			}
			if n := res.Rows; n != tt.wantRows {
				t.Errorf("Run wrote %d rows, want %d", n, tt.wantRows)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("output differs\n got: %q\nwant: %q", got, tt.want)
			}
			if len(reported) == 0 || reported[len(reported)-1] != tt.wantRows {
				t.Errorf("progress reports %v, want the last to be %d", reported, tt.wantRows)
			}
			// The count the exporter announces matches what Run writes.
			if c, err := spec.Query.Count(t.Context(), db); err != nil || c != tt.wantRows {
				t.Errorf("Count = %d, %v; want %d", c, err, tt.wantRows)
			}
		})
	}
}

func TestRunJSONWithRelations(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	tests := []struct {
		name string
		req  export.Request
		want string
	}{
		{
			name: "products as JSON Lines with their category and suppliers",
			req: export.Request{Entity: "products", Format: "json", Fields: []string{"id", "name", "price", "stock", "attributes", "updated_at"},
				Options: map[string]any{"lines": true, "include_relations": true}},
			want: `{"id":1,"name":"Câble \"Ultra\", 2m","price":12.50,"stock":3,"attributes":{"color": "red"},"updated_at":"2026-03-01T10:00:00Z",` +
				`"category":{"id":2,"parent_id":1,"name":"Audio","slug":"audio","path":"Home > Audio"},` +
				`"suppliers":[{"supplier_id":1,"code":"S1","name":"Acme \"Paris\"","supplier_sku":"A-1","cost_price":5.00,"lead_time_days":3,"is_primary":true},` +
				`{"supplier_id":2,"code":"S2","name":"Beta","supplier_sku":"B-1","cost_price":6.00,"lead_time_days":9,"is_primary":false}]}` + "\n" +
				`{"id":2,"name":"=HYPERLINK(\"x\")","price":1000000.00,"stock":0,"attributes":{},"updated_at":"2025-03-01T00:00:00Z","category":null,"suppliers":[]}` + "\n" +
				`{"id":3,"name":"Casque 🎧 sans fil","price":0.50,"stock":10,"attributes":{},"updated_at":"2025-03-01T00:00:00Z",` +
				`"category":{"id":1,"parent_id":null,"name":"Home","slug":"home","path":"Home"},` +
				`"suppliers":[{"supplier_id":2,"code":"S2","name":"Beta","supplier_sku":"B-3","cost_price":0.10,"lead_time_days":1,"is_primary":true}]}` + "\n" +
				`{"id":4,"name":"+33 Adapter; EU","price":7.00,"stock":1,"attributes":{"tags": ["a;b"]},"updated_at":"2025-03-01T00:00:00Z",` +
				`"category":{"id":1,"parent_id":null,"name":"Home","slug":"home","path":"Home"},"suppliers":[]}` + "\n",
		},
		{
			name: "suppliers as a JSON array with their product count",
			req:  export.Request{Entity: "suppliers", Format: "json", Fields: []string{"code", "active"}, Options: map[string]any{"include_relations": "true"}},
			want: "[\n" + `{"code":"S1","active":true,"product_count":1},` + "\n" + `{"code":"S2","active":false,"product_count":2}` + "\n]\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec, err := export.Prepare(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			res, err := export.Run(t.Context(), db, spec, &buf, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("output differs\n got: %s\nwant: %s", got, tt.want)
			}
			if res.Rows == 0 {
				t.Error("no rows")
			}
		})
	}
}

// TestRunWorkbook: the requested entity's sheet carries its fields and filters, the other
// sheets every row, in the order asked; read back with excelize.
func TestRunWorkbook(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	spec, err := export.Prepare(export.Request{Entity: "products", Format: "excel", Fields: []string{"sku", "price", "updated_at"},
		Filters: map[string]any{"brand": "Acme"}, Options: map[string]any{"sheets": []any{"categories", "products", "suppliers"}}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var reported []int64
	res, err := export.Run(t.Context(), db, spec, &buf, func(n int64) { reported = append(reported, n) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 3 || len(res.Warnings) != 0 || !slices.Equal(reported, []int64{3}) {
		t.Errorf("result %+v, progress %v; want 3 rows, no warning, progress [3]", res, reported)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !slices.Equal(got, []string{"categories", "products", "suppliers"}) {
		t.Fatalf("sheets %q", got)
	}
	want := map[string][][]string{
		"categories": {{"id", "parent_id", "name", "slug", "path"}, {"1", "", "Home", "home", "Home"}, {"2", "1", "Audio", "audio", "Home > Audio"}},
		"products": {{"sku", "price", "updated_at"}, {"SKU-1", "12.50", "2026-03-01 10:00:00"}, {"SKU-3", "0.50", "2025-03-01 00:00:00"},
			{"SKU-4", "7.00", "2025-03-01 00:00:00"}},
	}
	for sheet, rows := range want {
		got, err := f.GetRows(sheet)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			if i >= len(got) || !slices.Equal(got[i][:min(len(got[i]), len(rows[i]))], rows[i]) {
				t.Errorf("%s rows = %q, want %q", sheet, got, rows)
				break
			}
		}
		if len(got) != len(rows) {
			t.Errorf("%s has %d rows, want %d", sheet, len(got), len(rows))
		}
	}
	if got, _ := f.GetRows("suppliers"); len(got) != 3 {
		t.Errorf("suppliers has %d rows, want a header and 2", len(got))
	}
}

// TestRunWarnsOfCutText: Excel holds 32,767 characters per cell; a longer description is cut
// and the cut is counted in the result's warnings (the job's warnings).
func TestRunWarnsOfCutText(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	if _, err := db.Exec(t.Context(), `UPDATE products SET description = repeat('é', 40000) WHERE id IN (1, 3)`); err != nil {
		t.Fatal(err)
	}
	spec, err := export.Prepare(export.Request{Entity: "products", Format: "excel", Fields: []string{"sku", "description"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res, err := export.Run(t.Context(), db, spec, &buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "2 ") {
		t.Errorf("warnings %q, want one counting 2 cut cells", res.Warnings)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if v, _ := f.GetCellValue("products", "B2"); len([]rune(v)) != 32767 {
		t.Errorf("B2 holds %d characters, want 32767", len([]rune(v)))
	}
	// The same export as CSV keeps every character and warns of nothing.
	spec, err = export.Prepare(export.Request{Entity: "products", Format: "csv", Fields: []string{"sku", "description"}})
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if res, err := export.Run(t.Context(), db, spec, &buf, nil); err != nil || len(res.Warnings) != 0 ||
		!strings.Contains(buf.String(), strings.Repeat("é", 40000)) {
		t.Errorf("CSV: %v, warnings %q", err, res.Warnings)
	}
}

// TestRunFlushesTheHeaderFirst: the header leaves on its own, before any row, so a stream's
// client sees bytes at once even when the query takes long to find its first row.
func TestRunFlushesTheHeaderFirst(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	for _, format := range []string{"csv", "json"} {
		spec, err := export.Prepare(export.Request{Entity: "products", Format: format, Fields: []string{"sku"},
			Options: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := export.Run(t.Context(), db, spec, pw, nil)
			pw.CloseWithError(err)
			done <- err
		}()
		first := make([]byte, 1<<16)
		n, err := pr.Read(first)
		if err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(pr)
		if err != nil || <-done != nil {
			t.Fatal(err)
		}
		switch format {
		case "csv":
			if got := string(first[:n]); got != "\uFEFFsku\n" {
				t.Errorf("csv: the first write is %q, want the header alone", got)
			}
		case "json":
			if got := string(first[:n]); got != "[" || len(rest) == 0 {
				t.Errorf("json: first write %q, then %q; want the array opened alone", got, rest)
			}
		}
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestRunStopsAtTheFirstError(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	spec, err := export.Prepare(export.Request{Entity: "products", Format: "csv"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("writer fails", func(t *testing.T) {
		t.Parallel()
		errDisk := errors.New("disk full")
		if _, err := export.Run(t.Context(), db, spec, failingWriter{errDisk}, nil); !errors.Is(err, errDisk) {
			t.Errorf("Run = %v, want the writer's error", err)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		var buf bytes.Buffer
		if _, err := export.Run(ctx, db, spec, &buf, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
}

// TestRunXLSXStreamsAndAbandonsOnFailure: an XLSX export streams its sheet onto the output as
// the rows come, never through TMPDIR (a million-row workbook was a gigabyte of temporary
// files), and one that fails mid-sheet leaves no workbook: its zip is never finished.
func TestRunXLSXStreamsAndAbandonsOnFailure(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	db := newCatalog(t)
	// 1,200 products of 20,000 characters: about 50 MB of sheet XML.
	if _, err := db.Exec(t.Context(), `
		INSERT INTO products (id, sku, name, description, price, currency, stock, status)
		SELECT g, 'BIG-' || g, 'big', repeat('é', 20000), 1, 'EUR', 1, 'active' FROM generate_series(100, 1299) g`); err != nil {
		t.Fatal(err)
	}
	spec, err := export.Prepare(export.Request{Entity: "products", Format: "excel", Fields: []string{"sku", "description"},
		Options: map[string]any{"sheets": []any{"products", "suppliers"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out bytes.Buffer
	spilled, streamed := -1, 0
	_, err = export.Run(ctx, db, spec, &out, func(done int64) {
		if done == 1000 { // mid-sheet: the suppliers sheet's query then fails
			left, _ := os.ReadDir(tmp)
			spilled, streamed = len(left), out.Len()
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if spilled != 0 {
		t.Errorf("%d files in TMPDIR at 1,000 rows, want none", spilled)
	}
	if streamed == 0 {
		t.Error("nothing written at 1,000 rows of 40 KB: the sheet is held back, not streamed")
	}
	if _, err := zip.NewReader(bytes.NewReader(out.Bytes()), int64(out.Len())); err == nil {
		t.Error("a failed run's output reads as a zip: an abandoned workbook looks finished")
	}
}
