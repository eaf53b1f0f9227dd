package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
)

func TestFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs())
	tok := token(t, "alice", auth.PermReadExports)
	for _, entity := range catalog.EntityNames() {
		t.Run(entity, func(t *testing.T) {
			t.Parallel()
			r := e.do(t, "GET", "/api/v1/exports/fields/"+entity, tok, nil)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var got struct {
				Entity string `json:"entity"`
				Fields []struct {
					Name        string `json:"name"`
					Type        string `json:"type"`
					Description string `json:"description"`
					Default     *bool  `json:"default"`
				} `json:"fields"`
				Filters   []string `json:"filters"`
				Relations []struct {
					Name string `json:"name"`
					Type string `json:"type"`
				} `json:"relations"`
			}
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			want, _ := catalog.Lookup(entity)
			if got.Entity != entity || len(got.Fields) != len(want.Fields) {
				t.Fatalf("entity %q with %d fields, want %q with %d: %s", got.Entity, len(got.Fields), entity, len(want.Fields), r.body)
			}
			for i, f := range want.Fields { // registry order, every key present
				g := got.Fields[i]
				if g.Name != f.Name || g.Type != string(f.Type) || g.Description != f.Description || g.Default == nil || *g.Default != f.Default {
					t.Errorf("field %d = %+v, want %+v", i, g, f)
				}
			}
			if len(got.Relations) != len(want.Relations) {
				t.Errorf("relations = %+v, want %d", got.Relations, len(want.Relations))
			}
			for i, rel := range want.Relations {
				if i < len(got.Relations) && (got.Relations[i].Name != rel.Name || got.Relations[i].Type != string(rel.Type)) {
					t.Errorf("relation %d = %+v, want %s %s", i, got.Relations[i], rel.Name, rel.Type)
				}
			}
			wantFilters := slices.Sorted(slices.Values(want.FilterNames()))
			if !reflect.DeepEqual(got.Filters, wantFilters) {
				t.Errorf("filters = %v, want %v", got.Filters, wantFilters)
			}
		})
	}
	t.Run("unknown entity", func(t *testing.T) {
		t.Parallel()
		e.do(t, "GET", "/api/v1/exports/fields/orders", tok, nil).checkError(t, 400, "invalid_argument", "entity")
	})
}

// streamCase is a stream request and the body-form request it must equal.
type streamCase struct {
	name  string
	path  string // after /api/v1/exports/stream/
	query string
	req   export.Request // as a POST body would give it (JSON types)
}

var csvStreamCases = []streamCase{
	{name: "defaults", path: "csv/products",
		req: export.Request{Entity: "products", Format: "csv"}},
	{name: "top-level filters and options",
		path: "csv/products",
		query: "fields=id,sku,name,description,price,category_path,supplier_name&exclude_fields=description" +
			"&status=active,archived&category_id=1,2&price_min=0.5&price_max=100&updated_since=2025-01-01T00:00:00%2B01:00" +
			"&delimiter=;&decimal=,&bom=false&line_ending=crlf&formula_escape=false&file_name=catalogue+été.csv",
		req: export.Request{Entity: "products", Format: "csv",
			Fields:        []string{"id", "sku", "name", "description", "price", "category_path", "supplier_name"},
			ExcludeFields: []string{"description"},
			Filters: map[string]any{"status": []any{"active", "archived"}, "category_id": []any{1.0, 2.0},
				"price_min": 0.5, "price_max": 100.0, "updated_since": "2025-01-01T00:00:00+01:00"},
			Options:  map[string]any{"delimiter": ";", "decimal": ",", "bom": false, "line_ending": "crlf", "formula_escape": false},
			FileName: "catalogue été.csv"}},
	{name: "bracket and dot forms, repeated lists",
		path:  "csv/products",
		query: "fields=sku&fields=name,price&filters[brand]=Acme&filters.category_id=1&category_id=2&options[delimiter]=|&options.bom=true",
		req: export.Request{Entity: "products", Format: "csv", Fields: []string{"sku", "name", "price"},
			Filters: map[string]any{"brand": "Acme", "category_id": []any{1.0, 2.0}},
			Options: map[string]any{"delimiter": "|", "bom": true}}},
	{name: "a comma inside a scalar filter stays in the value",
		path: "csv/products", query: "brand=Acme,+Inc&fields=sku,brand",
		req: export.Request{Entity: "products", Format: "csv", Fields: []string{"sku", "brand"}, Filters: map[string]any{"brand": "Acme, Inc"}}},
	{name: "search with LIKE characters", path: "csv/products", query: "search=%25&fields=sku",
		req: export.Request{Entity: "products", Format: "csv", Fields: []string{"sku"}, Filters: map[string]any{"search": "%"}}},
	{name: "empty values count as absent", path: "csv/products", query: "status=&fields=&brand=&file_name=&entity=products&format=csv",
		req: export.Request{Entity: "products", Format: "csv"}},
	{name: "stock, ids, subcategories and creation filters",
		path: "csv/products", query: "stock_min=1&stock_max=10&ids=1,3,4&category_id=1&include_subcategories=true&created_since=2024-12-31T00:00:00Z&fields=id,sku,stock",
		req: export.Request{Entity: "products", Format: "csv", Fields: []string{"id", "sku", "stock"},
			Filters: map[string]any{"stock_min": 1.0, "stock_max": 10.0, "ids": []any{1.0, 3.0, 4.0}, "category_id": []any{1.0},
				"include_subcategories": true, "created_since": "2024-12-31T00:00:00Z"}}},
	{name: "suppliers", path: "csv/suppliers", query: "country=FR,DE&active=true&delimiter=%09",
		req: export.Request{Entity: "suppliers", Format: "csv", Filters: map[string]any{"country": []any{"FR", "DE"}, "active": true},
			Options: map[string]any{"delimiter": "\t"}}},
}

