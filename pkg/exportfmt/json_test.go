package exportfmt_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/productsmanager/exportplatform/pkg/exportfmt"
)

// jsonCols has every kind, the json ones shaped as the catalog sends attributes and relations.
var jsonCols = []exportfmt.Column{
	{Name: "id", Kind: exportfmt.KindInteger},
	{Name: "sku", Kind: exportfmt.KindText},
	{Name: "name", Kind: exportfmt.KindText},
	{Name: "price", Kind: exportfmt.KindDecimal},
	{Name: "active", Kind: exportfmt.KindBoolean},
	{Name: "updated_at", Kind: exportfmt.KindTimestamp},
	{Name: "attributes", Kind: exportfmt.KindJSON},
	{Name: "category", Kind: exportfmt.KindJSON},
	{Name: "suppliers", Kind: exportfmt.KindJSON},
}

// jsonRows: nil is NULL.
var jsonRows = [][]any{
	{"1", "S-1", `Câble "Ultra" 2m \ back\slash`, "12.50", "true", "2026-01-02T03:04:05Z",
		`{"color": "red", "tags": ["a", "b"]}`,
		`{"id" : 3, "name" : "Audio", "path" : "Home > Audio"}`,
		`[{"id" : 12, "code" : "SUP-12", "is_primary" : true}]`},
	{"-2", "S-2", "line1\r\nline2\nend\ttab", "0.00", "false", "2026-12-31T23:59:59Z", `{}`, nil, `[]`},
	{"3", "S-3", "emoji 🎧✅ accents éàü, U+2028 \u2028 U+2029 \u2029 <b>&amp;</b>", nil, nil, nil, nil, nil, nil},
	{"4", "=SUM(A1:A9)", "ctl \x00\x01\x1f\x7f invalid \xff\xfe end", "-0.99", "true", "2026-01-02T03:04:05Z",
		"{\n  \"multi\": \"line\",\n  \"n\": [1,\n 2]\n}", nil, nil},
	{nil, "", "", nil, nil, nil, nil, nil, nil},
}

func cellsOf(row []any) [][]byte {
	cells := make([][]byte, len(row))
	for i, v := range row {
		if v != nil {
			cells[i] = []byte(v.(string))
		}
	}
	return cells
}

func writeJSON(t *testing.T, opts exportfmt.JSONOptions, cols []exportfmt.Column, rows [][]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := exportfmt.NewJSON(&buf, opts)
	if err := w.WriteHeader(cols); err != nil {
		t.Fatal(err)
	}
	cells := make([][]byte, len(cols))
	for _, r := range rows {
		// The caller reuses its slices: the writer must not keep them.
		copy(cells, cellsOf(r))
		if err := w.WriteRow(cells); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestJSONGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   exportfmt.JSONOptions
		rows   [][]any
		golden string
	}{
		{"array", exportfmt.JSONOptions{}, jsonRows, "array.json"},
		{"lines", exportfmt.JSONOptions{Lines: true}, jsonRows, "lines.jsonl"},
		{"pretty", exportfmt.JSONOptions{Pretty: true}, jsonRows, "pretty.json"},
		{"lines ignore pretty", exportfmt.JSONOptions{Lines: true, Pretty: true}, jsonRows, "lines.jsonl"},
		{"empty array", exportfmt.JSONOptions{}, nil, "empty.json"},
		{"empty pretty", exportfmt.JSONOptions{Pretty: true}, nil, "empty.json"},
		{"empty lines", exportfmt.JSONOptions{Lines: true}, nil, "empty.jsonl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			golden(t, tt.golden, writeJSON(t, tt.opts, jsonCols, tt.rows))
		})
	}
}

