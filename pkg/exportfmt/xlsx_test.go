package exportfmt_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/productsmanager/exportplatform/pkg/exportfmt"
)

// The workbooks are read back by openpyxl (testdata/read_xlsx.py), a reader independent of
// excelize, and by excelize itself.

type xlsxCell struct {
	V    any    `json:"v"`
	T    string `json:"t"`
	F    string `json:"f"`
	B    bool   `json:"b"`
	Fill string `json:"fill"`
}

type xlsxSheet struct {
	Name       string             `json:"name"`
	Freeze     string             `json:"freeze"`
	Autofilter string             `json:"autofilter"`
	Widths     map[string]float64 `json:"widths"`
	Rows       [][]*xlsxCell      `json:"rows"`
	ROWidth    int                `json:"read_only_width"`
}

var (
	pythonOnce sync.Once
	python     string
)

// openpyxl reads file back, or skips the test (fails it on CI) without python3 and openpyxl.
func openpyxl(t *testing.T, file []byte) []xlsxSheet {
	t.Helper()
	pythonOnce.Do(func() {
		// The Debian package installs for the system python, which a pyenv shim may hide.
		for _, py := range []string{"python3", "/usr/bin/python3"} {
			if exec.Command(py, "-c", "import openpyxl").Run() == nil {
				python = py
				return
			}
		}
	})
	if python == "" {
		msg := "python3 with openpyxl not found: apt-get install python3-openpyxl"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	path := filepath.Join(t.TempDir(), "out.xlsx")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, filepath.Join("testdata", "read_xlsx.py"), path).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("openpyxl: %v\n%s", err, stderr)
	}
	var book struct{ Sheets []xlsxSheet }
	if err := json.Unmarshal(out, &book); err != nil {
		t.Fatal(err)
	}
	return book.Sheets
}

type table struct {
	sheet string // "" calls no StartSheet
	cols  []exportfmt.Column
	rows  [][]any // nil is NULL
}