// TestStreamCSV: a stream sends exactly the bytes export.Run writes for the same request in
// its body form, with the download headers.
func TestStreamCSV(t *testing.T) {
	t.Parallel()
	db := newCatalogDB(t)
	e := newEnv(t, newFakeJobs(), withCatalog(db))
	tok := token(t, "alice", auth.PermReadExports)
	for _, tt := range csvStreamCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec, want := exportBytes(t, db, tt.req)
			r := e.do(t, "GET", "/api/v1/exports/stream/"+tt.path+"?"+tt.query, tok, nil)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if !bytes.Equal(r.body, want) {
				t.Errorf("body differs from export.Run's\n got: %q\nwant: %q", r.body, want)
			}
			checkStreamHeaders(t, r, spec.ContentType, spec.FileName)
		})
	}
	t.Run("file name headers", func(t *testing.T) {
		t.Parallel()
		r := e.do(t, "GET", "/api/v1/exports/stream/csv/products?fields=sku&file_name=catalogue+été+(1).csv", tok, nil)
		want := `attachment; filename="catalogue _t_ (1).csv"; filename*=UTF-8''catalogue%20%C3%A9t%C3%A9%20%281%29.csv`
		if got := r.header.Get("Content-Disposition"); got != want {
			t.Errorf("Content-Disposition = %s\n                 want %s", got, want)
		}
		r = e.do(t, "GET", "/api/v1/exports/stream/csv/suppliers", tok, nil)
		if got := r.header.Get("Content-Disposition"); got != `attachment; filename="suppliers.csv"` {
			t.Errorf("Content-Disposition = %s", got)
		}
		if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
		}
		// A name in another format's extension is served with the stream's own.
		r = e.do(t, "GET", "/api/v1/exports/stream/csv/suppliers?file_name=invoice.html", tok, nil)
		if got := r.header.Get("Content-Disposition"); got != `attachment; filename="invoice.html.csv"` {
			t.Errorf("Content-Disposition = %s", got)
		}
	})
}