// TestJSONReadBack parses every layout with encoding/json and checks each value.
func TestJSONReadBack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts exportfmt.JSONOptions
	}{
		{"array", exportfmt.JSONOptions{}},
		{"pretty", exportfmt.JSONOptions{Pretty: true}},
		{"lines", exportfmt.JSONOptions{Lines: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := writeJSON(t, tt.opts, jsonCols, jsonRows)
			var objs []json.RawMessage
			if tt.opts.Lines {
				sc := bufio.NewScanner(bytes.NewReader(out))
				for sc.Scan() {
					objs = append(objs, bytes.Clone(sc.Bytes()))
				}
			} else if err := json.Unmarshal(out, &objs); err != nil {
				t.Fatalf("not a JSON array: %v\n%s", err, out)
			}
			if len(objs) != len(jsonRows) {
				t.Fatalf("%d objects, want %d", len(objs), len(jsonRows))
			}
			for i, obj := range objs {
				if got, want := keysOf(t, obj), columnNames(jsonCols); !reflect.DeepEqual(got, want) {
					t.Errorf("row %d keys %q, want %q", i, got, want)
				}
				dec := json.NewDecoder(bytes.NewReader(obj))
				dec.UseNumber()
				var got map[string]any
				if err := dec.Decode(&got); err != nil {
					t.Fatalf("row %d: %v\n%s", i, err, obj)
				}
				for j, col := range jsonCols {
					if want := wantJSONValue(t, col.Kind, jsonRows[i][j]); !reflect.DeepEqual(got[col.Name], want) {
						t.Errorf("row %d %s = %#v, want %#v", i, col.Name, got[col.Name], want)
					}
				}
			}
		})
	}
}

func wantJSONValue(t *testing.T, kind exportfmt.Kind, cell any) any {
	if cell == nil {
		return nil
	}
	s := cell.(string)
	switch kind {
	case exportfmt.KindInteger, exportfmt.KindDecimal:
		return json.Number(s)
	case exportfmt.KindBoolean:
		return s == "true"
	case exportfmt.KindJSON:
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	return perByteValidUTF8(s)
}

// perByteValidUTF8 replaces each byte of invalid UTF-8 with U+FFFD, as encoding/json does.
func perByteValidUTF8(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// keysOf lists an object's keys in the order written.
func keysOf(t *testing.T, obj []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", obj)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func columnNames(cols []exportfmt.Column) []string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return names
}

// TestJSONPrettyIsIndentedArray pins Pretty to the layout of json.Indent (and so of
// json.MarshalIndent) applied to the compact array.
func TestJSONPrettyIsIndentedArray(t *testing.T) {
	t.Parallel()
	var want bytes.Buffer
	if err := json.Indent(&want, writeJSON(t, exportfmt.JSONOptions{}, jsonCols, jsonRows), "", "  "); err != nil {
		t.Fatal(err)
	}
	if got := writeJSON(t, exportfmt.JSONOptions{Pretty: true}, jsonCols, jsonRows); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want.Bytes())
	}
}

