package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
)

// serveFuzz runs one request through h in-process and reports whether the handler aborted
// the response (an error after its first bytes).
func serveFuzz(h http.Handler, req *http.Request) (rec *httptest.ResponseRecorder, aborted bool) {
	rec = httptest.NewRecorder()
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				panic(p)
			}
			aborted = true
		}
	}()
	h.ServeHTTP(rec, req)
	return rec, false
}

// checkRefusal asserts a 4xx is the JSON error shape with a code and a message.
func checkRefusal(t *testing.T, rec *httptest.ResponseRecorder, input string) {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("%d for %q is not the JSON error shape: %s", rec.Code, input, rec.Body)
	}
}

// FuzzStreamQuery: whatever the query string, a stream answers 200 with the export or a 4xx
// JSON error, never a 5xx nor an aborted transfer: every value the decoder and export.Prepare
// let through runs as SQL without error against a real catalog.
func FuzzStreamQuery(f *testing.F) {
	db := newCatalogDB(f)
	d := testDeps(f, prometheus.NewRegistry())
	d.Catalog, d.Log = db, slog.New(slog.DiscardHandler)
	h := api.NewServer(d)
	tok := token(f, "fuzz", auth.PermReadExports)
	// target: bit 0 picks csv or json, bit 1 products or suppliers.
	for _, seed := range []struct {
		target uint8
		query  string
	}{
		{0, ""},
		{0, "fields=id,sku,name,price,attributes&exclude_fields=price"},
		{0, "status=active,draft&category_id=1,2&supplier_id=1&price_min=0.5&price_max=99.9"},
		{0, "updated_since=2025-01-01T00:00:00%2B01:00&created_since=2025-01-01T00:00:00Z"},
		{0, "search=%25_%5C&brand=Acme,+Inc"},
		{0, "filters[category_id]=1&category_id=2&include_subcategories=true"},
		{0, "stock_min=0&stock_max=2147483647&ids=1,2,3"},
		{0, "price_min=1e10&price_max=1e10"},
		{0, "category_id=9007199254740992"},
		{0, "delimiter=;&decimal=,&bom=false&line_ending=crlf&formula_escape=false&file_name=été.csv"},
		{0, "options[delimiter]=tab&options.bom=true&fields=sku&fields=name"},
		{0, "brand=a&brand=b"},
		{0, "fields=sku,,+name+"},
		{0, "%zz=1"},
		{0, "colour=red&filters[x]=1&options.y=2"},
		{1, "lines=true&pretty=true&include_relations=true"},
		{1, "fields=attributes,description&status=archived"},
		{2, "country=FR,de&active=false&search=Köln"},
		{2, "country=FRA"},
		{3, "lines=1&active=t&updated_since=2026-02-01T07:30:00Z"},
		{3, "fields=code&exclude_fields=code"},
		{2, "country=0%80"},
		{0, "brand=%00&search=%C3"},
	} {
		f.Add(seed.target, seed.query)
	}
	f.Fuzz(func(t *testing.T, target uint8, query string) {
		format := []string{"csv", "json"}[target&1]
		entity := []string{"products", "suppliers"}[target>>1&1]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, "GET", "/api/v1/exports/stream/"+format+"/"+entity, nil)
		req.URL.RawQuery = query
		req.Header.Set("Authorization", "Bearer "+tok)
		rec, aborted := serveFuzz(h, req)
		switch {
		case aborted:
			t.Fatalf("stream of %s %s?%s failed after its first bytes", format, entity, query)
		case rec.Code == http.StatusOK:
			ct := rec.Header().Get("Content-Type")
			// Only JSON Lines of no row is empty; every other file has at least a header or [].
			if ct == "" || (rec.Body.Len() == 0 && ct != "application/x-ndjson") {
				t.Fatalf("200 for %q: %d bytes of %q", query, rec.Body.Len(), ct)
			}
		case rec.Code >= 400 && rec.Code < 500:
			checkRefusal(t, rec, query)
		default:
			t.Fatalf("status %d for %s %s?%s: %s", rec.Code, format, entity, query, rec.Body)
		}
	})
}

