package main

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestTypedValue(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"active", "active"},
		{"3", int64(3)},
		{"-4", int64(-4)},
		{"9.5", 9.5},
		{"true", true},
		{"false", false},
		{"null", nil},
		{"3,7", []any{int64(3), int64(7)}},
		{"a, b,,", []any{"a", "b"}},
		{`"12"`, "12"},
		{`"a,b"`, "a,b"},
		{"2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"Inf", "Inf"},
		{"NaN", "NaN"},
		{"0x10", "0x10"},
		{"1_000", "1_000"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := typedValue(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("typedValue(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestBuildObject(t *testing.T) {
	tests := []struct {
		name    string
		pairs   []string
		jsons   []string
		want    string
		wantErr bool
	}{
		{name: "none", want: "null"},
		{name: "typed", pairs: []string{"status=active", "price_min=10", "price_max=99.9", "bom=true"},
			want: `{"bom":true,"price_max":99.9,"price_min":10,"status":"active"}`},
		{name: "repeated key collects", pairs: []string{"category_id=3", "category_id=7,8"},
			want: `{"category_id":[3,7,8]}`},
		{name: "value with =", pairs: []string{"search=a=b"}, want: `{"search":"a=b"}`},
		{name: "json wins", pairs: []string{"status=active"}, jsons: []string{`{"status":"draft","supplier_id":[12345678901234567890]}`},
			want: `{"status":"draft","supplier_id":[12345678901234567890]}`},
		{name: "no =", pairs: []string{"status"}, wantErr: true},
		{name: "empty key", pairs: []string{"=x"}, wantErr: true},
		{name: "json not an object", jsons: []string{`[1]`}, wantErr: true},
		{name: "json trailing data", jsons: []string{`{} {}`}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := buildObject("filter", tt.pairs, tt.jsons)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			b, _ := json.Marshal(got)
			if string(b) != tt.want {
				t.Errorf("got %s, want %s", b, tt.want)
			}
		})
	}
}

func TestParseExportFlagsAnywhere(t *testing.T) {
	a := newApp(func(string) string { return "" }, nil, nil)
	a.stderr = &discardWriter{}
	f, err := a.parseExport([]string{"--format", "excel", "products", "--fields", "sku, name", "--api", "http://x:1", "--file-name", "c.xlsx"})
	if err != nil {
		t.Fatal(err)
	}
	if f.entity != "products" || f.format != "excel" || !reflect.DeepEqual(f.body.Fields, []string{"sku", "name"}) ||
		f.body.FileName != "c.xlsx" || a.api != "http://x:1" {
		t.Errorf("parsed %+v, api %q", f, a.api)
	}
	if _, err := a.parseExport([]string{"products", "--detach", "--out", "x"}); err == nil {
		t.Error("--detach with --out accepted")
	}
	// After "--", everything is positional.
	if _, err := a.parseExport([]string{"--", "-products"}); err != nil {
		t.Errorf("-- then an argument: %v", err)
	}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