func checkStreamHeaders(t *testing.T, r response, contentType, fileName string) {
	t.Helper()
	if got := r.header.Get("Content-Type"); got != contentType {
		t.Errorf("Content-Type = %q, want %q", got, contentType)
	}
	disp, params, err := mime.ParseMediaType(r.header.Get("Content-Disposition"))
	if err != nil || disp != "attachment" || params["filename"] != fileName {
		t.Errorf("Content-Disposition = %q (%v), want an attachment named %q", r.header.Get("Content-Disposition"), err, fileName)
	}
	for k, want := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestStreamJSON(t *testing.T) {
	t.Parallel()
	db := newCatalogDB(t)
	e := newEnv(t, newFakeJobs(), withCatalog(db))
	tok := token(t, "alice", auth.PermReadExports)
	tests := []streamCase{
		{name: "array", path: "json/products", req: export.Request{Entity: "products", Format: "json"}},
		{name: "lines", path: "json/products", query: "lines=true&fields=id,name,price,attributes&status=active",
			req: export.Request{Entity: "products", Format: "json", Fields: []string{"id", "name", "price", "attributes"},
				Filters: map[string]any{"status": "active"}, Options: map[string]any{"lines": true}}},
		{name: "pretty with relations", path: "json/products", query: "pretty=true&options[include_relations]=true&fields=sku",
			req: export.Request{Entity: "products", Format: "json", Fields: []string{"sku"},
				Options: map[string]any{"pretty": true, "include_relations": true}}},
		{name: "suppliers as lines", path: "json/suppliers", query: "options.lines=true&lines=",
			req: export.Request{Entity: "suppliers", Format: "json", Options: map[string]any{"lines": true}}},
		{name: "lines of no row: an empty body with its headers", path: "json/suppliers", query: "lines=true&country=IT",
			req: export.Request{Entity: "suppliers", Format: "json", Filters: map[string]any{"country": "IT"}, Options: map[string]any{"lines": true}}},
		{name: "an array of no row", path: "json/suppliers", query: "country=IT&file_name=none",
			req: export.Request{Entity: "suppliers", Format: "json", Filters: map[string]any{"country": "IT"}, FileName: "none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec, want := exportBytes(t, db, tt.req)
			r := e.do(t, "GET", "/api/v1/exports/stream/"+tt.path+"?"+tt.query, tok, nil)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if !bytes.Equal(r.body, want) {
				t.Errorf("body differs from export.Run's\n got: %q\nwant: %q", r.body, want)
			}
			checkStreamHeaders(t, r, spec.ContentType, spec.FileName)
		})
	}
}

// TestStreamValidation: every refusal is a 400 naming the culprit, decided before the catalog
// is touched (the server here has none, which would answer 503).
func TestStreamValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		path      string // after /api/v1/exports/stream/
		query     string
		wantCode  string
		wantField string
		wantInMsg string
	}{
		{"unknown parameter", "csv/products", "colour=red", "invalid_argument", "colour", "unknown parameter"},
		{"a supplier filter on products", "csv/products", "country=FR", "invalid_argument", "country", ""},
		{"unknown bracket filter", "csv/products", "filters[colour]=red", "invalid_argument", "filters.colour", ""},
		{"unknown dotted filter", "csv/suppliers", "filters.brand=Acme", "invalid_argument", "filters.brand", ""},
		{"unknown option", "csv/products", "options[colour]=red", "invalid_argument", "options.colour", ""},
		{"empty bracket", "csv/products", "filters[]=x", "invalid_argument", "filters[]", ""},
		{"bare group", "csv/products", "filters=x", "invalid_argument", "filters", ""},
		{"bad number", "csv/products", "price_min=cheap", "invalid_argument", "filters.price_min", ""},
		{"min above max", "csv/products", "price_min=10&price_max=1", "invalid_argument", "filters.price_min", ""},
		{"bad status", "csv/products", "status=active,deleted", "invalid_argument", "filters.status", ""},
		{"bad id list", "csv/products", "category_id=3,x", "invalid_argument", "filters.category_id", ""},
		{"bad time", "csv/products", "updated_since=yesterday", "invalid_argument", "filters.updated_since", ""},
		{"bad boolean filter", "csv/suppliers", "active=maybe", "invalid_argument", "filters.active", ""},
		{"repeated scalar filter", "csv/products", "brand=Acme&brand=Beta", "invalid_argument", "filters.brand", "given 2 times"},
		{"scalar filter in two forms", "csv/products", "search=a&filters[search]=b", "invalid_argument", "filters.search", "given 2 times"},
		{"repeated scalar option", "csv/products", "delimiter=;&options.delimiter=|", "invalid_argument", "options.delimiter", "given 2 times"},
		{"repeated file name", "csv/products", "file_name=a.csv&file_name=b.csv", "invalid_argument", "file_name", ""},
		{"bad delimiter", "csv/products", "delimiter=::", "invalid_argument", "options.delimiter", ""},
		{"a json option on csv", "csv/products", "lines=true", "invalid_argument", "options.lines", ""},
		{"a csv option on json", "json/products", "options.delimiter=;", "invalid_argument", "options.delimiter", ""},
		{"bad lines", "json/products", "lines=sometimes", "invalid_argument", "options.lines", ""},
		{"bad stock", "csv/products", "stock_min=1.5", "invalid_argument", "filters.stock_min", ""},
		{"bad country", "csv/suppliers", "country=FRA", "invalid_argument", "filters.country", ""},
		{"bad bom", "csv/products", "bom=yes", "invalid_argument", "options.bom", ""},
		{"decimal equals delimiter", "csv/products", "decimal=,&delimiter=,", "invalid_argument", "options.decimal", ""},
		{"unknown field", "csv/products", "fields=sku,colour", "invalid_argument", "fields", ""},
		{"repeated field", "csv/products", "fields=sku&fields=sku", "invalid_argument", "fields", ""},
		{"unknown excluded field", "csv/products", "exclude_fields=colour", "invalid_argument", "exclude_fields", ""},
		{"nothing left", "csv/suppliers", "fields=code&exclude_fields=code", "invalid_argument", "fields", ""},
		{"file name path", "csv/products", "file_name=../x.csv", "invalid_argument", "file_name", ""},
		{"entity contradicts the path", "csv/products", "entity=suppliers", "invalid_argument", "entity", ""},
		{"format contradicts the path", "csv/products", "format=json", "invalid_argument", "format", ""},
		{"malformed escape", "csv/products", "brand=%zz", "invalid_argument", "", "malformed"},
		{"not UTF-8", "csv/products", "search=%C3", "invalid_argument", "search", "UTF-8"},
		{"NUL", "csv/suppliers", "filters[search]=a%00b", "invalid_argument", "filters[search]", "NUL"},
		{"a semicolon is data, not a separator", "csv/products", "brand=a;status=deleted&price_min=x", "invalid_argument", "filters.price_min", ""},
		{"excel", "excel/products", "", "unsupported_format", "format", "cannot be streamed"},
		{"unknown format", "pdf/products", "", "invalid_argument", "format", ""},
		{"unknown entity", "csv/orders", "", "invalid_argument", "entity", ""},
		{"unknown entity and parameter", "json/orders", "colour=red", "invalid_argument", "entity", ""},
	}
	e := newEnv(t, newFakeJobs())
	tok := token(t, "alice", auth.PermReadExports)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := e.do(t, "GET", "/api/v1/exports/stream/"+tt.path+"?"+tt.query, tok, nil)
			r.checkError(t, 400, tt.wantCode, tt.wantField)
			if !bytes.Contains(r.body, []byte(tt.wantInMsg)) {
				t.Errorf("message lacks %q: %s", tt.wantInMsg, r.body)
			}
		})
	}
}