// FuzzCreateBody: whatever the body, POST /create answers 202, 400 or 413, never a 5xx; and
// every job it accepts runs: its request, as stored (JSON), prepares and streams through the
// real catalog without error, as the exporter will run it.
func FuzzCreateBody(f *testing.F) {
	db := newCatalogDB(f)
	jobs := newFakeJobs()
	d := testDeps(f, prometheus.NewRegistry())
	d.Jobs, d.Log = jobs, slog.New(slog.DiscardHandler)
	h := api.NewServer(d)
	tok := token(f, "fuzz", auth.PermWriteExports)
	for _, seed := range []string{
		``,
		`{}`,
		`{"entity": "products", "format": "csv"}`,
		`{"entity": "suppliers", "format": "csv", "fields": ["code", "name"], "filters": {"country": ["FR", "de"], "active": "true"}}`,
		`{"entity": "products", "format": "csv", "fields": ["sku", "name", "price"], "exclude_fields": ["price"],
		  "filters": {"status": "active", "category_id": [1, 2], "supplier_id": [1], "brand": "Acme", "price_min": 0.5,
		  "price_max": 99.9, "updated_since": "2026-01-01T00:00:00Z", "search": "%_\\"},
		  "options": {"delimiter": ";", "decimal": ",", "line_ending": "crlf", "bom": true, "formula_escape": false},
		  "platform_id": null, "file_name": "catalog.csv"}`,
		`{"entity": "products", "format": "csv", "filters": {"category_id": [1.5]}}`,
		`{"entity": "products", "format": "csv", "filters": {"category_id": "1,2", "include_subcategories": true}}`,
		`{"entity": "products", "format": "csv", "filters": {"price_min": 1e300}}`,
		`{"entity": "products", "format": "csv", "filters": {"price_min": "NaN"}}`,
		`{"entity": "products", "format": "csv", "filters": {"stock_min": -1, "stock_max": 2147483648}}`,
		`{"entity": "products", "format": "csv", "filters": {"ids": [9007199254740993]}}`,
		`{"entity": "products", "format": "csv", "filters": {"status": []}}`,
		`{"entity": "products", "format": "csv", "filters": {"status": null, "brand": {"x": 1}}}`,
		`{"entity": "products", "format": "csv", "filters": {"updated_since": "2026-13-01T00:00:00Z"}}`,
		`{"entity": "products", "format": "json", "options": {"lines": true, "pretty": "true", "include_relations": true}}`,
		`{"entity": "products", "format": "excel", "options": {"sheets": ["products", "suppliers", "categories"]}}`,
		`{"entity": "suppliers", "format": "csv", "filters": {"country": "FRA"}}`,
		`{"entity": "products", "format": "csv", "filters": {"brand": "a\u0000b"}}`,
		`{"entity": "suppliers", "format": "csv", "filters": {"search": "\ud800", "country": "f\u0000"}}`,
		`{"entity": "products", "format": "csv", "fields": ["sku"], "fields": ["name"]}`,
		`{"entity": "products", "format": "csv", "file_name": "../../etc/passwd"}`,
		`{"entity": "products", "format": "csv"} trailing`,
		`{"entity": "products", "format": "csv", "colour": "red"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/api/v1/exports/create", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec, aborted := serveFuzz(h, req)
		switch {
		case aborted:
			t.Fatalf("create aborted for %q", body)
		case rec.Code == http.StatusAccepted:
		case rec.Code >= 400 && rec.Code < 500:
			checkRefusal(t, rec, body)
			return
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		var acc struct {
			JobID string `json:"job_id"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &acc); err != nil {
			t.Fatal(err)
		}
		var stored events.ExportRequested
		for _, c := range jobs.createdRequests() {
			if c.JobID == acc.JobID {
				b, err := json.Marshal(c) // the job travels as JSON (jobstore, Kafka)
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(b, &stored); err != nil {
					t.Fatal(err)
				}
			}
		}
		spec, err := export.Prepare(export.Request{Entity: stored.Entity, Format: stored.Format, Fields: stored.Fields,
			ExcludeFields: stored.ExcludeFields, Filters: stored.Filters, Options: stored.Options, FileName: stored.FileName})
		if err != nil {
			t.Fatalf("accepted %q, but its stored request does not prepare: %v", body, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := export.Run(ctx, db, spec, io.Discard, nil); err != nil {
			t.Fatalf("accepted %q, but it does not run: %v", body, err)
		}
	})
}
