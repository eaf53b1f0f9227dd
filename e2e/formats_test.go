package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// formatsCatalog is the catalog size the format tests read, the one TestCSVExportEndToEnd
// seeds: every expectation below comes from SQL on it, never from a hard-coded count.
const formatsCatalog = 10000

const xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

// catalogConn connects to the catalog database, closed at the end of the test.
func (s stack) catalogConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), s.catalogDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (s stack) reader(t *testing.T) string {
	return s.token(t, "e2e-writer", auth.PermReadExports)
}

// stream GETs /api/v1/exports/stream/{format}/{entity}?rawQuery and wants a 200.
func (s stack) stream(t *testing.T, format, entity, rawQuery string) (http.Header, []byte) {
	t.Helper()
	path := "/api/v1/exports/stream/" + format + "/" + entity + "?" + rawQuery
	code, h, body := s.doHeader(t, http.MethodGet, path, s.reader(t), nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %.500s", path, code, body)
	}
	return h, body
}

// jobFile is a completed job's file (CONTRACT §4).
type jobFile struct {
	ObjectKey   string `json:"object_key"`
	FileName    string `json:"file_name"`
	ContentType string `json:"content_type"`
	SizeBytes   int64  `json:"size_bytes"`
	SHA256      string `json:"sha256"`
}

type jobView struct {
	ID        string          `json:"id"`
	Status    string          `json:"status"`
	RowsDone  int64           `json:"rows_done"`
	RowsTotal *int64          `json:"rows_total"`
	File      *jobFile        `json:"file"`
	Warnings  json.RawMessage `json:"warnings"`
}

// job GETs /api/v1/exports/{id}.
func (s stack) job(t *testing.T, id string) jobView {
	t.Helper()
	code, body := s.do(t, http.MethodGet, "/api/v1/exports/"+id, s.reader(t), nil)
	var j jobView
	if code != http.StatusOK || json.Unmarshal(body, &j) != nil {
		t.Fatalf("GET job %s = %d %.500s", id, code, body)
	}
	return j
}

// warnings decodes the job's warnings, which must be a JSON array.
func (j jobView) warnings(t *testing.T) []string {
	t.Helper()
	var ws []string
	if !bytes.HasPrefix(bytes.TrimSpace(j.Warnings), []byte("[")) || json.Unmarshal(j.Warnings, &ws) != nil {
		t.Errorf("job %s: warnings = %s, want a JSON array", j.ID, j.Warnings)
	}
	return ws
}

// storedExport POSTs req as an export job, waits for it to complete and downloads the file;
// the job's file must describe the bytes downloaded.
func (s stack) storedExport(t *testing.T, format, entity string, req any) (jobView, []byte) {
	t.Helper()
	a := s.requestExport(t, s.writer(t), format, entity, req)
	s.waitStatus(t, a.JobID, "completed", time.Minute)
	data := s.download(t, a.JobID)
	j := s.job(t, a.JobID)
	if j.File == nil {
		t.Fatalf("completed job %s has no file", a.JobID)
	}
	if j.File.SHA256 != sha(data) || j.File.SizeBytes != int64(len(data)) || j.File.ObjectKey == "" {
		t.Errorf("job %s file = %+v; the download has %d bytes, sha256 %s", a.JobID, *j.File, len(data), sha(data))
	}
	return j, data
}

// apiError is the contract's error body.
type apiError struct {
	Error struct {
		Code, Message, Field string
	} `json:"error"`
}

// wantError checks a refusal: the status, the JSON error shape and the field at fault.
func wantError(t *testing.T, what string, code int, body []byte, wantCode int, field string) {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Errorf("%s: %d %.300s: not the JSON error shape", what, code, body)
		return
	}
	if code != wantCode || e.Error.Field != field || e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("%s = %d %+v, want %d naming %q", what, code, e.Error, wantCode, field)
	}
}

// parseCSV reads RFC 4180 CSV byte for byte: unlike encoding/csv it keeps a \r inside a
// quoted cell, so text can be compared exactly with the database. Records end with \n or
// \r\n (eol says which: one file uses one); a quote in an unquoted cell, a bare \r, a
// missing final line ending or records of different widths fail the test.
func parseCSV(t *testing.T, data []byte, delim byte) (recs [][]string, eol string) {
	t.Helper()
	var rec []string
	var cell []byte
	i, n := 0, len(data)
	for i < n {
		if data[i] == '"' {
			i++
			for {
				if i >= n {
					t.Fatalf("csv: unterminated quoted cell in record %d", len(recs)+1)
				}
				if data[i] == '"' {
					if i+1 < n && data[i+1] == '"' {
						cell = append(cell, '"')
						i += 2
						continue
					}
					i++
					break
				}
				cell = append(cell, data[i])
				i++
			}
		} else {
			for i < n && data[i] != delim && data[i] != '\n' && data[i] != '\r' {
				if data[i] == '"' {
					t.Fatalf("csv: quote inside an unquoted cell at byte %d: %q", i, data[max(0, i-40):min(n, i+40)])
				}
				cell = append(cell, data[i])
				i++
			}
		}
		rec = append(rec, string(cell))
		cell = cell[:0]
		end := ""
		switch {
		case i >= n:
			t.Fatalf("csv: the last record has no line ending: %q", data[max(0, n-80):])
		case data[i] == delim:
			i++
			continue
		case data[i] == '\n':
			end = "\n"
		case data[i] == '\r' && i+1 < n && data[i+1] == '\n':
			end = "\r\n"
		default:
			t.Fatalf("csv: unexpected %q after a cell at byte %d: %q", data[i], i, data[max(0, i-40):min(n, i+40)])
		}
		i += len(end)
		if eol == "" {
			eol = end
		} else if eol != end {
			t.Fatalf("csv: record %d ends with %q, the first with %q", len(recs)+1, end, eol)
		}
		if len(recs) > 0 && len(rec) != len(recs[0]) {
			t.Fatalf("csv: record %d has %d cells, the header %d: %q", len(recs)+1, len(rec), len(recs[0]), rec)
		}
		recs = append(recs, rec)
		rec = nil
	}
	return recs, eol
}

// sqlIDs runs a hand-written query answering ids, in order.
func sqlIDs(t *testing.T, conn *pgx.Conn, query string, args ...any) []int64 {
	t.Helper()
	rows, err := conn.Query(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return ids
}

func sqlOne[T any](t *testing.T, conn *pgx.Conn, query string, args ...any) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(context.Background(), query, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

func joinIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ",")
}

// csvIDs reads the id column of a CSV stream made with fields=id&bom=false.
func csvIDs(t *testing.T, data []byte) []int64 {
	t.Helper()
	recs, _ := parseCSV(t, data, ',')
	if len(recs) == 0 || len(recs[0]) != 1 || recs[0][0] != "id" {
		t.Fatalf("want a CSV with the one column id, got %.200q", data)
	}
	ids := make([]int64, 0, len(recs)-1)
	for _, r := range recs[1:] {
		id, err := strconv.ParseInt(r[0], 10, 64)
		if err != nil {
			t.Fatalf("id cell %q: %v", r[0], err)
		}
		ids = append(ids, id)
	}
	return ids
}

// sameIDs compares the ids an export holds with those SQL selects.
func sameIDs(t *testing.T, what string, got, want []int64) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s: %d rows, SQL selects %d", what, len(got), len(want))
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("%s: first difference at row %d: id %d, SQL %d", what, i+1, got[i], want[i])
			break
		}
	}
}

