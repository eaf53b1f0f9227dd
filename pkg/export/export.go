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
	"strings"

	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/exportfmt"
)

// Formats the platform knows.
const (
	FormatCSV   = "csv"
	FormatExcel = "excel"
	FormatJSON  = "json"
)

// Request is what a user asks for (the export request body of CONTRACT §4).
type Request struct {
	Entity        string
	Format        string
	Fields        []string
	ExcludeFields []string
	Filters       map[string]any
	Options       map[string]any
	FileName      string
}

// ValidationError is a request that cannot run; Field is the JSON path at fault
// ("filters.price_min", "options.delimiter", "fields", "format").
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// ErrUnsupported marks a known format that this build cannot write yet.
var ErrUnsupported = errors.New("format not supported yet")

// Spec is a validated request, ready to run.
type Spec struct {
	Request
	Query       *catalog.Query
	CSV         exportfmt.CSVOptions
	ContentType string
	FileName    string
}

var knownOptions = map[string]bool{
	"delimiter": true, "decimal": true, "line_ending": true, "bom": true, "formula_escape": true,
	"lines": true, "pretty": true, "include_relations": true, "sheets": true,
}

var fileNameRE = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._()-]{0,150}$`)

// Prepare validates r against the catalog's allow-lists and the format's options.
func Prepare(r Request) (*Spec, error) {
	if _, ok := catalog.Lookup(r.Entity); !ok {
		return nil, &ValidationError{"entity", fmt.Sprintf("unknown entity %q (one of %s)", r.Entity, strings.Join(catalog.EntityNames(), ", "))}
	}
	switch r.Format {
	case FormatCSV:
	case FormatExcel, FormatJSON:
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, r.Format)
	default:
		return nil, &ValidationError{"format", fmt.Sprintf("unknown format %q (one of csv, excel, json)", r.Format)}
	}
	q, err := catalog.NewQuery(r.Entity, r.Fields, r.ExcludeFields, r.Filters)
	if err != nil {
		var fe *catalog.FilterError
		var ue catalog.ErrUnknownField
		switch {
		case errors.As(err, &fe):
			return nil, &ValidationError{"filters." + fe.Filter, fe.Error()}
		case errors.As(err, &ue):
			field := "fields"
			if !contains(r.Fields, ue.Name) {
				field = "exclude_fields"
			}
			return nil, &ValidationError{field, ue.Error()}
		default:
			return nil, &ValidationError{"fields", err.Error()}
		}
	}
	s := &Spec{Request: r, Query: q}
	for k := range r.Options {
		if !knownOptions[k] {
			return nil, &ValidationError{"options." + k, fmt.Sprintf("unknown option %q", k)}
		}
	}
	if s.CSV, err = csvOptions(r.Options); err != nil {
		return nil, err
	}
	s.ContentType = "text/csv; charset=utf-8"
	s.FileName = r.FileName
	if s.FileName == "" {
		s.FileName = r.Entity + ".csv"
	} else if !fileNameRE.MatchString(s.FileName) || path.Base(s.FileName) != s.FileName {
		return nil, &ValidationError{"file_name", "must be 1 to 150 letters, digits, spaces or ._()- and not a path"}
	}
	return s, nil
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
		v, ok := o[k]
		if !ok {
			continue
		}
		b, isBool := v.(bool)
		if s, isStr := v.(string); isStr && (s == "true" || s == "false") {
			b, isBool = s == "true", true
		}
		if !isBool {
			return c, bad(k, "must be true or false")
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

// Columns are the output columns of the spec.
func (s *Spec) Columns() []exportfmt.Column {
	cols := make([]exportfmt.Column, len(s.Query.Fields))
	for i, f := range s.Query.Fields {
		cols[i] = exportfmt.Column{Name: f.Name, Kind: exportfmt.Kind(f.Type)}
	}
	return cols
}

// NewWriter returns the spec's format writer onto w.
func (s *Spec) NewWriter(w io.Writer) (exportfmt.Writer, error) {
	return exportfmt.NewCSV(w, s.CSV)
}

// Progress is told the number of rows written so far, every ProgressEvery rows.
type Progress func(rowsDone int64)

// ProgressEvery is how often (in rows) Run reports progress.
const ProgressEvery = 1000

// Result is what Run wrote.
type Result struct {
	Rows     int64    // data rows of the requested entity
	Warnings []string // data the format had to alter (e.g. text cut to fit an XLSX cell)
}

// Run streams the spec's rows from db through its format writer onto w. It stops at the first
// error, including ctx's cancellation.
func Run(ctx context.Context, db catalog.Querier, s *Spec, w io.Writer, progress Progress) (Result, error) {
	n, err := run(ctx, db, s, w, progress)
	return Result{Rows: n}, err
}

func run(ctx context.Context, db catalog.Querier, s *Spec, w io.Writer, progress Progress) (int64, error) {
	fw, err := s.NewWriter(w)
	if err != nil {
		return 0, err
	}
	if err := fw.WriteHeader(s.Columns()); err != nil {
		return 0, fmt.Errorf("writing header: %w", err)
	}
	n, err := s.Query.Rows(ctx, db, func(cells [][]byte) error {
		return fw.WriteRow(cells)
	}, func(done int64) {
		if progress != nil {
			progress(done)
		}
	}, ProgressEvery)
	if err != nil {
		return n, err
	}
	if err := fw.Close(); err != nil {
		return n, fmt.Errorf("finishing %s: %w", s.Format, err)
	}
	if progress != nil {
		progress(n)
	}
	return n, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
