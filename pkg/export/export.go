// Package export is the one pipeline of the platform: a validated request (Spec) joins a
// catalog cursor to a format writer. The exporter (files stored in S3) and the streaming
// endpoints (HTTP) both call Run, so the same request gives the same bytes on both paths.
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/exportfmt"
	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// Formats the platform knows.
const (
	FormatCSV   = "csv"
	FormatExcel = "excel"
	FormatJSON  = "json"
)

// Request is what a user asks for (the export request body of CONTRACT §4), and the export
// configuration of a schedule or a platform (Merge joins them).
type Request struct {
	Entity        string         `json:"entity"`
	Format        string         `json:"format"`
	Fields        []string       `json:"fields,omitempty"`
	ExcludeFields []string       `json:"exclude_fields,omitempty"`
	Filters       map[string]any `json:"filters,omitempty"`
	Options       map[string]any `json:"options,omitempty"`
	FileName      string         `json:"file_name,omitempty"`
	// Headers rename output columns: {"sku": "id", "name": "title"}; the key is a field name.
	Headers map[string]string `json:"headers,omitempty"`
	// Compression of the stored (and delivered) file: "" (none), "gzip", or "zip" (CSV, JSON).
	Compression string `json:"compression,omitempty"`
}

// Merge joins export configurations, each over the ones before it (a platform's defaults, a
// schedule's configuration, the request: CONTRACT §4's request > schedule > platform), key by
// key: entity, format, file_name and compression when set; fields and exclude_fields replaced
// whole when given; filters, options and headers merged per key, where a key set to null
// (JSON null; "" for a header) in a later layer removes it. The result is checked by Prepare
// like any request.
func Merge(layers ...Request) Request {
	var out Request
	for _, l := range layers {
		if l.Entity != "" {
			out.Entity = l.Entity
		}
		if l.Format != "" {
			out.Format = l.Format
		}
		if l.FileName != "" {
			out.FileName = l.FileName
		}
		if l.Compression != "" {
			out.Compression = l.Compression
		}
		if len(l.Fields) > 0 {
			out.Fields = slices.Clone(l.Fields)
		}
		if len(l.ExcludeFields) > 0 {
			out.ExcludeFields = slices.Clone(l.ExcludeFields)
		}
		out.Filters = mergeKeys(out.Filters, l.Filters, func(v any) bool { return v == nil })
		out.Options = mergeKeys(out.Options, l.Options, func(v any) bool { return v == nil })
		out.Headers = mergeKeys(out.Headers, l.Headers, func(v string) bool { return v == "" })
	}
	return out
}