// TestStreamAndStoredAreByteIdentical: the same request, as a stream (query parameters) and as
// a stored job (JSON body), gives the same bytes, whose sha256 is the job's; the stream says
// what it is (Content-Type) and what to call it (Content-Disposition). Each case also checks
// that its non-default options took effect, so two equally wrong files cannot pass.
func TestStreamAndStoredAreByteIdentical(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, formatsCatalog)
	conn := s.catalogConn(t)

	type testCase struct {
		name, format, entity string
		query                url.Values
		body                 map[string]any
		contentType, file    string
		check                func(t *testing.T, data []byte)
	}
	csvFields := []string{"id", "sku", "name", "description", "price", "stock", "status", "category_path", "supplier_name", "created_at"}
	tests := []testCase{
		{
			name: "csv with every option changed", format: "csv", entity: "products",
			query: url.Values{"fields": {strings.Join(csvFields, ",")}, "status": {"active,draft"}, "price_max": {"100"},
				"delimiter": {";"}, "decimal": {","}, "line_ending": {"crlf"}, "bom": {"false"}, "file_name": {"catalog export.csv"}},
			body: map[string]any{"fields": csvFields, "filters": map[string]any{"status": []string{"active", "draft"}, "price_max": 100},
				"options":   map[string]any{"delimiter": ";", "decimal": ",", "line_ending": "crlf", "bom": false},
				"file_name": "catalog export.csv"},
			contentType: "text/csv; charset=utf-8", file: "catalog export.csv",
			check: func(t *testing.T, data []byte) {
				if bytes.HasPrefix(data, []byte("\xEF\xBB\xBF")) {
					t.Error("bom=false, yet the file starts with a BOM")
				}
				recs, eol := parseCSV(t, data, ';')
				if eol != "\r\n" {
					t.Errorf("line_ending=crlf, yet records end with %q", eol)
				}
				if !slices.Equal(recs[0], csvFields) {
					t.Errorf("header %q, want %q", recs[0], csvFields)
				}
				want := sqlOne[int64](t, conn, `SELECT count(*) FROM products WHERE status IN ('active', 'draft') AND price <= 100`)
				if int64(len(recs)-1) != want {
					t.Errorf("%d rows, SQL counts %d", len(recs)-1, want)
				}
				price := regexp.MustCompile(`^[0-9]+,[0-9]{2}$`)
				for _, r := range recs[1:] {
					if !price.MatchString(r[4]) {
						t.Fatalf("decimal=, yet price cell %q (row %q)", r[4], r[:2])
					}
				}
			},
		},
		{
			name: "json lines with relations", format: "json", entity: "products",
			query: url.Values{"stock_min": {"500"}, "lines": {"true"}, "include_relations": {"true"}},
			body: map[string]any{"filters": map[string]any{"stock_min": 500},
				"options": map[string]any{"lines": true, "include_relations": true}},
			contentType: "application/x-ndjson", file: "products.jsonl",
			check: func(t *testing.T, data []byte) {
				if !bytes.HasSuffix(data, []byte("\n")) || bytes.HasPrefix(data, []byte("[")) {
					t.Fatalf("not JSON Lines: %.100q … %q", data, data[max(0, len(data)-20):])
				}
				lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
				want := sqlOne[int64](t, conn, `SELECT count(*) FROM products WHERE stock >= 500`)
				if int64(len(lines)) != want {
					t.Errorf("%d lines, SQL counts %d products with stock >= 500", len(lines), want)
				}
				for i, l := range lines {
					var p map[string]json.RawMessage
					if err := json.Unmarshal(l, &p); err != nil {
						t.Fatalf("line %d is not a JSON object: %v: %.200q", i+1, err, l)
					}
					if _, ok := p["category"]; !ok || !bytes.HasPrefix(p["suppliers"], []byte("[")) {
						t.Fatalf("line %d lacks the relations category and suppliers: %.300s", i+1, l)
					}
				}
			},
		},
		{
			name: "json array pretty", format: "json", entity: "suppliers",
			query: url.Values{"active": {"true"}, "country": {"FR,DE"}, "pretty": {"true"}},
			body: map[string]any{"filters": map[string]any{"active": true, "country": []string{"FR", "DE"}},
				"options": map[string]any{"pretty": true}},
			contentType: "application/json; charset=utf-8", file: "suppliers.json",
			check: func(t *testing.T, data []byte) {
				var got []map[string]any
				if err := json.Unmarshal(data, &got); err != nil {
					t.Fatalf("not a JSON array: %v", err)
				}
				if !bytes.HasPrefix(data, []byte("[\n  {\n    \"")) {
					t.Errorf("pretty=true, yet the array starts %.40q", data)
				}
				want := sqlOne[int64](t, conn, `SELECT count(*) FROM suppliers WHERE active AND country IN ('FR', 'DE')`)
				if int64(len(got)) != want {
					t.Errorf("%d suppliers, SQL counts %d", len(got), want)
				}
			},
		},
		{
			name: "json array compact", format: "json", entity: "products",
			query: url.Values{"exclude_fields": {"description"}, "search": {"ultra"}, "fields": {"id,sku,name,description,price,attributes"}},
			body: map[string]any{"fields": []string{"id", "sku", "name", "description", "price", "attributes"},
				"exclude_fields": []string{"description"}, "filters": map[string]any{"search": "ultra"}},
			contentType: "application/json; charset=utf-8", file: "products.json",
			check: func(t *testing.T, data []byte) {
				var got []map[string]json.RawMessage
				if err := json.Unmarshal(data, &got); err != nil {
					t.Fatalf("not a JSON array: %v", err)
				}
				if !bytes.HasPrefix(data, []byte("[\n{\"id\":")) {
					t.Errorf("compact array starts %.40q", data)
				}
				want := sqlOne[int64](t, conn, `SELECT count(*) FROM products WHERE strpos(lower(name), 'ultra') > 0`)
				if int64(len(got)) != want || want == 0 {
					t.Errorf("%d products, SQL counts %d", len(got), want)
				}
				for _, p := range got {
					if _, ok := p["description"]; ok || len(p) != 5 {
						t.Fatalf("exclude_fields=description, yet keys %v", slices.Sorted(maps.Keys(p)))
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, streamed := s.stream(t, tt.format, tt.entity, tt.query.Encode())
			if ct := h.Get("Content-Type"); ct != tt.contentType {
				t.Errorf("stream Content-Type %q, want %q", ct, tt.contentType)
			}
			if cd, want := h.Get("Content-Disposition"), `attachment; filename="`+tt.file+`"`; cd != want {
				t.Errorf("stream Content-Disposition %q, want %q", cd, want)
			}
			j, stored := s.storedExport(t, tt.format, tt.entity, tt.body)
			if !bytes.Equal(streamed, stored) {
				i := 0
				for i < min(len(streamed), len(stored)) && streamed[i] == stored[i] {
					i++
				}
				t.Errorf("stream (%d bytes) and stored file (%d bytes) differ from byte %d: stream %q, stored %q",
					len(streamed), len(stored), i, streamed[i:min(len(streamed), i+60)], stored[i:min(len(stored), i+60)])
			}
			if j.File.SHA256 != sha(streamed) {
				t.Errorf("job sha256 %s, the stream hashes to %s", j.File.SHA256, sha(streamed))
			}
			if j.File.ContentType != tt.contentType || j.File.FileName != tt.file {
				t.Errorf("job file %+v, want content type %q, name %q", *j.File, tt.contentType, tt.file)
			}
			if ws := j.warnings(t); len(ws) != 0 {
				t.Errorf("warnings %q for a file that needed no change", ws)
			}
			tt.check(t, streamed)
		})
	}

	// The query as a person types it in a URL, raw ";" and "," included (CONTRACT §4's
	// example), means the same as its encoded form.
	t.Run("hand-typed query", func(t *testing.T) {
		const raw = "fields=id,sku,price&status=active&price_max=20&delimiter=;&decimal=,&bom=false"
		path := "/api/v1/exports/stream/csv/products?" + raw
		code, _, typed := s.doHeader(t, http.MethodGet, path, s.reader(t), nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d %.300s", path, code, typed)
		}
		_, encoded := s.stream(t, "csv", "products", url.Values{"fields": {"id,sku,price"}, "status": {"active"},
			"price_max": {"20"}, "delimiter": {";"}, "decimal": {","}, "bom": {"false"}}.Encode())
		if !bytes.Equal(typed, encoded) {
			t.Errorf("the raw query gave %d bytes, its encoded form %d", len(typed), len(encoded))
		}
	})
}

// openpyxlPython finds a Python that imports openpyxl (Debian's python3-openpyxl lives with
// /usr/bin/python3, which a pyenv or venv python3 on PATH does not see).
func openpyxlPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import openpyxl").Run() == nil {
			return py
		}
	}
	const hint = "openpyxl is missing: apt-get install python3-openpyxl"
	if os.Getenv("CI") != "" {
		t.Fatal(hint)
	}
	t.Skip(hint)
	return ""
}

