package export_test

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/productsmanager/exportplatform/pkg/export"
)

// TestMerge: request > schedule > platform, key by key, for every key at each level: scalars
// when set, fields and exclude_fields whole, filters, options and headers per key, null (or
// "" for a header) removing a key.
func TestMerge(t *testing.T) {
	t.Parallel()
	platform := export.Request{Entity: "products", Format: "csv", Fields: []string{"sku", "name", "price"},
		ExcludeFields: []string{"description"}, FileName: "feed.csv", Compression: "gzip",
		Filters: map[string]any{"status": "active", "brand": "Acme"},
		Options: map[string]any{"delimiter": ";", "bom": true},
		Headers: map[string]string{"sku": "id", "name": "title"}}
	schedule := export.Request{Format: "json", Fields: []string{"sku", "price"},
		Filters: map[string]any{"brand": "Beta", "price_min": 10},
		Options: map[string]any{"bom": nil, "pretty": true},
		Headers: map[string]string{"price": "cost", "name": ""}}
	request := export.Request{FileName: "today.json", Filters: map[string]any{"status": nil}, Headers: map[string]string{"sku": "gtin"},
		ExcludeFields: []string{"ean"}}
	got := export.Merge(platform, schedule, request)
	want := export.Request{Entity: "products", Format: "json", Fields: []string{"sku", "price"}, ExcludeFields: []string{"ean"},
		FileName: "today.json", Compression: "gzip",
		Filters: map[string]any{"brand": "Beta", "price_min": 10},
		Options: map[string]any{"delimiter": ";", "pretty": true},
		Headers: map[string]string{"sku": "gtin", "price": "cost"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged\n%+v\nwant\n%+v", got, want)
	}
	// The layers are not changed.
	if platform.Filters["status"] != "active" || platform.Headers["name"] != "title" || schedule.Options["bom"] != nil {
		t.Error("Merge changed a layer")
	}
	// Each level alone comes through whole.
	for name, l := range map[string]export.Request{"platform": platform, "schedule": schedule, "request": request} {
		if got := export.Merge(export.Request{}, l); !reflect.DeepEqual(got, dropRemovals(l)) {
			t.Errorf("%s alone: %+v", name, got)
		}
	}
}

// dropRemovals is l without the keys that only remove (nothing under them to remove).
func dropRemovals(l export.Request) export.Request {
	clean := func(m map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			if v != nil {
				out[k] = v
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	l.Filters, l.Options = clean(l.Filters), clean(l.Options)
	h := map[string]string{}
	for k, v := range l.Headers {
		if v != "" {
			h[k] = v
		}
	}
	l.Headers = h
	if len(h) == 0 {
		l.Headers = nil
	}
	return l
}

// TestHeadersAndCompressionChecked: a rename names an exported column with a short title and
// leaves no two columns alike; compression is gzip, zip (not for a workbook) or none, and
// names the file.
func TestHeadersAndCompressionChecked(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		req   export.Request
		field string
	}{
		{export.Request{Entity: "products", Format: "csv", Fields: []string{"sku"}, Headers: map[string]string{"colour": "title"}}, "headers.colour"},
		{export.Request{Entity: "products", Format: "csv", Headers: map[string]string{"sku": "a\nb"}}, "headers.sku"},
		{export.Request{Entity: "products", Format: "csv", Headers: map[string]string{"sku": "name"}}, "headers"},
		{export.Request{Entity: "products", Format: "excel", Compression: "zip"}, "compression"},
		{export.Request{Entity: "products", Format: "csv", Compression: "rar"}, "compression"},
	} {
		_, err := export.Prepare(c.req)
		var ve *export.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%+v: %v, want a refusal of %s", c.req, err, c.field)
		}
	}
	for _, c := range []struct {
		req              export.Request
		name, inner, typ string
	}{
		{export.Request{Entity: "products", Format: "csv", Compression: "gzip"}, "products.csv.gz", "", "application/gzip"},
		{export.Request{Entity: "products", Format: "json", Compression: "zip", FileName: "feed.json"}, "feed.zip", "feed.json", "application/zip"},
		{export.Request{Entity: "products", Format: "excel", Compression: "gzip"}, "products.xlsx.gz", "", "application/gzip"},
		// A prepared name prepares to itself.
		{export.Request{Entity: "products", Format: "csv", Compression: "gzip", FileName: "products.csv.gz"}, "products.csv.gz", "", "application/gzip"},
		{export.Request{Entity: "products", Format: "json", Compression: "zip", FileName: "feed.zip"}, "feed.zip", "feed.json", "application/zip"},
		{export.Request{Entity: "products", Format: "csv", Compression: "gzip", FileName: "x.gz"}, "x.csv.gz", "", "application/gzip"},
	} {
		s, err := export.Prepare(c.req)
		if err != nil || s.FileName != c.name || s.Inner != c.inner || s.ContentType != c.typ {
			t.Errorf("%+v: %v %q %q %q", c.req, err, s.FileName, s.Inner, s.ContentType)
		}
	}
}

// TestRunRenamesAndCompresses: the renamed header is the file's; the gzip and zip files hold
// exactly the bytes of the plain export.
func TestRunRenamesAndCompresses(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	run := func(r export.Request) []byte {
		t.Helper()
		s, err := export.Prepare(r)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := export.Run(t.Context(), db, s, &buf, nil); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	base := export.Request{Entity: "products", Format: "csv", Fields: []string{"sku", "name", "price"},
		Headers: map[string]string{"sku": "id", "name": "title"}, Options: map[string]any{"bom": false}}
	plain := run(base)
	if want := "id,title,price\nSKU-1,"; !bytes.HasPrefix(plain, []byte(want)) {
		t.Fatalf("renamed export starts %q, want %q", plain[:min(len(plain), 40)], want)
	}
	gz := base
	gz.Compression = "gzip"
	zr, err := gzip.NewReader(bytes.NewReader(run(gz)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("gunzipped: %q %v, want %q", got, err, plain)
	}
	zp := base
	zp.Compression = "zip"
	b := run(zp)
	arc, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil || len(arc.File) != 1 || arc.File[0].Name != "products.csv" {
		t.Fatalf("zip: %v %+v", err, arc)
	}
	f, _ := arc.File[0].Open()
	if got, err := io.ReadAll(f); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("unzipped: %q %v, want %q", got, err, plain)
	}
}