func writeXLSX(t *testing.T, opts exportfmt.XLSXOptions, tables ...table) ([]byte, []string) {
	t.Helper()
	var buf bytes.Buffer
	x, err := exportfmt.NewXLSX(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.sheet != "" {
			if err := x.StartSheet(tb.sheet); err != nil {
				t.Fatal(err)
			}
		}
		if tb.cols == nil {
			continue
		}
		if err := x.WriteHeader(tb.cols); err != nil {
			t.Fatal(err)
		}
		cells := make([][]byte, len(tb.cols))
		for _, r := range tb.rows {
			copy(cells, cellsOf(r))
			if err := x.WriteRow(cells); err != nil {
				t.Fatal(err)
			}
			// The catalog cursor reuses its buffers: the writer must not have kept ours.
			for _, c := range cells {
				for j := range c {
					c[j] = '#'
				}
			}
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), x.Warnings()
}

var xlsxCols = []exportfmt.Column{
	{Name: "id", Kind: exportfmt.KindInteger},
	{Name: "sku", Kind: exportfmt.KindText},
	{Name: "price", Kind: exportfmt.KindDecimal},
	{Name: "active", Kind: exportfmt.KindBoolean},
	{Name: "updated_at", Kind: exportfmt.KindTimestamp},
	{Name: "attributes", Kind: exportfmt.KindJSON},
	{Name: "description", Kind: exportfmt.KindText},
}

var xlsxRows = [][]any{
	{"1", "S-1", "12.50", "true", "2026-01-02T03:04:05Z", `{"color": "red"}`, `Câble "Ultra" 🎧 & <b>`},
	{"-2", "=SUM(A1:A9)", "0.00", "false", "2026-12-31T23:59:59Z", `[]`, "line1\r\nline2\ttab"},
	{nil, "+33 1 23", nil, nil, nil, nil, nil},
	{"1234567890123456", "@home", "-0.99", "t", "2026-01-02T03:04:05.5+01:00", "{}", "  spaces kept  "},
	{"12a", "-x", "abc", "maybe", "not a date", "{}", "ctl\x00\x01\x1b kept\x7f \xffinvalid"},
	{"0", strings.Repeat("w", 200), "1", "false", "1899-06-01T00:00:00Z", "{}", "_x0041_ literal"},
}

func TestXLSXReadBack(t *testing.T) {
	t.Parallel()
	suppliers := []exportfmt.Column{{Name: "code", Kind: exportfmt.KindText}, {Name: "active", Kind: exportfmt.KindBoolean}}
	file, warnings := writeXLSX(t, exportfmt.XLSXOptions{},
		table{sheet: "products", cols: xlsxCols, rows: xlsxRows},
		table{sheet: "suppliers", cols: suppliers, rows: [][]any{{"SUP-1", "true"}}},
		table{sheet: "categories", cols: suppliers}, // a table without rows
	)
	sheets := openpyxl(t, file)
	if got, want := sheetNames(sheets), []string{"products", "suppliers", "categories"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("sheets %q, want %q", got, want)
	}
	p := sheets[0]
	header := p.Rows[0]
	for i, col := range xlsxCols {
		if c := header[i]; c == nil || c.V != col.Name || c.T != "str" || !c.B || c.Fill != "FFD9D9D9" {
			t.Errorf("header %d = %+v, want bold grey %q", i, c, col.Name)
		}
	}
	type want struct {
		v any
		t string // python type; "" for an empty cell
		f string // number format
	}
	str := func(s string) want { return want{s, "str", "General"} }
	none := want{}
	// The OOXML escape of a literal "_x0041_" is "_x005F_x0041_", which openpyxl 3.0 does
	// not undo (Excel and excelize do): checked with excelize below.
	skip := want{t: "skip"}
	wantRows := [][]want{
		{{1.0, "int", "General"}, str("S-1"), {12.5, "float", "0.00"}, {true, "bool", "General"},
			{"2026-01-02T03:04:05", "datetime", "yyyy-mm-dd hh:mm:ss"}, str(`{"color": "red"}`), str(`Câble "Ultra" 🎧 & <b>`)},
		{{-2.0, "int", "General"}, str("=SUM(A1:A9)"), {0.0, "int", "0.00"}, {false, "bool", "General"},
			{"2026-12-31T23:59:59", "datetime", "yyyy-mm-dd hh:mm:ss"}, str("[]"), str("line1\r\nline2\ttab")},
		{none, str("+33 1 23"), none, none, none, none, none},
		// 16 digits: Excel would round it, so it stays text; a zone is converted to UTC.
		{str("1234567890123456"), str("@home"), {-0.99, "float", "0.00"}, {true, "bool", "General"},
			{"2026-01-02T02:04:05.500000", "datetime", "yyyy-mm-dd hh:mm:ss"}, str("{}"), str("  spaces kept  ")},
		// What does not parse as its kind is kept as text; XML-forbidden characters go.
		{str("12a"), str("-x"), {"abc", "str", "0.00"}, str("maybe"), {"not a date", "str", "yyyy-mm-dd hh:mm:ss"},
			str("{}"), str("ctl kept\x7f \ufffdinvalid")},
		{{0.0, "int", "General"}, str(strings.Repeat("w", 200)), {1.0, "int", "0.00"}, {false, "bool", "General"},
			{"1899-06-01T00:00:00Z", "str", "yyyy-mm-dd hh:mm:ss"}, str("{}"), skip},
	}
	if len(p.Rows) != len(wantRows)+1 {
		t.Fatalf("products has %d rows, want %d", len(p.Rows), len(wantRows)+1)
	}
	for i, wr := range wantRows {
		for j, w := range wr {
			got := p.Rows[i+1][j]
			name := fmt.Sprintf("row %d %s", i+2, xlsxCols[j].Name)
			if w.t == "skip" {
				continue
			}
			if w.t == "" {
				if got != nil {
					t.Errorf("%s = %+v, want empty", name, got)
				}
				continue
			}
			if got == nil {
				t.Errorf("%s empty, want %v", name, w.v)
				continue
			}
			if got.V != w.v || got.T != w.t || got.F != w.f || got.B {
				t.Errorf("%s = %#v (%s, %q, bold %v), want %#v (%s, %q)", name, got.V, got.T, got.F, got.B, w.v, w.t, w.f)
			}
		}
	}
	if p.ROWidth != len(xlsxCols) {
		t.Errorf("openpyxl read-only sees %d columns, want %d", p.ROWidth, len(xlsxCols))
	}
	if p.Freeze != "A2" {
		t.Errorf("freeze %q, want A2", p.Freeze)
	}
	if ref := strings.ReplaceAll(p.Autofilter, "$", ""); ref != "A1:G7" {
		t.Errorf("autofilter %q, want A1:G7", p.Autofilter)
	}
	if w := p.Widths["B"]; w != 60 {
		t.Errorf("sku width %v, want the cap 60", w)
	}
	if w := p.Widths["A"]; w != 18 {
		t.Errorf("id width %v, want 18: the longest value, 16 digits, and 2", w)
	}
	if w := p.Widths["D"]; w != 10 {
		t.Errorf("active width %v, want 10: the header, its filter button and 1", w)
	}
	if got := strings.ReplaceAll(sheets[1].Autofilter, "$", ""); got != "A1:B2" || sheets[1].Freeze != "A2" {
		t.Errorf("suppliers autofilter %q freeze %q", got, sheets[1].Freeze)
	}
	if got := strings.ReplaceAll(sheets[2].Autofilter, "$", ""); got != "A1:B1" || len(sheets[2].Rows) != 1 {
		t.Errorf("empty categories: autofilter %q, %d rows", got, len(sheets[2].Rows))
	}
	wantWarnings := []string{"1 cell held control characters or invalid UTF-8, which a spreadsheet cannot store: they were removed"}
	if !reflect.DeepEqual(warnings, wantWarnings) {
		t.Errorf("warnings %q, want %q", warnings, wantWarnings)
	}

	// excelize reads the same values, and the literal _x0041_ survives its escaping.
	f, err := excelize.OpenReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("products", excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := rows[6][6]; got != "_x0041_ literal" {
		t.Errorf("excelize reads %q, want _x0041_ literal", got)
	}
	if got := rows[2][1]; got != "=SUM(A1:A9)" {
		t.Errorf("excelize reads %q", got)
	}
	if formula, _ := f.GetCellFormula("products", "B3"); formula != "" {
		t.Errorf("B3 is a formula: %q", formula)
	}
	if typ, _ := f.GetCellType("products", "B3"); typ != excelize.CellTypeInlineString {
		t.Errorf("B3 type %v, want an inline string", typ)
	}
}

func TestXLSXSheets(t *testing.T) {
	t.Parallel()
	cols := []exportfmt.Column{{Name: "n", Kind: exportfmt.KindInteger}, {Name: "s", Kind: exportfmt.KindText}}
	rows := func(n int) [][]any {
		r := make([][]any, n)
		for i := range r {
			r[i] = []any{fmt.Sprint(i + 1), fmt.Sprintf("row %d", i+1)}
		}
		return r
	}
	long := strings.Repeat("x", 40)
	tests := []struct {
		name         string
		opts         exportfmt.XLSXOptions
		tables       []table
		wantSheets   []string
		wantRows     []int // data rows per sheet
		wantWarnings []string
	}{
		{"default sheet name", exportfmt.XLSXOptions{}, []table{{cols: cols, rows: rows(2)}},
			[]string{"data"}, []int{2}, nil},
		{"nothing written", exportfmt.XLSXOptions{}, nil, []string{"data"}, []int{-1}, nil},
		{"sheet without header", exportfmt.XLSXOptions{}, []table{{sheet: "products"}},
			[]string{"products"}, []int{-1}, nil},
		{"continuation", exportfmt.XLSXOptions{MaxRowsPerSheet: 3, SampleRows: 5},
			[]table{{sheet: "products", cols: cols, rows: rows(8)}, {sheet: "suppliers", cols: cols, rows: rows(3)}},
			[]string{"products", "products (2)", "products (3)", "suppliers"}, []int{3, 3, 2, 3},
			[]string{`sheet "products" continues on 2 more sheets, the last one "products (3)"`}},
		{"continuation of a long name stays within 31 characters", exportfmt.XLSXOptions{MaxRowsPerSheet: 1},
			[]table{{sheet: long, cols: cols, rows: rows(2)}},
			[]string{long[:31], long[:27] + " (2)"}, []int{1, 1},
			[]string{fmt.Sprintf("sheet %q continues on 1 more sheet, the last one %q", long[:31], long[:27]+" (2)")}},
		{"names made acceptable", exportfmt.XLSXOptions{},
			[]table{{sheet: "a/b:c?[d]*", cols: cols}, {sheet: "'quoted'", cols: cols}, {sheet: "history", cols: cols}},
			[]string{"a_b_c__d__", "quoted", "history_"}, []int{0, 0, 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file, warnings := writeXLSX(t, tt.opts, tt.tables...)
			sheets := openpyxl(t, file)
			if got := sheetNames(sheets); !reflect.DeepEqual(got, tt.wantSheets) {
				t.Fatalf("sheets %q, want %q", got, tt.wantSheets)
			}
			n := 1
			for i, s := range sheets {
				if tt.wantRows[i] < 0 {
					if len(s.Rows) > 1 || len(s.Rows) == 1 && anyCell(s.Rows[0]) {
						t.Errorf("sheet %q not empty: %d rows", s.Name, len(s.Rows))
					}
					continue
				}
				if len(s.Rows) != tt.wantRows[i]+1 {
					t.Errorf("sheet %q has %d rows, want %d + header", s.Name, len(s.Rows), tt.wantRows[i])
					continue
				}
				if s.Rows[0][0].V != "n" || !s.Rows[0][0].B || s.Freeze != "A2" {
					t.Errorf("sheet %q: header %+v, freeze %q", s.Name, s.Rows[0][0], s.Freeze)
				}
				if want := fmt.Sprintf("A1:B%d", tt.wantRows[i]+1); strings.ReplaceAll(s.Autofilter, "$", "") != want {
					t.Errorf("sheet %q autofilter %q, want %s", s.Name, s.Autofilter, want)
				}
				if !strings.HasPrefix(s.Name, tt.wantSheets[0]) {
					continue
				}
				// The first table, maybe continued: same widths, rows numbered on.
				if !reflect.DeepEqual(s.Widths, sheets[0].Widths) {
					t.Errorf("sheet %q widths %v, first sheet %v", s.Name, s.Widths, sheets[0].Widths)
				}
				for _, r := range s.Rows[1:] {
					if r[0].V != float64(n) || r[1].V != fmt.Sprintf("row %d", n) {
						t.Errorf("sheet %q: row %v, want %d", s.Name, r, n)
					}
					n++
				}
			}
			if !reflect.DeepEqual(warnings, tt.wantWarnings) {
				t.Errorf("warnings %q, want %q", warnings, tt.wantWarnings)
			}
		})
	}
}

func TestXLSXCut(t *testing.T) {
	t.Parallel()
	cols := []exportfmt.Column{{Name: "s", Kind: exportfmt.KindText}, {Name: "j", Kind: exportfmt.KindJSON}}
	file, warnings := writeXLSX(t, exportfmt.XLSXOptions{MaxCellChars: 5}, table{cols: cols, rows: [][]any{
		{"abcdefgh", `{"a": 1}`},
		{"abcde", "🎧🎧🎧"}, // an emoji counts two, as in Excel
		{"ab\x00cdefg", nil},
	}})
	sheets := openpyxl(t, file)
	var got [][]any
	for _, r := range sheets[0].Rows[1:] {
		var vals []any
		for _, c := range r {
			if c == nil {
				vals = append(vals, nil)
			} else {
				vals = append(vals, c.V)
			}
		}
		got = append(got, vals)
	}
	want := [][]any{{"abcde", `{"a":`}, {"abcde", "🎧🎧"}, {"abcde", nil}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cells %q, want %q", got, want)
	}
	wantWarnings := []string{
		"4 cells longer than 5 characters were cut",
		"1 cell held control characters or invalid UTF-8, which a spreadsheet cannot store: they were removed",
	}
	if !reflect.DeepEqual(warnings, wantWarnings) {
		t.Errorf("warnings %q, want %q", warnings, wantWarnings)
	}
}

// TestXLSXSheetBytes checks a table continues on a new sheet before its XML passes the size
// that would need zip64 (lowered here from 3.75 GiB).
func TestXLSXSheetBytes(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	x, err := exportfmt.NewXLSX(&buf, exportfmt.XLSXOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exportfmt.SetMaxSheetBytes(x, 4000)
	cols := []exportfmt.Column{{Name: "s", Kind: exportfmt.KindText}}
	if err := x.StartSheet("products"); err != nil {
		t.Fatal(err)
	}
	if err := x.WriteHeader(cols); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := x.WriteRow([][]byte{bytes.Repeat([]byte("&"), 300)}); err != nil { // 1500 bytes escaped
			t.Fatal(err)
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	total := 0
	for _, name := range f.GetSheetList() {
		rows, err := f.GetRows(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) > 3 {
			t.Errorf("sheet %q has %d rows, over the size", name, len(rows))
		}
		total += len(rows) - 1
	}
	if total != 10 || len(f.GetSheetList()) < 4 {
		t.Errorf("%d rows on sheets %q", total, f.GetSheetList())
	}
}

func TestXLSXErrors(t *testing.T) {
	t.Parallel()
	newX := func(t *testing.T) *exportfmt.XLSX {
		x, err := exportfmt.NewXLSX(io.Discard, exportfmt.XLSXOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = x.Close() })
		return x
	}
	cols := []exportfmt.Column{{Name: "n", Kind: exportfmt.KindInteger}}
	tests := []struct {
		name string
		call func(x *exportfmt.XLSX) error
	}{
		{"row before header", func(x *exportfmt.XLSX) error { return x.WriteRow([][]byte{nil}) }},
		{"row of the wrong length", func(x *exportfmt.XLSX) error {
			_ = x.WriteHeader(cols)
			return x.WriteRow([][]byte{nil, nil})
		}},
		{"two headers", func(x *exportfmt.XLSX) error {
			_ = x.WriteHeader(cols)
			return x.WriteHeader(cols)
		}},
		{"sheet name taken, ignoring case", func(x *exportfmt.XLSX) error {
			_ = x.StartSheet("products")
			return x.StartSheet("Products")
		}},
		{"row after close", func(x *exportfmt.XLSX) error {
			_ = x.WriteHeader(cols)
			_ = x.Close()
			return x.WriteRow([][]byte{nil})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.call(newX(t)); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := exportfmt.NewXLSX(io.Discard, exportfmt.XLSXOptions{MaxRowsPerSheet: -1}); err == nil {
		t.Error("negative option accepted")
	}

	t.Run("close twice", func(t *testing.T) {
		t.Parallel()
		x, err := exportfmt.NewXLSX(errWriter{}, exportfmt.XLSXOptions{})
		if err != nil {
			t.Fatal(err)
		}
		first := x.Close()
		if first == nil {
			t.Fatal("write error not reported")
		}
		if second := x.Close(); second != first {
			t.Errorf("second Close %v, want the first's %v", second, first)
		}
	})
}

func sheetNames(sheets []xlsxSheet) []string {
	var names []string
	for _, s := range sheets {
		names = append(names, s.Name)
	}
	return names
}

func anyCell(row []*xlsxCell) bool {
	for _, c := range row {
		if c != nil {
			return true
		}
	}
	return false
}

// A big workbook goes to its writer as it is written, never to a temporary file; Abort stops
// it there (a truncated zip nobody reads as a workbook), and Close then reports the abort.
func TestXLSXStreamsWithoutTemporaryFiles(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	write := func(t *testing.T) (*exportfmt.XLSX, *bytes.Buffer) {
		var out bytes.Buffer
		x, err := exportfmt.NewXLSX(&out, exportfmt.XLSXOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := x.WriteHeader([]exportfmt.Column{{Name: "description", Kind: exportfmt.KindText}}); err != nil {
			t.Fatal(err)
		}
		long := []byte(strings.Repeat("é", 20000))
		for i := 0; i < 1000; i++ { // about 40 MB of sheet XML
			if err := x.WriteRow([][]byte{long}); err != nil {
				t.Fatal(err)
			}
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Fatalf("%d files in TMPDIR after 40 MB of rows, e.g. %s", len(left), left[0].Name())
		}
		if out.Len() == 0 {
			t.Fatal("nothing reached the writer after 40 MB of rows: the sheet is held back")
		}
		return x, &out
	}
	t.Run("close", func(t *testing.T) {
		x, out := write(t)
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		f, err := excelize.OpenReader(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rows, err := f.GetRows("data")
		if err != nil || len(rows) != 1001 {
			t.Errorf("%d rows read back (%v), want 1001", len(rows), err)
		}
	})
	t.Run("abort", func(t *testing.T) {
		x, out := write(t)
		if err := x.Abort(); err != nil {
			t.Fatal(err)
		}
		if err := x.Close(); err == nil {
			t.Error("Close after Abort succeeded: an abandoned workbook must not look finished")
		}
		if _, err := zip.NewReader(bytes.NewReader(out.Bytes()), int64(out.Len())); err == nil {
			t.Error("an abandoned workbook reads as a zip")
		}
	})
}