// xcell is a cell as openpyxl reads it: its Python type and value.
type xcell struct {
	T string // none, bool, int, float, datetime, str; in expectations also decimal (int or float)
	V any    // nil, bool, int64, float64, string
}

func (c *xcell) UnmarshalJSON(b []byte) error {
	var pair [2]json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	if err := json.Unmarshal(pair[0], &c.T); err != nil {
		return err
	}
	var err error
	switch c.T {
	case "none":
		c.V = nil
	case "bool":
		var v bool
		err = json.Unmarshal(pair[1], &v)
		c.V = v
	case "int":
		c.V, err = strconv.ParseInt(string(pair[1]), 10, 64)
	case "float":
		c.V, err = strconv.ParseFloat(string(pair[1]), 64)
	default:
		var v string
		err = json.Unmarshal(pair[1], &v)
		c.V = v
	}
	return err
}

func (c xcell) String() string { return fmt.Sprintf("%s(%#v)", c.T, c.V) }

// matches compares a cell read back with the expected one: a decimal may come back as an int
// (12.00 is the number 12) or a float; an empty text may come back empty or as no value.
func (c xcell) matches(want xcell) bool {
	switch {
	case want.T == "decimal":
		switch v := c.V.(type) {
		case float64:
			return c.T == "float" && v == want.V.(float64)
		case int64:
			return c.T == "int" && float64(v) == want.V.(float64)
		}
		return false
	case want.T == "str" && want.V == "":
		return c.T == "none" || c == want
	}
	return c == want
}

type xsheet struct {
	Name        string     `json:"name"`
	MaxRow      int        `json:"max_row"`
	MaxColumn   int        `json:"max_column"`
	FreezePanes *string    `json:"freeze_panes"`
	AutoFilter  *string    `json:"auto_filter"`
	Header      []any      `json:"header"`
	HeaderBold  []bool     `json:"header_bold"`
	Formats     [][]string `json:"formats"`
	Rows        [][]xcell  `json:"rows"`
}

func nullable[T any](v *T, wrap func(T) xcell) xcell {
	if v == nil {
		return xcell{T: "none"}
	}
	return wrap(*v)
}

func xint(v int64) xcell        { return xcell{"int", v} }
func xstr(v string) xcell       { return xcell{"str", v} }
func xdec(v float64) xcell      { return xcell{"decimal", v} }
func xint32(v int32) xcell      { return xint(int64(v)) }
func xbool(v bool) xcell        { return xcell{"bool", v} }
func ptr[T any](v T) *T         { return &v }
func strOrNone(v *string) xcell { return nullable(v, xstr) }

// xtime is a timestamp as the export writes it: UTC, to the second (truncated, as to_char).
func xtime(v time.Time) xcell {
	return xcell{"datetime", v.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05")}
}

// expectedSheet runs a hand-written query and gives, per row, each column's expected cell.
func expectedSheet(t *testing.T, conn *pgx.Conn, query string, scan func(pgx.Rows) (map[string]xcell, error)) []map[string]xcell {
	t.Helper()
	rows, err := conn.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []map[string]xcell
	for rows.Next() {
		m, err := scan(rows)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

// TestXLSXReadByIndependentReader: a workbook of three sheets read back by openpyxl holds the
// sheets asked, each with the rows SQL selects (every cell compared, typed: numbers, booleans,
// date-times, text), a bold, frozen header with an autofilter over the table.
func TestXLSXReadByIndependentReader(t *testing.T) {
	py := openpyxlPython(t)
	s := getStack(t)
	s.seedOnce(t, formatsCatalog)
	conn := s.catalogConn(t)
	start := time.Now()

	j, data := s.storedExport(t, "excel", "products", map[string]any{
		"filters": map[string]any{"status": "active", "price_max": 100},
		"options": map[string]any{"sheets": []string{"products", "suppliers", "categories"}},
	})
	t.Logf("workbook of %d bytes made in %s", len(data), time.Since(start).Round(time.Millisecond))
	if j.File.ContentType != xlsxType || j.File.FileName != "products.xlsx" {
		t.Errorf("job file %+v, want %s named products.xlsx", *j.File, xlsxType)
	}
	if ws := j.warnings(t); len(ws) != 0 {
		t.Errorf("warnings %q, yet no cell of the seeded catalog is too long for Excel", ws)
	}
	if !bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		t.Fatalf("not a zip file: %.20q", data)
	}
	path := filepath.Join(t.TempDir(), "products.xlsx")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join(s.root, "e2e/testdata/xlsx_dump.py"), path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openpyxl cannot read the workbook: %v\n%s", err, stderr.Bytes())
	}
	var wb struct{ Sheets []xsheet }
	if err := json.Unmarshal(out, &wb); err != nil {
		t.Fatalf("xlsx_dump.py output: %v", err)
	}
	t.Logf("read back by openpyxl (%s) in %s total", py, time.Since(start).Round(time.Millisecond))

	var names []string
	for _, sh := range wb.Sheets {
		names = append(names, sh.Name)
	}
	if want := []string{"products", "suppliers", "categories"}; !slices.Equal(names, want) {
		t.Fatalf("sheets %q, want %q", names, want)
	}

	products := expectedSheet(t, conn, `
		SELECT p.id, p.sku, p.name, p.description, p.brand, p.ean, p.price::float8, p.currency, p.stock,
		       p.status, p.category_id, c.name, c.path, s.id, s.name, p.weight_grams, p.attributes::text,
		       p.created_at, p.updated_at
		FROM products p
		LEFT JOIN categories c ON c.id = p.category_id
		LEFT JOIN product_suppliers ps ON ps.product_id = p.id AND ps.is_primary
		LEFT JOIN suppliers s ON s.id = ps.supplier_id
		WHERE p.status = 'active' AND p.price <= 100
		ORDER BY p.id`,
		func(r pgx.Rows) (map[string]xcell, error) {
			var id, stock int64
			var sku, name, desc, brand, ean, currency, status, attrs string
			var price float64
			var catID, supID *int64
			var catName, catPath, supName *string
			var weight *int32
			var created, updated time.Time
			err := r.Scan(&id, &sku, &name, &desc, &brand, &ean, &price, &currency, &stock, &status, &catID,
				&catName, &catPath, &supID, &supName, &weight, &attrs, &created, &updated)
			return map[string]xcell{
				"id": xint(id), "sku": xstr(sku), "name": xstr(name), "description": xstr(desc),
				"brand": xstr(brand), "ean": xstr(ean), "price": xdec(price), "currency": xstr(currency),
				"stock": xint(stock), "status": xstr(status), "category_id": nullable(catID, xint),
				"category_name": strOrNone(catName), "category_path": strOrNone(catPath),
				"supplier_id": nullable(supID, xint), "supplier_name": strOrNone(supName),
				"weight_grams": nullable(weight, xint32), "attributes": xstr(attrs),
				"created_at": xtime(created), "updated_at": xtime(updated),
			}, err
		})
	suppliers := expectedSheet(t, conn, `
		SELECT id, code, name, email, phone, country, city, active, created_at, updated_at
		FROM suppliers ORDER BY id`,
		func(r pgx.Rows) (map[string]xcell, error) {
			var id int64
			var code, name, email, phone, country, city string
			var active bool
			var created, updated time.Time
			err := r.Scan(&id, &code, &name, &email, &phone, &country, &city, &active, &created, &updated)
			return map[string]xcell{
				"id": xint(id), "code": xstr(code), "name": xstr(name), "email": xstr(email),
				"phone": xstr(phone), "country": xstr(country), "city": xstr(city), "active": xbool(active),
				"created_at": xtime(created), "updated_at": xtime(updated),
			}, err
		})
	categories := expectedSheet(t, conn, `SELECT id, parent_id, name, slug, path FROM categories ORDER BY id`,
		func(r pgx.Rows) (map[string]xcell, error) {
			var id int64
			var parent *int64
			var name, slug, path string
			err := r.Scan(&id, &parent, &name, &slug, &path)
			return map[string]xcell{"id": xint(id), "parent_id": nullable(parent, xint), "name": xstr(name),
				"slug": xstr(slug), "path": xstr(path)}, err
		})

	wantHeaders := map[string][]string{
		"products":   s.defaultFields(t, "products"),
		"suppliers":  s.defaultFields(t, "suppliers"),
		"categories": {"id", "parent_id", "name", "slug", "path"},
	}
	expected := map[string][]map[string]xcell{"products": products, "suppliers": suppliers, "categories": categories}
	// Number formats the columns must show: two decimals for prices, a date-time for timestamps.
	formats := map[string]func([]string) bool{
		"price":      func(f []string) bool { return slices.Equal(f, []string{"0.00"}) },
		"created_at": isDateFormat,
		"updated_at": isDateFormat,
	}
	for _, sh := range wb.Sheets {
		t.Run(sh.Name, func(t *testing.T) {
			want := expected[sh.Name]
			header := make([]string, len(sh.Header))
			for i, h := range sh.Header {
				header[i], _ = h.(string)
			}
			if !slices.Equal(header, wantHeaders[sh.Name]) {
				t.Errorf("header %q, want the default fields %q", header, wantHeaders[sh.Name])
			}
			if sh.MaxRow != len(want)+1 || len(sh.Rows) != len(want) {
				t.Errorf("max_row %d (%d data rows), SQL selects %d rows", sh.MaxRow, len(sh.Rows), len(want))
			}
			if slices.Contains(sh.HeaderBold, false) || len(sh.HeaderBold) != len(header) {
				t.Errorf("header bold flags %v", sh.HeaderBold)
			}
			if sh.FreezePanes == nil || *sh.FreezePanes != "A2" {
				t.Errorf("freeze_panes %v, want A2", sh.FreezePanes)
			}
			wantFilter := "A1:" + columnName(len(header)) + strconv.Itoa(len(want)+1)
			// openpyxl gives the ref as written; absolute ($A$1) and relative refs are the same range.
			if sh.AutoFilter == nil || strings.ReplaceAll(*sh.AutoFilter, "$", "") != wantFilter {
				t.Errorf("auto_filter %v, want %s", sh.AutoFilter, wantFilter)
			}
			for i, name := range header {
				if ok := formats[name]; ok != nil && i < len(sh.Formats) && !ok(sh.Formats[i]) {
					t.Errorf("column %s number formats %q", name, sh.Formats[i])
				}
			}
			bad := 0
			for r := range min(len(sh.Rows), len(want)) {
				row := sh.Rows[r]
				for i, name := range header {
					w, ok := want[r][name]
					if !ok {
						t.Fatalf("the test has no expectation for column %q", name)
					}
					var got xcell
					if i < len(row) {
						got = row[i]
					}
					if !got.matches(w) {
						bad++
						if bad <= 10 {
							t.Errorf("row %d (id %v) column %s = %s, database %s", r+2, want[r]["id"].V, name, got, w)
						}
					}
				}
			}
			if bad > 10 {
				t.Errorf("… %d cells differ in all", bad)
			}
		})
	}
	// Whole prices come back as int, which is fine; but a price with cents must be a float.
	floats := 0
	for _, row := range wb.Sheets[0].Rows {
		for i, h := range wb.Sheets[0].Header {
			if h == "price" && i < len(row) && row[i].T == "float" {
				floats++
			}
		}
	}
	if floats == 0 {
		t.Error("no price came back as a float")
	}
}

func isDateFormat(f []string) bool {
	return len(f) == 1 && strings.Contains(strings.ToLower(f[0]), "yy") && strings.Contains(f[0], "h")
}

// columnName is the spreadsheet name of column n (1 is A).
func columnName(n int) string {
	s := ""
	for n > 0 {
		n--
		s = string(rune('A'+n%26)) + s
		n /= 26
	}
	return s
}

// fieldInfo is one entry of GET /api/v1/exports/fields/{entity}.
type fieldInfo struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Description string `json:"description"`
	Default     *bool  `json:"default"`
}

