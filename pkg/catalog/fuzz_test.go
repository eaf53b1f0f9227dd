package catalog_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/catalog"
)

// FuzzNewQuery feeds arbitrary filters (as the JSON body or query parameters would carry them)
// to the filter-to-SQL builder: every input is either refused with a FilterError or
// ErrUnknownField, or gives SQL that PostgreSQL runs without error. Its seed corpus runs in
// every `go test`; `go test -fuzz FuzzNewQuery ./pkg/catalog` explores further.
func FuzzNewQuery(f *testing.F) {
	seeds := []struct{ entity, filters string }{
		{"products", `{}`},
		{"products", `{"status":"active","category_id":[3,7],"supplier_id":[12],"brand":"Acme","price_min":10,"price_max":99.9,"updated_since":"2026-01-01T00:00:00Z","search":"cable"}`},
		{"products", `{"category_id":"1,2","include_subcategories":"true"}`},
		{"products", `{"stock_min":"-5","stock_max":2147483647,"created_since":"0001-01-01T00:00:00Z"}`},
		{"products", `{"ids":[1,2,3],"search":"%_\\'\";--"}`},
		{"products", `{"price_min":1e308,"price_max":"NaN"}`},
		{"products", `{"ids":"9007199254740993"}`},
		{"products", `{"updated_since":"9999-12-31T23:59:59.999999999+14:00"}`},
		{"products", `{"status":["active",null]}`},
		{"products", `{"search":"\u0000"}`},
		{"products", `{"brand":"\ud800"}`},
		{"products", `{"category_id":{"a":1}}`},
		{"suppliers", `{"country":"fr,de","active":"1","search":"x"}`},
		{"suppliers", `{"country":"é1"}`},
		{"suppliers", `{"updated_since":"2026-02-30T00:00:00Z"}`},
		{"orders", `{}`},
	}
	for _, s := range seeds {
		f.Add(s.entity, s.filters)
	}
	db := newGenerated(f)
	f.Fuzz(func(t *testing.T, entity, raw string) {
		var filters map[string]any
		if json.Unmarshal([]byte(raw), &filters) != nil {
			return
		}
		q, err := catalog.NewQuery(entity, nil, nil, filters)
		if err != nil {
			var fe *catalog.FilterError
			var ue catalog.ErrUnknownField
			if _, known := catalog.Lookup(entity); known && !errors.As(err, &fe) && !errors.As(err, &ue) {
				t.Fatalf("NewQuery(%q, %s): an error that names no filter: %v", entity, raw, err)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := q.Count(ctx, db); err != nil {
			t.Fatalf("Count(%s): %v", raw, err)
		}
		q.IncludeRelations()
		if _, err := q.Rows(ctx, db, func([][]byte) error { return nil }, nil, 0); err != nil {
			t.Fatalf("Rows(%s): %v", raw, err)
		}
	})
}