func TestJSONCells(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind exportfmt.Kind
		cell any
		want string
	}{
		{"integer", exportfmt.KindInteger, "42", `42`},
		{"negative integer", exportfmt.KindInteger, "-7", `-7`},
		{"zero", exportfmt.KindInteger, "0", `0`},
		{"leading zero is text", exportfmt.KindInteger, "007", `"007"`},
		{"lone minus is text", exportfmt.KindInteger, "-", `"-"`},
		{"empty number is text", exportfmt.KindInteger, "", `""`},
		{"decimal keeps its zeros", exportfmt.KindDecimal, "12.50", `12.50`},
		{"negative decimal", exportfmt.KindDecimal, "-0.99", `-0.99`},
		{"exponent", exportfmt.KindDecimal, "1.5e-3", `1.5e-3`},
		{"trailing dot is text", exportfmt.KindDecimal, "1.", `"1."`},
		{"leading dot is text", exportfmt.KindDecimal, ".5", `".5"`},
		{"decimal comma is text", exportfmt.KindDecimal, "12,50", `"12,50"`},
		{"NaN is text", exportfmt.KindDecimal, "NaN", `"NaN"`},
		{"two dots is text", exportfmt.KindDecimal, "1.2.3", `"1.2.3"`},
		{"true", exportfmt.KindBoolean, "true", `true`},
		{"false", exportfmt.KindBoolean, "false", `false`},
		{"postgres t", exportfmt.KindBoolean, "t", `true`},
		{"odd boolean is text", exportfmt.KindBoolean, "yes", `"yes"`},
		{"timestamp", exportfmt.KindTimestamp, "2026-01-02T03:04:05Z", `"2026-01-02T03:04:05Z"`},
		{"null", exportfmt.KindText, nil, `null`},
		{"empty text", exportfmt.KindText, "", `""`},
		{"quote and backslash", exportfmt.KindText, `a"b\c`, `"a\"b\\c"`},
		{"control characters", exportfmt.KindText, "\x00\x08\x0c\x1b\x1f", `"\u0000\u0008\u000c\u001b\u001f"`},
		{"CR LF tab", exportfmt.KindText, "\r\n\t", `"\r\n\t"`},
		{"no html escaping", exportfmt.KindText, "<a href='x'>&</a>", `"<a href='x'>&</a>"`},
		{"line and paragraph separators", exportfmt.KindText, "a\u2028b\u2029c", `"a\u2028b\u2029c"`},
		{"emoji kept", exportfmt.KindText, "🎧 é", `"🎧 é"`},
		{"invalid UTF-8", exportfmt.KindText, "a\xffb\xe2\x82", `"a\ufffdb\ufffd\ufffd"`},
		{"unknown kind is text", exportfmt.Kind("money"), "1", `"1"`},
		{"json object", exportfmt.KindJSON, `{"a": [1, 2]}`, `{"a": [1, 2]}`},
		{"json with line breaks is compacted", exportfmt.KindJSON, "{\r\n\"a\": 1}", `{"a":1}`},
		{"empty json is a string", exportfmt.KindJSON, "", `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cols := []exportfmt.Column{{Name: "v", Kind: tt.kind}}
			out := writeJSON(t, exportfmt.JSONOptions{Lines: true}, cols, [][]any{{tt.cell}})
			want := `{"v":` + tt.want + "}\n"
			if string(out) != want {
				t.Errorf("got  %s\nwant %s", out, want)
			}
			if !json.Valid(out) {
				t.Errorf("invalid JSON: %s", out)
			}
		})
	}
}

func TestJSONKeysEscaped(t *testing.T) {
	t.Parallel()
	cols := []exportfmt.Column{{Name: `we"ird`, Kind: exportfmt.KindText}, {Name: "é", Kind: exportfmt.KindInteger}}
	out := writeJSON(t, exportfmt.JSONOptions{Lines: true}, cols, [][]any{{"x", "1"}})
	if want := `{"we\"ird":"x","é":1}` + "\n"; string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
	out = writeJSON(t, exportfmt.JSONOptions{Pretty: true}, nil, [][]any{{}})
	if want := "[\n  {}\n]\n"; string(out) != want {
		t.Errorf("no columns: got %q, want %q", out, want)
	}
}

func TestJSONErrors(t *testing.T) {
	t.Parallel()
	w := exportfmt.NewJSON(io.Discard, exportfmt.JSONOptions{})
	if err := w.WriteHeader(jsonCols[:2]); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRow([][]byte{[]byte("1")}); err == nil {
		t.Error("short row accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := w.WriteRow([][]byte{nil, nil}); err == nil {
		t.Error("row after Close accepted")
	}

	failing := exportfmt.NewJSON(errWriter{}, exportfmt.JSONOptions{})
	if err := failing.WriteHeader(jsonCols[:1]); err != nil {
		t.Fatal(err)
	}
	big := [][]byte{bytes.Repeat([]byte("1"), 100<<10)} // past the 64 KiB buffer
	if err := failing.WriteRow(big); err == nil {
		t.Error("write error not reported by WriteRow")
	}
	if err := failing.Close(); err == nil {
		t.Error("write error not reported by Close")
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func ExampleNewJSON() {
	w := exportfmt.NewJSON(os.Stdout, exportfmt.JSONOptions{})
	_ = w.WriteHeader([]exportfmt.Column{
		{Name: "sku", Kind: exportfmt.KindText},
		{Name: "price", Kind: exportfmt.KindDecimal},
		{Name: "attributes", Kind: exportfmt.KindJSON},
	})
	_ = w.WriteRow([][]byte{[]byte("A-1"), []byte("12.50"), []byte(`{"color": "red"}`)})
	_ = w.WriteRow([][]byte{[]byte(`B "2"`), nil, nil})
	_ = w.Close()
	// Output:
	// [
	// {"sku":"A-1","price":12.50,"attributes":{"color": "red"}},
	// {"sku":"B \"2\"","price":null,"attributes":null}
	// ]
}