func (s stack) fieldList(t *testing.T, entity string) []fieldInfo {
	t.Helper()
	code, body := s.do(t, http.MethodGet, "/api/v1/exports/fields/"+entity, s.reader(t), nil)
	var out struct {
		Fields []fieldInfo `json:"fields"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &out) != nil || len(out.Fields) == 0 {
		t.Fatalf("GET fields/%s = %d %.300s", entity, code, body)
	}
	return out.Fields
}

// defaultFields are the fields an export without fields has, as the fields endpoint lists them.
func (s stack) defaultFields(t *testing.T, entity string) []string {
	t.Helper()
	var out []string
	for _, f := range s.fieldList(t, entity) {
		if f.Default != nil && *f.Default {
			out = append(out, f.Name)
		}
	}
	return out
}

// numEq compares two decimal texts by value ("12.5" and "12.50" are equal).
func numEq(a, b string) bool {
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	return ok1 && ok2 && x.Cmp(y) == 0
}

// TestJSONWithRelations: include_relations adds to each product its category object and its
// suppliers (primary first), and to each supplier its product_count, as SQL says, with numbers
// as JSON numbers.
func TestJSONWithRelations(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, formatsCatalog)
	conn := s.catalogConn(t)

	picks := map[string]string{
		"three suppliers": `SELECT product_id FROM product_suppliers GROUP BY 1 HAVING count(*) >= 3 ORDER BY 1 LIMIT 1`,
		"no category":     `SELECT id FROM products WHERE category_id IS NULL ORDER BY id LIMIT 1`,
		"no supplier":     `SELECT id FROM products p WHERE NOT EXISTS (SELECT 1 FROM product_suppliers x WHERE x.product_id = p.id) ORDER BY id LIMIT 1`,
		"tricky supplier": `SELECT ps.product_id FROM product_suppliers ps JOIN suppliers s ON s.id = ps.supplier_id WHERE s.name ~ '[\n"]' ORDER BY 1 LIMIT 1`,
		"tricky name":     `SELECT id FROM products WHERE name LIKE '=%' ORDER BY id LIMIT 1`,
		"leading zeros":   `SELECT product_id FROM product_suppliers WHERE supplier_sku ~ '^0' ORDER BY 1 LIMIT 1`,
	}
	var ids []int64
	for what, q := range picks {
		got := sqlIDs(t, conn, q)
		if len(got) == 0 {
			t.Logf("the catalog has no product with %s", what)
			continue
		}
		if !slices.Contains(ids, got[0]) {
			ids = append(ids, got[0])
		}
	}
	slices.Sort(ids)
	t.Logf("products %v", ids)

	_, data := s.storedExport(t, "json", "products", map[string]any{
		"filters": map[string]any{"ids": ids},
		"options": map[string]any{"include_relations": true},
	})
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var got []map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("not a JSON array: %v", err)
	}
	if len(got) != len(ids) {
		t.Fatalf("%d products, asked for ids %v", len(got), ids)
	}
	isNum := func(v any, want string) bool {
		n, ok := v.(json.Number)
		return ok && numEq(string(n), want)
	}
	ctx := context.Background()
	for i, p := range got {
		id := ids[i]
		var price string
		var stock int64
		var cat struct {
			ID, Parent      *int64
			Name, Slug, Pth *string
		}
		err := conn.QueryRow(ctx, `SELECT p.price::text, p.stock, c.id, c.parent_id, c.name, c.slug, c.path
			FROM products p LEFT JOIN categories c ON c.id = p.category_id WHERE p.id = $1`, id).
			Scan(&price, &stock, &cat.ID, &cat.Parent, &cat.Name, &cat.Slug, &cat.Pth)
		if err != nil {
			t.Fatal(err)
		}
		if !isNum(p["id"], strconv.FormatInt(id, 10)) || !isNum(p["price"], price) || !isNum(p["stock"], strconv.FormatInt(stock, 10)) {
			t.Errorf("product %d: id %#v price %#v stock %#v, want the numbers %d %s %d", id, p["id"], p["price"], p["stock"], id, price, stock)
		}

		c, present := p["category"]
		switch {
		case !present:
			t.Errorf("product %d has no category key", id)
		case cat.ID == nil:
			if c != nil {
				t.Errorf("product %d has no category, yet category = %#v, want null", id, c)
			}
		default:
			m, _ := c.(map[string]any)
			parentOK := (cat.Parent == nil && m["parent_id"] == nil) ||
				(cat.Parent != nil && isNum(m["parent_id"], strconv.FormatInt(*cat.Parent, 10)))
			if m == nil || !isNum(m["id"], strconv.FormatInt(*cat.ID, 10)) || !parentOK ||
				m["name"] != *cat.Name || m["slug"] != *cat.Slug || m["path"] != *cat.Pth {
				t.Errorf("product %d category = %#v, database id %d parent %v name %q slug %q path %q",
					id, c, *cat.ID, cat.Parent, *cat.Name, *cat.Slug, *cat.Pth)
			}
		}

		rows, err := conn.Query(ctx, `SELECT s.id, s.code, s.name, ps.supplier_sku, ps.cost_price::text, ps.lead_time_days, ps.is_primary
			FROM product_suppliers ps JOIN suppliers s ON s.id = ps.supplier_id
			WHERE ps.product_id = $1 ORDER BY ps.is_primary DESC, s.id`, id)
		if err != nil {
			t.Fatal(err)
		}
		type link struct {
			id              int64
			code, name, sku string
			cost            string
			lead            int32
			primary         bool
		}
		want, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (link, error) {
			var l link
			return l, r.Scan(&l.id, &l.code, &l.name, &l.sku, &l.cost, &l.lead, &l.primary)
		})
		if err != nil {
			t.Fatal(err)
		}
		sups, ok := p["suppliers"].([]any)
		if !ok || len(sups) != len(want) {
			t.Errorf("product %d suppliers = %#v, the database links %d (an empty list is [])", id, p["suppliers"], len(want))
			continue
		}
		for k, w := range want {
			m, _ := sups[k].(map[string]any)
			if m == nil || !isNum(m["supplier_id"], strconv.FormatInt(w.id, 10)) || m["code"] != w.code ||
				m["name"] != w.name || m["supplier_sku"] != w.sku || !isNum(m["cost_price"], w.cost) ||
				!isNum(m["lead_time_days"], strconv.Itoa(int(w.lead))) || m["is_primary"] != w.primary {
				t.Errorf("product %d supplier %d = %#v, database %+v", id, k, sups[k], w)
			}
		}
		if len(want) > 0 && want[0].primary && !isNum(p["supplier_id"], strconv.FormatInt(want[0].id, 10)) {
			t.Errorf("product %d supplier_id %#v, its primary supplier is %d", id, p["supplier_id"], want[0].id)
		}
	}

	// Suppliers: product_count is how many products each supplies.
	_, data = s.storedExport(t, "json", "suppliers", map[string]any{"options": map[string]any{"include_relations": true}})
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var sups []map[string]any
	if err := dec.Decode(&sups); err != nil {
		t.Fatalf("suppliers: not a JSON array: %v", err)
	}
	rows, err := conn.Query(ctx, `SELECT s.id, count(ps.product_id) FROM suppliers s
		LEFT JOIN product_suppliers ps ON ps.supplier_id = s.id GROUP BY s.id ORDER BY s.id`)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int64, error) {
		var v [2]int64
		return v, r.Scan(&v[0], &v[1])
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sups) != len(counts) {
		t.Fatalf("%d suppliers exported, the database has %d", len(sups), len(counts))
	}
	for i, c := range counts {
		if !isNum(sups[i]["id"], strconv.FormatInt(c[0], 10)) || !isNum(sups[i]["product_count"], strconv.FormatInt(c[1], 10)) {
			t.Errorf("supplier %d: id %#v product_count %#v, database %d products", c[0], sups[i]["id"], sups[i]["product_count"], c[1])
		}
	}
}

// TestEveryFilterCountMatchesSQL: every filter of products and suppliers selects, through the
// CSV stream, exactly the rows a hand-written SQL condition selects (the test owns its SQL);
// a stored job counts the same in rows_total; bad values and unknown parameters are a 400
// naming the culprit.
func TestEveryFilterCountMatchesSQL(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, formatsCatalog)
	conn := s.catalogConn(t)

	// Values taken from the catalog, so the filters select something whatever the seed.
	leaves := sqlIDs(t, conn, `SELECT category_id FROM products WHERE category_id IS NOT NULL
		GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2`)
	root := sqlOne[int64](t, conn, `SELECT id FROM categories WHERE parent_id IS NULL ORDER BY id LIMIT 1`)
	mid := sqlOne[int64](t, conn, `SELECT id FROM categories WHERE parent_id = $1 ORDER BY id LIMIT 1`, root)
	sups := sqlIDs(t, conn, `SELECT supplier_id FROM product_suppliers GROUP BY 1 ORDER BY 1 LIMIT 2`)
	brand := sqlOne[string](t, conn, `SELECT brand FROM products GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`)
	oddBrand := sqlOne[string](t, conn, `SELECT brand FROM products WHERE brand ~ '[ &''é]' GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`)
	median := func(q string) time.Time {
		// An offset other than UTC, to the second: the filter must read the zone.
		return sqlOne[time.Time](t, conn, q).In(time.FixedZone("", 2*3600)).Truncate(time.Second)
	}
	updated := median(`SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY updated_at) FROM products`)
	created := median(`SELECT percentile_disc(0.3) WITHIN GROUP (ORDER BY created_at) FROM products`)
	supUpdated := median(`SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY updated_at) FROM suppliers`)
	ids := []int64{1, 2, 3, 57, 999, 5000, 123456789}
	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
	// Search is a case-insensitive substring of name, sku or ean; % and _ are plain characters.
	const search = `(strpos(lower(p.name), lower($1)) > 0 OR strpos(lower(p.sku), lower($1)) > 0 OR strpos(lower(p.ean), lower($1)) > 0)`
	// A category and every category below it, by path rather than by parent links.
	const subtree = `p.category_id IN (SELECT id FROM categories WHERE path = (SELECT path FROM categories WHERE id = $1)
		OR starts_with(path, (SELECT path FROM categories WHERE id = $1) || ' > '))`

	type filterCase struct {
		name   string
		entity string
		query  url.Values
		where  string // over products p or suppliers s
		args   []any
		empty  bool // selects nothing (otherwise: something, not everything)
	}
	tests := []filterCase{
		{"status", "products", url.Values{"status": {"draft"}}, `p.status = 'draft'`, nil, false},
		{"status list", "products", url.Values{"status": {"active,archived"}}, `p.status IN ('active', 'archived')`, nil, false},
		{"category_id list", "products", url.Values{"category_id": {joinIDs(leaves)}}, `p.category_id = ANY($1)`, []any{leaves}, false},
		{"category_id of a root alone", "products", url.Values{"category_id": {fmt.Sprint(root)}}, `p.category_id = $1`, []any{root}, true},
		{"category_id + include_subcategories, root", "products", url.Values{"category_id": {fmt.Sprint(root)}, "include_subcategories": {"true"}}, subtree, []any{root}, false},
		{"category_id + include_subcategories, middle", "products", url.Values{"category_id": {fmt.Sprint(mid)}, "include_subcategories": {"true"}}, subtree, []any{mid}, false},
		{"include_subcategories=false", "products", url.Values{"category_id": {fmt.Sprint(mid)}, "include_subcategories": {"false"}}, `p.category_id = $1`, []any{mid}, false},
		{"supplier_id list", "products", url.Values{"supplier_id": {joinIDs(sups)}}, `EXISTS (SELECT 1 FROM product_suppliers x WHERE x.product_id = p.id AND x.supplier_id = ANY($1))`, []any{sups}, false},
		{"brand", "products", url.Values{"brand": {brand}}, `p.brand = $1`, []any{brand}, false},
		{"brand with & ' é or space", "products", url.Values{"brand": {oddBrand}}, `p.brand = $1`, []any{oddBrand}, false},
		{"price_min", "products", url.Values{"price_min": {"100.5"}}, `p.price >= 100.5`, nil, false},
		{"price_min + price_max", "products", url.Values{"price_min": {"10"}, "price_max": {"99.9"}}, `p.price BETWEEN 10 AND 99.9`, nil, false},
		{"price_max exact cents", "products", url.Values{"price_max": {"9.99"}}, `p.price <= 9.99`, nil, false},
		{"stock_min + stock_max zero", "products", url.Values{"stock_min": {"0"}, "stock_max": {"0"}}, `p.stock = 0`, nil, false},
		{"stock_min", "products", url.Values{"stock_min": {"1000"}}, `p.stock >= 1000`, nil, false},
		{"stock_max", "products", url.Values{"stock_max": {"10"}}, `p.stock <= 10`, nil, false},
		{"updated_since", "products", url.Values{"updated_since": {rfc(updated)}}, `p.updated_at >= $1`, []any{updated}, false},
		{"created_since", "products", url.Values{"created_since": {rfc(created)}}, `p.created_at >= $1`, []any{created}, false},
		{"search", "products", url.Values{"search": {"ULTRA"}}, search, []any{"ULTRA"}, false},
		{"search accents", "products", url.Values{"search": {"câble"}}, search, []any{"câble"}, false},
		{"search ean digits", "products", url.Values{"search": {"37612"}}, search, []any{"37612"}, false},
		{"search % is literal", "products", url.Values{"search": {"%"}}, search, []any{"%"}, false},
		{"search _ is literal", "products", url.Values{"search": {"_"}}, search, []any{"_"}, true},
		{"ids", "products", url.Values{"ids": {joinIDs(ids)}}, `p.id = ANY($1)`, []any{ids}, false},
		{"several filters", "products", url.Values{"status": {"active"}, "price_max": {"50"}, "stock_min": {"1"}, "category_id": {fmt.Sprint(root)}, "include_subcategories": {"true"}},
			`p.status = 'active' AND p.price <= 50 AND p.stock >= 1 AND ` + subtree, []any{root}, false},

		{"country", "suppliers", url.Values{"country": {"FR"}}, `s.country = 'FR'`, nil, false},
		{"country lower case list", "suppliers", url.Values{"country": {"de,es"}}, `s.country IN ('DE', 'ES')`, nil, false},
		{"active", "suppliers", url.Values{"active": {"false"}}, `NOT s.active`, nil, false},
		{"search suppliers", "suppliers", url.Values{"search": {"gmbh"}}, `(strpos(lower(s.name), 'gmbh') > 0 OR strpos(lower(s.code), 'gmbh') > 0 OR strpos(lower(s.email), 'gmbh') > 0)`, nil, false},
		{"search supplier code", "suppliers", url.Values{"search": {"sup-0001"}}, `lower(s.code) LIKE 'sup-0001%'`, nil, false},
		{"updated_since suppliers", "suppliers", url.Values{"updated_since": {rfc(supUpdated)}}, `s.updated_at >= $1`, []any{supUpdated}, false},
	}
	totals := map[string]int{
		"products":  int(sqlOne[int64](t, conn, `SELECT count(*) FROM products`)),
		"suppliers": int(sqlOne[int64](t, conn, `SELECT count(*) FROM suppliers`)),
	}
	alias := map[string]string{"products": "p", "suppliers": "s"}
	for _, tt := range tests {
		t.Run(tt.entity+"/"+tt.name, func(t *testing.T) {
			q := fmt.Sprintf(`SELECT %[1]s.id FROM %[2]s %[1]s WHERE %[3]s ORDER BY %[1]s.id`, alias[tt.entity], tt.entity, tt.where)
			want := sqlIDs(t, conn, q, tt.args...)
			switch {
			case tt.empty && len(want) != 0:
				t.Fatalf("the test expects its SQL to select nothing, it selects %d rows", len(want))
			case !tt.empty && (len(want) == 0 || len(want) == totals[tt.entity]):
				t.Fatalf("the test's SQL selects %d of %d rows: pick a value that filters", len(want), totals[tt.entity])
			}
			query := url.Values{"fields": {"id"}, "bom": {"false"}}
			for k, v := range tt.query {
				query[k] = v
			}
			_, data := s.stream(t, "csv", tt.entity, query.Encode())
			sameIDs(t, "stream?"+query.Encode(), csvIDs(t, data), want)
		})
	}

	// A stored job counts the same: rows_total and rows_done, and its file.
	stored := []struct {
		entity string
		body   map[string]any
		where  string
		args   []any
	}{
		{"products", map[string]any{"fields": []string{"id"}, "options": map[string]any{"bom": false},
			"filters": map[string]any{"category_id": []int64{root}, "include_subcategories": true, "stock_min": 1, "created_since": rfc(created)}},
			`p.stock >= 1 AND p.created_at >= $2 AND ` + subtree, []any{root, created}},
		{"suppliers", map[string]any{"fields": []string{"id"}, "options": map[string]any{"bom": false},
			"filters": map[string]any{"country": []string{"fr", "DE"}, "active": true}},
			`s.country IN ('FR', 'DE') AND s.active`, nil},
	}
	for _, st := range stored {
		t.Run("stored job/"+st.entity, func(t *testing.T) {
			q := fmt.Sprintf(`SELECT %[1]s.id FROM %[2]s %[1]s WHERE %[3]s ORDER BY %[1]s.id`, alias[st.entity], st.entity, st.where)
			want := sqlIDs(t, conn, q, st.args...)
			j, data := s.storedExport(t, "csv", st.entity, st.body)
			if j.RowsTotal == nil || *j.RowsTotal != int64(len(want)) || j.RowsDone != int64(len(want)) {
				t.Errorf("job rows_total %v rows_done %d, SQL selects %d", j.RowsTotal, j.RowsDone, len(want))
			}
			p := s.waitStatus(t, j.ID, "completed", time.Second)
			if p.RowsTotal == nil || *p.RowsTotal != int64(len(want)) {
				t.Errorf("progress rows_total %v, SQL selects %d", p.RowsTotal, len(want))
			}
			sameIDs(t, "stored job", csvIDs(t, data), want)
		})
	}

	// Refusals: a 400 naming the filter (or the unknown parameter), for the stream and the body.
	bad := []struct {
		entity, query, field string
	}{
		{"products", "price_min=abc", "filters.price_min"},
		{"products", "price_max=-1", "filters.price_max"},
		{"products", "price_min=50&price_max=10", "filters.price_min"},
		{"products", "created_since=yesterday", "filters.created_since"},
		{"products", "updated_since=2026-13-01T00:00:00Z", "filters.updated_since"},
		{"products", "stock_min=1.5", "filters.stock_min"},
		{"products", "stock_max=ten", "filters.stock_max"},
		{"products", "stock_min=9&stock_max=1", "filters.stock_min"},
		{"products", "status=deleted", "filters.status"},
		{"products", "category_id=abc", "filters.category_id"},
		{"products", "category_id=0", "filters.category_id"},
		{"products", "supplier_id=-3", "filters.supplier_id"},
		{"products", "ids=1,x", "filters.ids"},
		{"products", "include_subcategories=maybe&category_id=1", "filters.include_subcategories"},
		{"products", "colour=red", "colour"},
		{"products", "country=FR", "country"},
		{"suppliers", "country=FRA", "filters.country"},
		{"suppliers", "country=F1", "filters.country"},
		{"suppliers", "active=sometimes", "filters.active"},
		{"suppliers", "status=active", "status"},
	}
	for _, b := range bad {
		path := "/api/v1/exports/stream/csv/" + b.entity + "?" + b.query
		code, body := s.do(t, http.MethodGet, path, s.reader(t), nil)
		wantError(t, "GET "+path, code, body, http.StatusBadRequest, b.field)
	}
	badBodies := []struct {
		entity  string
		filters map[string]any
		field   string
	}{
		{"products", map[string]any{"stock_min": 1.5}, "filters.stock_min"},
		{"products", map[string]any{"created_since": "yesterday"}, "filters.created_since"},
		{"products", map[string]any{"ids": []any{"x"}}, "filters.ids"},
		{"products", map[string]any{"price_min": "abc"}, "filters.price_min"},
		{"products", map[string]any{"include_subcategories": "maybe"}, "filters.include_subcategories"},
		{"suppliers", map[string]any{"country": "FRA"}, "filters.country"},
		{"suppliers", map[string]any{"status": "active"}, "filters.status"},
	}
	for _, b := range badBodies {
		code, body := s.do(t, http.MethodPost, "/api/v1/exports/csv/"+b.entity, s.writer(t), map[string]any{"filters": b.filters})
		wantError(t, fmt.Sprintf("POST csv/%s filters %v", b.entity, b.filters), code, body, http.StatusBadRequest, b.field)
	}
}

// TestFieldsEndpoint: the fields endpoint lists every exportable field with its type,
// description and default flag; the default ones are exactly a default export's columns;
// fields sets the columns and their order, exclude_fields removes some, and an unknown name
// is a 400 naming it.
func TestFieldsEndpoint(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, formatsCatalog)
	conn := s.catalogConn(t)

	types := map[string]bool{"text": true, "integer": true, "decimal": true, "boolean": true, "timestamp": true, "json": true}
	wantTypes := map[string]map[string]string{
		"products": {"id": "integer", "sku": "text", "name": "text", "description": "text", "brand": "text",
			"ean": "text", "price": "decimal", "currency": "text", "stock": "integer", "status": "text",
			"category_id": "integer", "category_name": "text", "category_path": "text", "supplier_id": "integer",
			"supplier_name": "text", "weight_grams": "integer", "attributes": "json", "created_at": "timestamp",
			"updated_at": "timestamp"},
		"suppliers": {"id": "integer", "code": "text", "name": "text", "email": "text", "phone": "text",
			"country": "text", "city": "text", "active": "boolean", "created_at": "timestamp", "updated_at": "timestamp"},
	}
	for entity, want := range wantTypes {
		t.Run(entity, func(t *testing.T) {
			fields := s.fieldList(t, entity)
			seen := map[string]bool{}
			var defaults []string
			for _, f := range fields {
				if seen[f.Name] {
					t.Errorf("field %q listed twice", f.Name)
				}
				seen[f.Name] = true
				if !types[f.Type] || f.Description == "" || f.Default == nil {
					t.Errorf("field %+v: want a known type, a description and a default flag", f)
				}
				if w, ok := want[f.Name]; ok && f.Type != w {
					t.Errorf("field %s has type %q, want %q", f.Name, f.Type, w)
				}
				if f.Default != nil && *f.Default {
					defaults = append(defaults, f.Name)
				}
			}
			for name := range want {
				if !seen[name] {
					t.Errorf("field %q is not listed", name)
				}
			}
			query := "ids=1,2&bom=false"
			if entity == "suppliers" {
				query = "search=SUP-00001&bom=false"
			}
			_, data := s.stream(t, "csv", entity, query)
			recs, _ := parseCSV(t, data, ',')
			if !slices.Equal(recs[0], defaults) {
				t.Errorf("a default export has columns %q, the fields marked default are %q", recs[0], defaults)
			}
		})
	}
	code, body := s.do(t, http.MethodGet, "/api/v1/exports/fields/widgets", s.reader(t), nil)
	wantError(t, "GET fields/widgets", code, body, http.StatusBadRequest, "entity")

	// fields sets the columns and their order; the values are the product's.
	id := sqlOne[int64](t, conn, `SELECT p.id FROM products p JOIN product_suppliers ps ON ps.product_id = p.id AND ps.is_primary
		WHERE p.category_id IS NOT NULL ORDER BY p.id LIMIT 1`)
	order := []string{"supplier_name", "price", "sku", "category_path", "id", "category_name", "supplier_id"}
	_, data := s.stream(t, "csv", "products", url.Values{"fields": {strings.Join(order, ",")}, "ids": {fmt.Sprint(id)}, "bom": {"false"}}.Encode())
	recs, _ := parseCSV(t, data, ',')
	if !slices.Equal(recs[0], order) || len(recs) != 2 {
		t.Fatalf("fields=%s: got %q", strings.Join(order, ","), recs)
	}
	var want [7]string
	err := conn.QueryRow(context.Background(), `SELECT s.name, p.price::text, p.sku, c.path, p.id::text, c.name, s.id::text
		FROM products p JOIN categories c ON c.id = p.category_id
		JOIN product_suppliers ps ON ps.product_id = p.id AND ps.is_primary JOIN suppliers s ON s.id = ps.supplier_id
		WHERE p.id = $1`, id).Scan(&want[0], &want[1], &want[2], &want[3], &want[4], &want[5], &want[6])
	if err != nil {
		t.Fatal(err)
	}
	numeric := map[string]bool{"price": true, "id": true, "supplier_id": true}
	for i, w := range want {
		if !numeric[order[i]] {
			w = formulaEscaped(w)
		}
		if recs[1][i] != w {
			t.Errorf("product %d %s = %q, database %q", id, order[i], recs[1][i], w)
		}
	}

	// exclude_fields removes from the defaults, or from fields.
	defaults := s.defaultFields(t, "products")
	_, data = s.stream(t, "csv", "products", "exclude_fields=description,brand&ids=1&bom=false")
	recs, _ = parseCSV(t, data, ',')
	wantCols := slices.DeleteFunc(slices.Clone(defaults), func(f string) bool { return f == "description" || f == "brand" })
	if !slices.Equal(recs[0], wantCols) {
		t.Errorf("exclude_fields=description,brand: columns %q, want %q", recs[0], wantCols)
	}
	_, data = s.stream(t, "csv", "products", "fields=sku,name,price&exclude_fields=name&ids=1&bom=false")
	if recs, _ = parseCSV(t, data, ','); !slices.Equal(recs[0], []string{"sku", "price"}) {
		t.Errorf("fields=sku,name,price&exclude_fields=name: columns %q", recs[0])
	}

	// Unknown fields are refused, named.
	for _, c := range []struct{ query, field, name string }{
		{"fields=sku,colour", "fields", "colour"},
		{"exclude_fields=flavour", "exclude_fields", "flavour"},
		{"fields=sku,code", "fields", "code"}, // a suppliers field
	} {
		path := "/api/v1/exports/stream/csv/products?" + c.query
		code, body := s.do(t, http.MethodGet, path, s.reader(t), nil)
		wantError(t, "GET "+path, code, body, http.StatusBadRequest, c.field)
		if !bytes.Contains(body, []byte(c.name)) {
			t.Errorf("GET %s: the error does not name %q: %s", path, c.name, body)
		}
	}
	code, body = s.do(t, http.MethodPost, "/api/v1/exports/json/products", s.writer(t), map[string]any{"fields": []string{"sku", "colour"}})
	wantError(t, "POST json/products fields colour", code, body, http.StatusBadRequest, "fields")
}

// formulaEscaped is a text cell as CSV writes it with formula_escape on: a leading = + - @
// tab or CR gets a single quote first, so a spreadsheet shows it rather than running it.
func formulaEscaped(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// TestCSVFidelity: rows picked for their traps (formula-like text, quotes, separators, line
// breaks, tabs, emoji, NULLs, whole prices) come out of a default CSV exactly as the database
// holds them: BOM first, formula escape by default and not with formula_escape=false, NULL as
// an empty cell, prices with two decimals, timestamps in RFC 3339 UTC with Z.
func TestCSVFidelity(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, formatsCatalog)
	conn := s.catalogConn(t)

	picks := []string{
		`SELECT id FROM products WHERE name ~ '^[=+@-]' ORDER BY id LIMIT 8`,
		`SELECT id FROM products WHERE description ~ '^[=+@-]' ORDER BY id LIMIT 4`,
		`SELECT id FROM products WHERE name ~ '["\t\n\r;,]' ORDER BY id LIMIT 8`,
		`SELECT id FROM products WHERE description LIKE '%' || chr(13) || chr(10) || '%' ORDER BY id LIMIT 1`,
		`SELECT id FROM products WHERE name ~ '[🎧✅日]' ORDER BY id LIMIT 2`,
		`SELECT id FROM products WHERE name IN ('NULL', '0042', '1E10', '  espaces autour  ') ORDER BY id`,
		`SELECT id FROM products WHERE weight_grams IS NULL ORDER BY id LIMIT 1`,
		`SELECT id FROM products WHERE category_id IS NULL ORDER BY id LIMIT 1`,
		`SELECT id FROM products p WHERE NOT EXISTS (SELECT 1 FROM product_suppliers x WHERE x.product_id = p.id) ORDER BY id LIMIT 1`,
		`SELECT p.id FROM products p JOIN product_suppliers ps ON ps.product_id = p.id AND ps.is_primary
			JOIN suppliers s ON s.id = ps.supplier_id WHERE s.name ~ '^[=+@-]|\n' ORDER BY p.id LIMIT 3`,
		`SELECT id FROM products WHERE price = trunc(price) ORDER BY id LIMIT 1`,
		`SELECT id FROM products WHERE price * 10 = trunc(price * 10) AND price <> trunc(price) ORDER BY id LIMIT 1`,
		`SELECT id FROM products WHERE description = '' ORDER BY id LIMIT 1`,
	}
	var ids []int64
	for _, q := range picks {
		for _, id := range sqlIDs(t, conn, q) {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	t.Logf("%d products: %v", len(ids), ids)

	fields := []string{"id", "sku", "name", "description", "price", "weight_grams", "category_id", "supplier_name", "attributes", "created_at", "updated_at"}
	type product struct {
		cells   []*string // in fields order; nil is NULL
		created time.Time
		updated time.Time
	}
	rows, err := conn.Query(context.Background(), `
		SELECT p.id::text, p.sku, p.name, p.description, p.price::text, p.weight_grams::text, p.category_id::text,
		       s.name, p.attributes::text, p.created_at, p.updated_at
		FROM products p
		LEFT JOIN product_suppliers ps ON ps.product_id = p.id AND ps.is_primary
		LEFT JOIN suppliers s ON s.id = ps.supplier_id
		WHERE p.id = ANY($1) ORDER BY p.id`, ids)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (product, error) {
		p := product{cells: make([]*string, len(fields))}
		dst := make([]any, 0, len(fields))
		for i := range fields[:9] {
			dst = append(dst, &p.cells[i])
		}
		err := r.Scan(append(dst, &p.created, &p.updated)...)
		ts := func(v time.Time) *string { return ptr(v.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z")) }
		p.cells[9], p.cells[10] = ts(p.created), ts(p.updated)
		return p, err
	})
	if err != nil {
		t.Fatal(err)
	}
	text := map[string]bool{"sku": true, "name": true, "description": true, "supplier_name": true, "attributes": true}
	price := regexp.MustCompile(`^[0-9]+\.[0-9]{2}$`)
	stamp := regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$`)

	for _, escape := range []bool{true, false} {
		t.Run(fmt.Sprintf("formula_escape=%v", escape), func(t *testing.T) {
			q := url.Values{"fields": {strings.Join(fields, ",")}, "ids": {joinIDs(ids)}}
			if !escape {
				q.Set("formula_escape", "false")
			}
			_, data := s.stream(t, "csv", "products", q.Encode())
			if !bytes.HasPrefix(data, []byte("\xEF\xBB\xBF")) || bytes.HasPrefix(data[3:], []byte("\xEF\xBB\xBF")) {
				t.Fatalf("a default CSV starts with one UTF-8 BOM: %.10q", data)
			}
			recs, eol := parseCSV(t, data[3:], ',')
			if eol != "\n" {
				t.Errorf("default line ending %q, want \\n", eol)
			}
			if !slices.Equal(recs[0], fields) {
				t.Fatalf("header %q", recs[0])
			}
			if len(recs)-1 != len(want) {
				t.Fatalf("%d rows, asked for %d products", len(recs)-1, len(want))
			}
			escaped := 0
			for r, p := range want {
				got := recs[r+1]
				for i, name := range fields {
					var w string
					switch v := p.cells[i]; {
					case v == nil:
						w = "" // NULL is an empty cell
					case escape && text[name]:
						w = formulaEscaped(*v)
						if w != *v {
							escaped++
						}
					default:
						w = *v
					}
					if got[i] != w {
						t.Errorf("product %s %s = %q, want %q", *p.cells[0], name, got[i], w)
					}
					switch {
					case name == "price" && !price.MatchString(got[i]):
						t.Errorf("product %s price %q: want two decimals", *p.cells[0], got[i])
					case (name == "created_at" || name == "updated_at") && !stamp.MatchString(got[i]):
						t.Errorf("product %s %s %q: want RFC 3339 UTC with Z", *p.cells[0], name, got[i])
					}
				}
			}
			if escape && escaped == 0 {
				t.Error("no cell needed a formula escape: the picks found no formula-like text")
			}
		})
	}
}