func TestStreamCatalogUnavailable(t *testing.T) {
	t.Parallel()
	down, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/products_manager?sslmode=disable&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(down.Close)
	tok := token(t, "alice", auth.PermReadExports)
	for name, opts := range map[string][]envOpt{"unreachable": {withCatalog(down)}, "not configured": nil} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, newFakeJobs(), opts...)
			r := e.do(t, "GET", "/api/v1/exports/stream/csv/products?fields=sku", tok, nil)
			r.checkError(t, 503, "catalog_unavailable", "")
			if r.header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if bytes.Contains(r.body, []byte("127.0.0.1")) {
				t.Errorf("503 leaks the address: %s", r.body)
			}
		})
	}
}

// failingQuerier refuses the query when after < 0; otherwise its result sets end with an
// error after `after` rows, as a connection lost in the middle of a result would.
type failingQuerier struct {
	*pgxpool.Pool
	after int
}

var (
	errMidResult    = errors.New("injected: connection lost in the middle of the result")
	errQueryRefused = errors.New("injected: the query was refused")
)

func (q failingQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if q.after < 0 {
		return nil, errQueryRefused
	}
	rows, err := q.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return &failingRows{Rows: rows, left: q.after}, nil
}

type failingRows struct {
	pgx.Rows
	left   int
	failed bool
}