func mergeKeys[V any](base, over map[string]V, removes func(V) bool) map[string]V {
	if len(over) == 0 {
		return base
	}
	out := make(map[string]V, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if removes(v) {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ValidationError is a request that cannot run; Field is the JSON path at fault
// ("filters.price_min", "options.delimiter", "fields", "format").
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Spec is a validated request, ready to run.
type Spec struct {
	Request
	Query *catalog.Query
	// Sheets are the workbook's tables in order (excel only); the requested entity's is Query.
	Sheets      []*catalog.Query
	CSV         exportfmt.CSVOptions
	JSON        exportfmt.JSONOptions
	XLSX        exportfmt.XLSXOptions
	ContentType string
	FileName    string // the stored file's name: the format's extension, then .gz or .zip
	// Inner is the name of the file inside a zip (FileName without .zip); "" otherwise.
	Inner string

	// afterHeader, when set, is called once the header is written and flushed (RunRange).
	afterHeader func()
}

// OptionNames lists every export option, of every format, sorted.
func OptionNames() []string {
	var out []string
	for _, names := range formatOptions {
		out = append(out, names...)
	}
	slices.Sort(out)
	return out
}

// formatOptions are the options each format takes.
var formatOptions = map[string][]string{
	FormatCSV:   {"delimiter", "decimal", "line_ending", "bom", "formula_escape"},
	FormatJSON:  {"lines", "pretty", "include_relations"},
	FormatExcel: {"sheets"},
}

var fileNameRE = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._()-]{0,149}$`)

// Prepare validates r against the catalog's allow-lists and the format's options.
func Prepare(r Request) (*Spec, error) {
	if _, ok := catalog.Lookup(r.Entity); !ok {
		return nil, &ValidationError{"entity", fmt.Sprintf("unknown entity %q (one of %s)", r.Entity, strings.Join(catalog.EntityNames(), ", "))}
	}
	allowed, ok := formatOptions[r.Format]
	if !ok {
		return nil, &ValidationError{"format", fmt.Sprintf("unknown format %q (one of csv, excel, json)", r.Format)}
	}
	q, err := catalog.NewQuery(r.Entity, r.Fields, r.ExcludeFields, r.Filters)
	if err != nil {
		return nil, queryError(r, err)
	}
	for _, k := range sortedKeys(r.Options) {
		if slices.Contains(allowed, k) {
			continue
		}
		for f, names := range formatOptions {
			if slices.Contains(names, k) {
				return nil, &ValidationError{"options." + k, fmt.Sprintf("%s is an option of %s exports, not %s", k, f, r.Format)}
			}
		}
		return nil, &ValidationError{"options." + k, fmt.Sprintf("unknown option %q", k)}
	}
	s := &Spec{Request: r, Query: q}
	ext := ""
	switch r.Format {
	case FormatCSV:
		if s.CSV, err = csvOptions(r.Options); err != nil {
			return nil, err
		}
		s.ContentType, ext = "text/csv; charset=utf-8", ".csv"
	case FormatJSON:
		if s.JSON, err = jsonOptions(r.Options); err != nil {
			return nil, err
		}
		s.ContentType, ext = "application/json; charset=utf-8", ".json"
		if s.JSON.Lines {
			s.ContentType, ext = "application/x-ndjson", ".jsonl"
		}
		if b, _ := boolOption(r.Options, "include_relations"); b {
			q.IncludeRelations()
		}
	case FormatExcel:
		if s.Sheets, err = sheets(r.Options, q); err != nil {
			return nil, err
		}
		s.ContentType, ext = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"
	}
	if err := s.checkHeaders(); err != nil {
		return nil, err
	}
	s.FileName = r.FileName
	// A name already carrying the compression's extension (what Prepare gives back) keeps it
	// once: preparing a prepared request changes nothing.
	if c := map[string]string{exportfmt.CompressGzip: ".gz", exportfmt.CompressZip: ".zip"}[r.Compression]; c != "" &&
		len(s.FileName) > len(c) && strings.EqualFold(s.FileName[len(s.FileName)-len(c):], c) {
		s.FileName = s.FileName[:len(s.FileName)-len(c)]
	}
	if s.FileName == "" {
		s.FileName = r.Entity + ext
	} else if !fileNameRE.MatchString(s.FileName) || path.Base(s.FileName) != s.FileName {
		return nil, &ValidationError{"file_name", "must be 1 to 150 letters, digits, spaces or ._()- and not a path"}
	} else if !strings.EqualFold(path.Ext(s.FileName), ext) {
		// The name ends in the format's extension, whatever was asked: a CSV named invoice.html
		// would open in a browser as a page. invoice.html becomes invoice.html.csv.
		s.FileName += ext
	}
	switch r.Compression {
	case exportfmt.CompressNone:
	case exportfmt.CompressGzip:
		s.FileName, s.ContentType = s.FileName+".gz", "application/gzip"
	case exportfmt.CompressZip:
		if r.Format == FormatExcel {
			return nil, &ValidationError{"compression", "an Excel workbook is a zip already: use gzip or none"}
		}
		s.Inner, s.FileName, s.ContentType = s.FileName, strings.TrimSuffix(s.FileName, ext)+".zip", "application/zip"
	default:
		return nil, &ValidationError{"compression", fmt.Sprintf("unknown compression %q (gzip, zip, or none)", r.Compression)}
	}
	return s, nil
}

// maxHeader bounds a renamed column's title.
const maxHeader = 100

// checkHeaders: each renamed column is a field of the requested entity (exported or not: a
// platform's titles may cover more columns than one request takes), its title a short
// printable text, and no two output columns end up with the same title.
func (s *Spec) checkHeaders() error {
	if len(s.Headers) == 0 {
		return nil
	}
	known := map[string]bool{}
	for _, f := range s.Query.Entity.Fields {
		known[f.Name] = true
	}
	for _, r := range s.Query.Entity.Relations {
		known[r.Name] = true
	}
	for _, k := range sortedKeys(s.Headers) {
		v := s.Headers[k]
		if !known[k] {
			return &ValidationError{"headers." + k, fmt.Sprintf("%q is not a field of %s", k, s.Query.Entity.Name)}
		}
		if len(v) > maxHeader || !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) || strings.TrimSpace(v) == "" {
			return &ValidationError{"headers." + k, fmt.Sprintf("a column title is 1 to %d printable characters", maxHeader)}
		}
	}
	seen := map[string]bool{}
	for _, c := range columns(s.Query, s.Headers) {
		if seen[c.Name] {
			return &ValidationError{"headers", fmt.Sprintf("two columns would be titled %q", c.Name)}
		}
		seen[c.Name] = true
	}
	return nil
}

func queryError(r Request, err error) error {
	var fe *catalog.FilterError
	var ue catalog.ErrUnknownField
	switch {
	case errors.As(err, &fe):
		return &ValidationError{"filters." + fe.Filter, fe.Error()}
	case errors.As(err, &ue):
		field := "fields"
		if !slices.Contains(r.Fields, ue.Name) {
			field = "exclude_fields"
		}
		return &ValidationError{field, ue.Error()}
	default:
		return &ValidationError{"fields", err.Error()}
	}
}

func csvOptions(o map[string]any) (exportfmt.CSVOptions, error) {
	c := exportfmt.DefaultCSVOptions()
	bad := func(k, msg string) error { return &ValidationError{"options." + k, msg} }
	if v, ok := o["delimiter"]; ok {
		s, _ := v.(string)
		switch s {
		case ",", ";", "|":
			c.Delimiter = s[0]
		case "\t", "tab", `\t`:
			c.Delimiter = '\t'
		default:
			return c, bad("delimiter", `must be one of "," ";" "|" or tab`)
		}
	}
	if v, ok := o["decimal"]; ok {
		s, _ := v.(string)
		if s != "." && s != "," {
			return c, bad("decimal", `must be "." or ","`)
		}
		c.Decimal = s[0]
		if _, given := o["delimiter"]; !given && c.Decimal == ',' {
			c.Delimiter = ';' // what a French Excel reads: decimal commas come with semicolons
		}
	}
	if v, ok := o["line_ending"]; ok {
		s, _ := v.(string)
		switch strings.ToLower(s) {
		case "lf":
			c.CRLF = false
		case "crlf":
			c.CRLF = true
		default:
			return c, bad("line_ending", `must be "lf" or "crlf"`)
		}
	}
	for _, k := range []string{"bom", "formula_escape"} {
		if _, ok := o[k]; !ok {
			continue
		}
		b, err := boolOption(o, k)
		if err != nil {
			return c, err
		}
		if k == "bom" {
			c.BOM = b
		} else {
			c.FormulaEscape = b
		}
	}
	if err := c.Validate(); err != nil {
		return c, bad("decimal", err.Error())
	}
	return c, nil
}

// boolOption reads a boolean option given as a JSON boolean or as text (query parameters).
func boolOption(o map[string]any, k string) (bool, error) {
	raw, ok := o[k]
	if !ok {
		return false, nil
	}
	switch v := raw.(type) {
	case bool:
		return v, nil
	case string:
		if b, err := strconv.ParseBool(v); err == nil {
			return b, nil
		}
	}
	return false, &ValidationError{"options." + k, "must be true or false"}
}

func jsonOptions(o map[string]any) (exportfmt.JSONOptions, error) {
	var j exportfmt.JSONOptions
	var err error
	if j.Lines, err = boolOption(o, "lines"); err != nil {
		return j, err
	}
	if j.Pretty, err = boolOption(o, "pretty"); err != nil {
		return j, err
	}
	_, err = boolOption(o, "include_relations")
	return j, err
}

// sheets resolves options.sheets (a list, or comma-separated text): the requested entity's
// sheet uses the request's fields and filters, the others every row with their default fields.
func sheets(o map[string]any, main *catalog.Query) ([]*catalog.Query, error) {
	bad := func(msg string) error { return &ValidationError{"options.sheets", msg} }
	var names []string
	switch v := o["sheets"].(type) {
	case nil:
		return []*catalog.Query{main}, nil
	case string:
		for _, n := range strings.Split(v, ",") {
			names = append(names, strings.TrimSpace(n))
		}
	case []string:
		names = v
	case []any:
		for _, n := range v {
			s, ok := n.(string)
			if !ok {
				return nil, bad("must be a list of sheet names")
			}
			names = append(names, s)
		}
	default:
		return nil, bad("must be a list of sheet names")
	}
	var out []*catalog.Query
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			return nil, bad(fmt.Sprintf("sheet %q listed twice", n))
		}
		seen[n] = true
		if n == main.Entity.Name {
			out = append(out, main)
			continue
		}
		q, err := catalog.SheetQuery(n)
		if err != nil {
			return nil, bad(fmt.Sprintf("unknown sheet %q (any of products, suppliers, categories)", n))
		}
		out = append(out, q)
	}
	if !seen[main.Entity.Name] {
		return nil, bad(fmt.Sprintf("must include %s, the exported entity", main.Entity.Name))
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Columns are the output columns of the requested entity's table, renamed by Headers.
func (s *Spec) Columns() []exportfmt.Column { return columns(s.Query, s.Headers) }

// columns are q's output columns, titled by headers where it names them.
func columns(q *catalog.Query, headers map[string]string) []exportfmt.Column {
	fields := q.Columns()
	cols := make([]exportfmt.Column, len(fields))
	for i, f := range fields {
		name := f.Name
		if h, ok := headers[f.Name]; ok {
			name = h
		}
		cols[i] = exportfmt.Column{Name: name, Kind: exportfmt.Kind(f.Type)}
	}
	return cols
}

// NewWriter returns the spec's format writer onto w.
func (s *Spec) NewWriter(w io.Writer) (exportfmt.Writer, error) {
	switch s.Format {
	case FormatJSON:
		return exportfmt.NewJSON(w, s.JSON), nil
	case FormatExcel:
		return exportfmt.NewXLSX(w, s.XLSX)
	}
	return exportfmt.NewCSV(w, s.CSV)
}

// Progress is told the number of rows written so far, every ProgressEvery rows.
type Progress func(rowsDone int64)

// ProgressEvery is how often (in rows) Run reports progress.
const ProgressEvery = 1000

// FlushEvery is how long buffered output may wait while rows keep coming: the header leaves at
// once, and a row written FlushEvery or more after the last flush flushes itself and the rows
// before it, so a stream of a selective filter shows its rows as they come. The check is made
// as a row is written (no timer writes concurrently): a row that follows a flush closely and is
// then followed by a long silence waits for the next row or the end.
const FlushEvery = 200 * time.Millisecond

// Result is what Run wrote.
type Result struct {
	Rows     int64    // data rows of the requested entity
	Warnings []string // data the format had to alter (e.g. text cut to fit an XLSX cell)
}

// Run streams the spec's rows from db through its format writer onto w. It stops at the first
// error, including ctx's cancellation. Only the requested entity's rows count in progress and
// Result.Rows; a workbook's other sheets are written in the order asked.
//
// Traced (when tracing is on) as "export write <format>", the encoding from the first byte to
// the finished file, with a "catalog query <entity>" child per table read: from sending the
// query to its last row.
func Run(ctx context.Context, db catalog.Querier, s *Spec, w io.Writer, progress Progress) (res Result, err error) {
	ctx, span := telemetry.Start(ctx, "export", "export write "+s.Format, trace.WithAttributes(
		attribute.String("export.entity", s.Entity), attribute.String("export.format", s.Format),
		attribute.String("export.compression", string(s.Compression))))
	defer func() {
		span.SetAttributes(attribute.Int64("export.rows", res.Rows))
		telemetry.End(span, err)
	}()
	// A compressed file: the format writes into the compressor, which writes into w.
	dst := w
	var compressor io.WriteCloser
	if s.Compression != exportfmt.CompressNone {
		if compressor, err = exportfmt.Compress(w, s.Compression, s.Inner, time.Now()); err != nil {
			return res, err
		}
		dst = compressor
	}
	fw, err := s.NewWriter(dst)
	if err != nil {
		return res, err
	}
	closing := false
	defer func() {
		// A failed run abandons the file instead of finishing one nobody will keep.
		if a, ok := fw.(exportfmt.Aborter); ok && !closing {
			if aerr := a.Abort(); aerr != nil {
				err = errors.Join(err, aerr)
			}
		}
	}()
	tables := s.Sheets
	if len(tables) == 0 {
		tables = []*catalog.Query{s.Query}
	}
	report := func(done int64) {
		if progress != nil {
			progress(done)
		}
	}
	// Flushing goes through the format writer's buffer, then w's own (an HTTP response).
	flushed := time.Now()
	flush := func() error {
		flushed = time.Now()
		if f, ok := fw.(exportfmt.Flusher); ok {
			if err := f.Flush(); err != nil {
				return err
			}
		}
		if f, ok := compressor.(exportfmt.Flusher); ok {
			if err := f.Flush(); err != nil {
				return err
			}
		}
		if f, ok := w.(exportfmt.Flusher); ok {
			return f.Flush()
		}
		return nil
	}
	for _, q := range tables {
		if sw, ok := fw.(exportfmt.Sheets); ok {
			if err := sw.StartSheet(q.Entity.Name); err != nil {
				return res, fmt.Errorf("starting sheet %s: %w", q.Entity.Name, err)
			}
		}
		header := func() error {
			headers := s.Headers
			if q != s.Query {
				headers = nil // a workbook's other sheets keep their field names
			}
			if err := fw.WriteHeader(columns(q, headers)); err != nil {
				return fmt.Errorf("writing header: %w", err)
			}
			if err := flush(); err != nil {
				return err
			}
			if s.afterHeader != nil {
				s.afterHeader()
			}
			return nil
		}
		p, every := func(int64) {}, int64(0)
		if q == s.Query {
			p, every = report, ProgressEvery
		}
		qctx, qspan := startQuery(ctx, q)
		n, err := q.Stream(qctx, db, header, func(cells [][]byte) error {
			if err := fw.WriteRow(cells); err != nil {
				return err
			}
			if time.Since(flushed) >= FlushEvery {
				return flush()
			}
			return nil
		}, p, every)
		qspan.SetAttributes(attribute.Int64("db.response.returned_rows", n))
		telemetry.End(qspan, err)
		if err != nil {
			return res, err
		}
		if q == s.Query {
			res.Rows = n
		}
	}
	closing = true
	if err := fw.Close(); err != nil {
		return res, fmt.Errorf("finishing %s: %w", s.Format, err)
	}
	if compressor != nil {
		if err := compressor.Close(); err != nil {
			return res, fmt.Errorf("finishing %s compression: %w", s.Compression, err)
		}
	}
	if wr, ok := fw.(exportfmt.Warner); ok {
		res.Warnings = wr.Warnings()
	}
	report(res.Rows)
	return res, nil
}

// startQuery starts the span of one table's catalog query (a no-op span with tracing off).
func startQuery(ctx context.Context, q *catalog.Query) (context.Context, trace.Span) {
	return telemetry.Start(ctx, "export", "catalog query "+q.Entity.Name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system", "postgresql"), attribute.String("db.collection.name", q.Entity.Name),
			attribute.Int("export.relations", len(q.Relations))))
}

// Splittable reports whether the spec's file is the concatenation of its key ranges' outputs
// (RunRange), and why not when it is not.
func (s *Spec) Splittable() (bool, string) {
	switch {
	case s.Format == FormatCSV, s.Format == FormatJSON && s.JSON.Lines:
	default:
		return false, "a JSON array or a workbook has one beginning and one end, not one per range"
	}
	switch {
	case s.Compression != exportfmt.CompressNone:
		return false, "a compressed file is one stream"
	case len(s.Query.Relations) > 0:
		return false, "relations are read on connections of their own, outside a range's snapshot"
	}
	return true, ""
}

// RunRange writes the rows whose keys lie in [lo, hi) as the part of the file they are: the
// first range (lo nil) with the file's beginning (byte order mark, header), the others
// without, so the ranges' outputs one after the other are the file Run writes, when every
// range reads the same snapshot (catalog.SetSnapshot). Only splittable specs.
func RunRange(ctx context.Context, db catalog.Querier, s *Spec, lo, hi *int64, w io.Writer, progress Progress) (Result, error) {
	if ok, why := s.Splittable(); !ok {
		return Result{}, fmt.Errorf("%s export of %s cannot be split: %s", s.Format, s.Entity, why)
	}
	r := *s
	r.Query = s.Query.Range(lo, hi)
	if lo == nil {
		return Run(ctx, db, &r, w, progress)
	}
	gate := &headerGate{w: w}
	r.afterHeader = func() { gate.open = true }
	return Run(ctx, db, &r, gate, progress)
}

// headerGate drops what is written before it opens: the header of a range after the first.
type headerGate struct {
	w    io.Writer
	open bool
}

func (g *headerGate) Write(p []byte) (int, error) {
	if !g.open {
		return len(p), nil
	}
	return g.w.Write(p)
}