// TestCompressedAndRenamedFiles: a stored export with renamed columns and gzip (read back with
// the system's gzip) or zip (archive/zip) holds exactly the bytes of the same export stored
// plain; the job's file names the compressed bytes (storedExport checks size and sha256).
func TestCompressedAndRenamedFiles(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, formatsCatalog)
	base := map[string]any{"fields": []string{"sku", "name", "price"}, "filters": map[string]any{"price_max": 50},
		"headers": map[string]string{"sku": "id", "name": "title"}}
	with := func(k string, v any) map[string]any {
		m := maps.Clone(base)
		m[k] = v
		return m
	}
	_, plain := s.storedExport(t, "csv", "products", base)
	if !bytes.HasPrefix(bytes.TrimPrefix(plain, []byte("\xEF\xBB\xBF")), []byte("id,title,price\n")) {
		t.Fatalf("renamed header: %.60q", plain)
	}
	j, gz := s.storedExport(t, "csv", "products", with("compression", "gzip"))
	if j.File.FileName != "products.csv.gz" || j.File.ContentType != "application/gzip" {
		t.Errorf("gzip file %+v", *j.File)
	}
	cmd := exec.Command("gzip", "-dc")
	cmd.Stdin = bytes.NewReader(gz)
	out, err := cmd.Output()
	if err != nil || !bytes.Equal(out, plain) {
		t.Errorf("gzip -dc: %v; %d bytes, want the plain export's %d", err, len(out), len(plain))
	}
	j, zipped := s.storedExport(t, "csv", "products", with("compression", "zip"))
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil || len(zr.File) != 1 || zr.File[0].Name != "products.csv" || j.File.FileName != "products.zip" {
		t.Fatalf("zip %v %+v %+v", err, zr, *j.File)
	}
	f, _ := zr.File[0].Open()
	if got, err := io.ReadAll(f); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("unzipped: %v; %d bytes, want %d", err, len(got), len(plain))
	}
	// Bad input is a 400 naming the field.
	for k, v := range map[string]any{"compression": "rar", "headers": map[string]string{"colour": "couleur"}} {
		code, body := s.do(t, http.MethodPost, "/api/v1/exports/csv/products", s.writer(t), with(k, v))
		if code != http.StatusBadRequest || !bytes.Contains(body, []byte(`"field":"`+k)) {
			t.Errorf("%s=%v: %d %s", k, v, code, body)
		}
	}
}