func (r *failingRows) Next() bool {
	if r.left == 0 {
		r.failed = true
		return false
	}
	r.left--
	return r.Rows.Next()
}

func (r *failingRows) Err() error {
	if r.failed {
		return errMidResult
	}
	return r.Rows.Err()
}

// newWideCatalogDB is a catalog whose products CSV is about 60 MB (300 descriptions of 200 kB),
// far more than the socket buffers between the database, the server and the client hold, so
// a stream of it is still querying while its first bytes are read.
func newWideCatalogDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	db := newCatalogDB(t)
	if _, err := db.Exec(context.Background(), `INSERT INTO products (id, sku, name, description, price)
		SELECT 100 + i, 'W-' || i, 'Wide ' || i, repeat(md5(i::text), 6250), 1 FROM generate_series(1, 300) i`); err != nil {
		t.Fatal(err)
	}
	return db
}

// activeQueries counts the statements running in db's database other than this one.
func activeQueries(t *testing.T, db *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// openStream starts a stream and reads its first bytes, returning the response still open.
func openStream(t *testing.T, ctx context.Context, e *env, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token(t, "alice", auth.PermReadExports))
	// The raw bytes: these tests are about a stream's pace, which gzip would hide in buffers.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	first := make([]byte, 16)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	return resp, first
}

// TestStreamClientGoesAway: bytes leave while the query still runs, and a client that
// disconnects ends the handler and the query promptly.
func TestStreamClientGoesAway(t *testing.T) {
	t.Parallel()
	db := newWideCatalogDB(t)
	e := newEnv(t, newFakeJobs(), withCatalog(db), func(d *api.Deps) { d.MaxStreams = 1 })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp, first := openStream(t, ctx, e, "/api/v1/exports/stream/csv/products?fields=sku,description")
	defer resp.Body.Close()
	if want := "\uFEFFsku,description\n"; string(first) != want[:16] {
		t.Errorf("first bytes %q, want the BOM and header %q", first, want)
	}
	// The client holds the first bytes while the query is still running.
	if n := activeQueries(t, db); n != 1 {
		t.Errorf("%d active queries while the stream is open, want 1", n)
	}
	// The one stream slot is taken: another stream is refused, not queued.
	tok := token(t, "alice", auth.PermReadExports)
	e.do(t, "GET", "/api/v1/exports/stream/csv/suppliers", tok, nil).checkError(t, 503, "too_many_streams", "")

	cancel()
	waitFor(t, "the handler to return", func() bool { return e.active.Load() == 0 })
	waitFor(t, "the query to end", func() bool { return activeQueries(t, db) == 0 })
	waitFor(t, "the slot to be free", func() bool {
		return e.do(t, "GET", "/api/v1/exports/stream/csv/suppliers", tok, nil).status == 200
	})
	m := e.do(t, "GET", "/metrics", "", nil)
	for _, want := range []string{
		`export_streams_total{entity="products",format="csv",outcome="client_gone"} 1`,
		`export_streams_in_flight 0`,
	} {
		if !bytes.Contains(m.body, []byte(want)) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(m.body, "export_stream"))
		}
	}
}

// TestStreamStalledClient: a client that stays connected but stops reading is dropped after
// the write timeout, and its query ends with it.
func TestStreamStalledClient(t *testing.T) {
	t.Parallel()
	db := newWideCatalogDB(t)
	e := newEnv(t, newFakeJobs(), withCatalog(db), func(d *api.Deps) { d.StreamWriteTimeout = 200 * time.Millisecond })
	resp, _ := openStream(t, t.Context(), e, "/api/v1/exports/stream/csv/products?fields=sku,description")
	defer resp.Body.Close()
	waitFor(t, "the handler to give up on the client", func() bool { return e.active.Load() == 0 })
	waitFor(t, "the query to end", func() bool { return activeQueries(t, db) == 0 })
	// What the client can still read ends in a truncated transfer, not a clean end of file.
	if _, err := io.Copy(io.Discard, resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading the dropped stream: %v, want unexpected EOF", err)
	}
}

// TestStreamFailure: an error before the first byte is a JSON 500 without details; after it,
// the connection is aborted so the client cannot take a short file for a whole one.
func TestStreamFailure(t *testing.T) {
	t.Parallel()
	db := newWideCatalogDB(t)
	tok := token(t, "alice", auth.PermReadExports)

	t.Run("before the first byte", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, newFakeJobs(), withCatalog(failingQuerier{Pool: db, after: -1}))
		r := e.do(t, "GET", "/api/v1/exports/stream/csv/products?fields=sku", tok, nil)
		r.checkError(t, 500, "internal", "")
		if bytes.Contains(r.body, []byte("injected")) {
			t.Errorf("500 leaks the error: %s", r.body)
		}
	})
	t.Run("after the first bytes", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, newFakeJobs(), withCatalog(failingQuerier{Pool: db, after: 50}))
		resp, _ := openStream(t, t.Context(), e, "/api/v1/exports/stream/csv/products?fields=sku,description")
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("read %d bytes then %v, want unexpected EOF", n, err)
		}
		waitFor(t, "the handler to return", func() bool { return e.active.Load() == 0 })
		m := e.do(t, "GET", "/metrics", "", nil)
		if want := `export_streams_total{entity="products",format="csv",outcome="failed"} 1`; !bytes.Contains(m.body, []byte(want)) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(m.body, "export_stream"))
		}
	})
}

// slowQuerier spends delay in the database before each query, as a slow plan would.
type slowQuerier struct {
	*pgxpool.Pool
	delay time.Duration
}

func (q slowQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if _, err := q.Pool.Exec(ctx, "SELECT pg_sleep($1)", q.delay.Seconds()); err != nil {
		return nil, err
	}
	return q.Pool.Query(ctx, sql, args...)
}

// TestStreamOutlivesServerTimeouts: the server's WriteTimeout (which would cut the body) and
// ReadTimeout do not end a stream that lasts longer.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	t.Parallel()
	db := newCatalogDB(t)
	e := newEnvServer(t, newFakeJobs(), func(s *http.Server) {
		s.ReadTimeout, s.WriteTimeout = 150*time.Millisecond, 150*time.Millisecond
	}, withCatalog(slowQuerier{Pool: db, delay: 400 * time.Millisecond}))
	_, want := exportBytes(t, db, export.Request{Entity: "products", Format: "csv"})
	r := e.do(t, "GET", "/api/v1/exports/stream/csv/products", token(t, "alice", auth.PermReadExports), nil)
	if r.status != 200 || !bytes.Equal(r.body, want) {
		t.Errorf("status %d, body %q\nwant 200, %q", r.status, r.body, want)
	}
}

func TestStreamMetrics(t *testing.T) {
	t.Parallel()
	db := newCatalogDB(t)
	e := newEnv(t, newFakeJobs(), withCatalog(db))
	tok := token(t, "alice", auth.PermReadExports)
	var size int
	for range 2 {
		r := e.do(t, "GET", "/api/v1/exports/stream/csv/products?fields=sku", tok, nil)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		size += len(r.body)
	}
	m := e.do(t, "GET", "/metrics", "", nil)
	for _, want := range []string{
		`export_streams_total{entity="products",format="csv",outcome="completed"} 2`,
		`export_stream_rows_total{entity="products",format="csv"} 8`,
		fmt.Sprintf(`export_stream_bytes_total{entity="products",format="csv"} %d`, size),
		`export_stream_first_byte_seconds_count 2`,
		`http_requests_total{code="200",method="GET",route="/api/v1/exports/stream/{format}/{entity}"} 2`,
	} {
		if !bytes.Contains(m.body, []byte(want)) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(m.body, "stream"))
		}
	}
}

// TestRoutes: fixed paths are not taken by the patterns, and a path that is not an export
// format is not an export request.
func TestRoutes(t *testing.T) {
	t.Parallel()
	jobs := newFakeJobs()
	e := newEnv(t, jobs)
	tok := token(t, "alice", auth.PermReadExports, auth.PermWriteExports)
	id := "0199c0de-7e57-7000-8000-000000000001"
	tests := []struct {
		method, path string
		wantStatus   int
		wantCode     string
		wantField    string
	}{
		{"POST", "/api/v1/exports/" + id + "/cancel", 404, "not_found", ""},
		{"POST", "/api/v1/exports/pdf/products", 400, "invalid_argument", "format"},
		{"GET", "/api/v1/exports/fields/orders", 400, "invalid_argument", "entity"},
		{"GET", "/api/v1/exports/stream/excel/products", 400, "unsupported_format", "format"},
		{"GET", "/api/v1/exports/progress/" + id, 404, "not_found", ""},
		{"POST", "/api/v1/exports/stream/csv/products", 405, "method_not_allowed", ""},
		{"POST", "/api/v1/exports/fields/products", 405, "method_not_allowed", ""},
		{"POST", "/api/v1/exports/" + id + "/products", 404, "not_found", ""},
		{"GET", "/api/v1/exports/csv/products", 405, "method_not_allowed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			e.do(t, tt.method, tt.path, tok, []byte(`{}`)).checkError(t, tt.wantStatus, tt.wantCode, tt.wantField)
		})
	}
	t.Cleanup(func() {
		if got := jobs.createdRequests(); len(got) != 0 {
			t.Errorf("jobs created: %+v", got)
		}
	})
}

// gatedCatalog holds back every row until open is closed: a query slow to find its first row.
type gatedCatalog struct {
	catalog.Querier
	open chan struct{}
}

func (g gatedCatalog) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := g.Querier.Query(ctx, sql, args...)
	return gatedRows{rows, g.open}, err
}

type gatedRows struct {
	pgx.Rows
	open chan struct{}
}

func (r gatedRows) Next() bool {
	<-r.open
	return r.Rows.Next()
}

// TestStreamHeadersBeforeTheFirstRow: once the database has accepted the query, the status and
// headers leave, even for JSON Lines, which has no header line, while no row has come yet.
func TestStreamHeadersBeforeTheFirstRow(t *testing.T) {
	t.Parallel()
	db := newCatalogDB(t)
	for _, query := range []string{"json/products?lines=true", "json/products", "csv/suppliers"} {
		t.Run(query, func(t *testing.T) {
			t.Parallel()
			gate := gatedCatalog{db, make(chan struct{})}
			e := newEnv(t, newFakeJobs(), withCatalog(gate))
			req, err := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+"/api/v1/exports/stream/"+query, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token(t, "alice", auth.PermReadExports))
			got := make(chan *http.Response, 1)
			go func() {
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					close(got)
					return
				}
				got <- resp
			}()
			var resp *http.Response
			select {
			case resp = <-got:
			case <-time.After(10 * time.Second):
				close(gate.open)
				t.Fatal("no response headers while the first row is held back")
			}
			close(gate.open)
			if resp == nil {
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Disposition") == "" {
				t.Errorf("status %d, Content-Disposition %q", resp.StatusCode, resp.Header.Get("Content-Disposition"))
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Errorf("reading the rest: %v", err)
			}
		})
	}
}

// TestStreamGzip: a client that accepts gzip gets the same bytes gzipped (Content-Encoding,
// Vary); one that does not, or refuses it with q=0, gets them plain.
func TestStreamGzip(t *testing.T) {
	t.Parallel()
	db := newCatalogDB(t)
	e := newEnv(t, newFakeJobs(), withCatalog(db))
	tok := token(t, "alice", auth.PermReadExports)
	_, want := exportBytes(t, db, export.Request{Entity: "products", Format: "csv", Fields: []string{"sku", "name"}})
	get := func(enc string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/v1/exports/stream/csv/products?fields=sku,name", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if enc != "" {
			req.Header.Set("Accept-Encoding", enc)
		}
		resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	resp, body := get("br, gzip;q=0.8")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("headers %v", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := io.ReadAll(zr); err != nil || !bytes.Equal(plain, want) {
		t.Errorf("gunzipped stream: %v, %d bytes, want %d", err, len(plain), len(want))
	}
	for _, enc := range []string{"", "identity", "gzip;q=0"} {
		resp, body := get(enc)
		if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, want) {
			t.Errorf("Accept-Encoding %q: encoding %q, %d bytes", enc, resp.Header.Get("Content-Encoding"), len(body))
		}
	}
}
