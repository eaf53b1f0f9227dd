package exportfmt

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
)

// XLSXOptions shape a workbook. Zero fields take their defaults.
type XLSXOptions struct {
	// MaxRowsPerSheet is the number of data rows a sheet holds before the table continues on a
	// new sheet ("products (2)", …); default and maximum 1,048,575, Excel's limit less the header.
	MaxRowsPerSheet int
	// SampleRows is how many rows are held back to size the columns: a streamed sheet must
	// declare its column widths before its first row. Default 100.
	SampleRows int
	// MaxCellChars is the longest text a cell keeps, in UTF-16 code units as Excel counts them
	// (an emoji counts 2); longer text is cut and reported by Warnings. Default and maximum
	// 32,767, Excel's limit.
	MaxCellChars int
}

const (
	xlsxMaxRows      = 1_048_575
	xlsxMaxCellChars = 32_767
	xlsxSheetName    = 31 // Excel's longest sheet name
	xlsxMaxColWidth  = 60
	xlsxMinColWidth  = 6
	xlsxDefaultSheet = "data"
	// xlsxMaxSheetBytes keeps every worksheet's XML under 4 GiB: a bigger zip entry needs
	// zip64, and archive/zip then writes a local header version that Excel rejects as corrupt
	// (excelize's writeZip64LFH patches it in the in-memory zip; a streamed zip is already
	// gone). Long texts can pass it before the row limit; the table then continues on a new
	// sheet.
	xlsxMaxSheetBytes = 4<<30 - 256<<20
)

// XLSX writes an Excel workbook, one sheet per table: the header row bold on grey, frozen
// and with an autofilter over the table; columns sized from the header and the first
// SampleRows rows; cells typed (integers and decimals as numbers, decimals shown with two
// decimals, booleans, timestamps as date-times in UTC, text and json as strings, which a
// spreadsheet never runs as formulas); NULL as an empty cell.
//
// Each sheet's XML is written by hand and compressed straight into its zip entry as the rows
// come (a streamed entry with a data descriptor), so nothing is written twice and nothing goes
// to disk: memory holds one row, the sample and the compressor's blocks. excelize keeps what
// it does well, the rest of the package: an in-memory workbook with the same sheets (empty)
// gives the styles, the workbook, its relationships, content types and the autofilters'
// defined names, written after the sheets by Close. The sheets reach the writer as they are
// written; after an error or Abort the output is a truncated zip the caller throws away. An
// XLSX is not safe for concurrent use.
type XLSX struct {
	out  io.Writer
	opts XLSXOptions
	f    *excelize.File // the workbook's parts but the streamed sheets' XML
	zw   *zip.Writer

	styleHeader, styleDecimal, styleTime int

	maxSheetBytes int64
	names         map[string]bool // lower-cased sheet names taken: Excel ignores case
	defaultUsed   bool            // the File's initial "Sheet1" became our first sheet
	sheets        int             // sheets created so far
	streamed      map[string]bool // zip paths of the sheets written here, not by excelize
	t             *xlsxTable      // the table being written, nil before the first sheet

	cut, cleaned int      // cells cut to MaxCellChars; cells stripped of what XML forbids
	continued    []string // warnings about tables spread over several sheets

	err      error // the first failure: every later call returns it
	closed   bool
	closeErr error
}

var _ interface {
	Writer
	Sheets
	Warner
	Aborter
} = (*XLSX)(nil)

// xlsxTable is one table of the workbook: the rows between a StartSheet and the next, which
// may fill several sheets.
type xlsxTable struct {
	base     string   // the name asked for; continuation sheets add " (2)", " (3)"…
	part     int      // 1 for the first sheet, 2 for "base (2)"…
	extra    int      // sheets after the first
	warning  int      // index of this table's warning in XLSX.continued, once extra > 0
	name     string   // the current sheet's name
	path     string   // the current sheet's zip entry
	first    bool     // the current sheet is the workbook's first (its tab is selected)
	cols     []Column // nil until WriteHeader
	sampling bool
	sample   [][][]byte // rows held back until the column widths are known
	widths   []float64
	letters  []string      // column letters: A, B, … AA
	styles   []string      // each column's style attribute (` s="2"`), or ""
	out      *bufio.Writer // the current sheet's entry, nil before its header row
	rows     int           // data rows in the current sheet
	bytes    int64         // XML bytes of the current sheet so far
	row      []byte        // the row being encoded, reused
}

// xlsxTailBytes bounds what a sheet's XML holds after its last row.
const xlsxTailBytes = 1024

// NewXLSX returns a workbook writer onto w.
func NewXLSX(w io.Writer, opts XLSXOptions) (*XLSX, error) {
	if opts.MaxRowsPerSheet < 0 || opts.SampleRows < 0 || opts.MaxCellChars < 0 {
		return nil, fmt.Errorf("xlsx options %+v: negative value", opts)
	}
	if opts.MaxRowsPerSheet == 0 || opts.MaxRowsPerSheet > xlsxMaxRows {
		opts.MaxRowsPerSheet = xlsxMaxRows
	}
	if opts.SampleRows == 0 {
		opts.SampleRows = 100
	}
	if opts.MaxCellChars == 0 || opts.MaxCellChars > xlsxMaxCellChars {
		opts.MaxCellChars = xlsxMaxCellChars
	}
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, newDeflate)
	x := &XLSX{
		out:           w,
		opts:          opts,
		f:             excelize.NewFile(),
		zw:            zw,
		maxSheetBytes: xlsxMaxSheetBytes,
		names:         map[string]bool{},
		streamed:      map[string]bool{},
	}
	timeFormat := "yyyy-mm-dd hh:mm:ss"
	var err error
	if x.styleHeader, err = x.f.NewStyle(&excelize.Style{
		Font: &excelize.Font{Bold: true},
		Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"D9D9D9"}},
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("xlsx: header style: %w", err), x.f.Close())
	}
	if x.styleDecimal, err = x.f.NewStyle(&excelize.Style{NumFmt: 2}); err != nil { // 0.00
		return nil, errors.Join(fmt.Errorf("xlsx: decimal style: %w", err), x.f.Close())
	}
	if x.styleTime, err = x.f.NewStyle(&excelize.Style{CustomNumFmt: &timeFormat}); err != nil {
		return nil, errors.Join(fmt.Errorf("xlsx: timestamp style: %w", err), x.f.Close())
	}
	return x, nil
}

// StartSheet ends the current table and begins a sheet named name. The name is made
// acceptable to Excel (at most 31 characters, none of : \ / ? * [ ]); it must not be taken.
func (x *XLSX) StartSheet(name string) error {
	if err := x.usable(); err != nil {
		return err
	}
	name = sheetName(name)
	if x.names[strings.ToLower(name)] {
		return fmt.Errorf("xlsx: sheet %q already exists", name)
	}
	if err := x.endTable(); err != nil {
		return x.fail(err)
	}
	x.t = &xlsxTable{base: name, part: 1}
	return x.fail(x.newSheet(name))
}

// WriteHeader gives the current sheet its columns; without a StartSheet first, the sheet is
// named "data". The header row itself is written once the sample rows have sized the columns.
func (x *XLSX) WriteHeader(cols []Column) error {
	if err := x.usable(); err != nil {
		return err
	}
	if x.t == nil {
		if err := x.StartSheet(xlsxDefaultSheet); err != nil {
			return err
		}
	}
	t := x.t
	if t.cols != nil {
		return fmt.Errorf("xlsx: sheet %q already has a header", t.name)
	}
	if len(cols) > excelize.MaxColumns {
		return fmt.Errorf("xlsx: %d columns, a sheet holds %d", len(cols), excelize.MaxColumns)
	}
	t.cols = slices.Clone(cols)
	if t.cols == nil {
		t.cols = []Column{}
	}
	t.letters = make([]string, len(cols))
	t.styles = make([]string, len(cols))
	for i, col := range cols {
		t.letters[i], _ = excelize.ColumnNumberToName(i + 1) // within MaxColumns: no error
		switch col.Kind {
		case KindDecimal:
			t.styles[i] = ` s="` + strconv.Itoa(x.styleDecimal) + `"`
		case KindTimestamp:
			t.styles[i] = ` s="` + strconv.Itoa(x.styleTime) + `"`
		}
	}
	t.sampling = true
	return nil
}

// WriteRow writes one row. The first SampleRows rows are copied and held back (the caller may
// reuse its slices) until the column widths are known.
func (x *XLSX) WriteRow(cells [][]byte) error {
	if err := x.usable(); err != nil {
		return err
	}
	t := x.t
	if t == nil || t.cols == nil {
		return errors.New("xlsx: row before header")
	}
	if len(cells) != len(t.cols) {
		return fmt.Errorf("xlsx: row has %d cells, header %d", len(cells), len(t.cols))
	}
	if t.sampling {
		t.sample = append(t.sample, cloneCells(cells))
		if len(t.sample) < x.opts.SampleRows {
			return nil
		}
		return x.fail(x.endSample())
	}
	return x.fail(x.writeData(cells))
}

// Warnings says what was altered to fit the format; nil when nothing was.
func (x *XLSX) Warnings() []string {
	var ws []string
	if x.cut > 0 {
		ws = append(ws, fmt.Sprintf("%s longer than %d characters %s cut",
			plural(x.cut, "cell", "cells"), x.opts.MaxCellChars, plural0(x.cut, "was", "were")))
	}
	if x.cleaned > 0 {
		ws = append(ws, fmt.Sprintf("%s held control characters or invalid UTF-8, which a spreadsheet cannot store: they were removed",
			plural(x.cleaned, "cell", "cells")))
	}
	return append(ws, x.continued...)
}

// Close ends the last table and writes the rest of the workbook to the writer. It does not
// close the underlying writer; a second call returns the first one's result.
func (x *XLSX) Close() error {
	if x.closed {
		return x.closeErr
	}
	x.closed = true
	err := x.err
	if err == nil {
		err = x.finish()
	}
	if cerr := x.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("xlsx: closing the workbook: %w", cerr)
	}
	x.closeErr = err
	return err
}

// errAborted is what a writer abandoned by Abort answers.
var errAborted = errors.New("xlsx: export abandoned")

// Abort abandons the workbook: nothing more is written (the output stays a truncated zip) and
// Close reports the abort. It does nothing after Close.
func (x *XLSX) Abort() error {
	if x.closed {
		return nil
	}
	x.closed = true
	_ = x.fail(errAborted)
	x.closeErr = x.err
	if err := x.f.Close(); err != nil {
		return fmt.Errorf("xlsx: closing the workbook: %w", err)
	}
	return nil
}

func (x *XLSX) finish() error {
	if err := x.endTable(); err != nil {
		return err
	}
	if !x.defaultUsed { // nothing started: one empty sheet rather than excelize's "Sheet1"
		if err := x.f.SetSheetName("Sheet1", xlsxDefaultSheet); err != nil {
			return fmt.Errorf("xlsx: naming the empty sheet: %w", err)
		}
	}
	// excelize writes the workbook's other parts into our zip, after the sheets; the sheets
	// streamed here are in it already, so its own (empty) copies of them are dropped.
	// File.WriteTo and Write would build the zip in a bytes.Buffer; the buffer WriteToBuffer
	// hands its zip writer stays empty.
	parts := &xlsxParts{zw: x.zw, skip: x.streamed, seen: map[string]bool{}}
	x.f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return parts })
	buf, err := x.f.WriteToBuffer()
	if err != nil {
		return fmt.Errorf("xlsx: writing the workbook: %w", err)
	}
	if buf.Len() != 0 {
		return errors.New("xlsx: excelize wrote around its zip writer")
	}
	for path := range x.streamed {
		if !parts.seen[path] {
			// excelize laid its sheets out under other names: the workbook would point
			// at empty sheets and leave ours unreferenced.
			return fmt.Errorf("xlsx: the workbook has no part %s for a streamed sheet", path)
		}
	}
	return nil
}

// xlsxParts is the zip writer excelize writes the workbook's parts into: ours, less the
// sheets already streamed.
type xlsxParts struct {
	zw   *zip.Writer
	skip map[string]bool
	seen map[string]bool
}

func (p *xlsxParts) Create(name string) (io.Writer, error) {
	if p.skip[name] {
		p.seen[name] = true
		return io.Discard, nil
	}
	return p.zw.Create(name)
}

func (p *xlsxParts) AddFS(fsys fs.FS) error { return p.zw.AddFS(fsys) }
func (p *xlsxParts) Close() error           { return p.zw.Close() }

func (x *XLSX) usable() error {
	switch {
	case x.closed:
		return errors.New("xlsx: writer closed")
	case x.err != nil:
		return x.err
	}
	return nil
}

// fail records err as the writer's failure: a workbook that lost a row must not be completed.
func (x *XLSX) fail(err error) error {
	if err != nil && x.err == nil {
		x.err = err
	}
	return err
}

// newSheet adds the sheet name to the workbook and makes it the current table's. The first
// one renames excelize's initial "Sheet1", which would otherwise stay as an empty extra sheet.
// excelize names the n-th sheet's part xl/worksheets/sheet<n>.xml: finish checks it did.
func (x *XLSX) newSheet(name string) error {
	if !x.defaultUsed {
		x.defaultUsed = true
		if err := x.f.SetSheetName("Sheet1", name); err != nil {
			return fmt.Errorf("xlsx: naming sheet %q: %w", name, err)
		}
	} else if _, err := x.f.NewSheet(name); err != nil {
		return fmt.Errorf("xlsx: adding sheet %q: %w", name, err)
	}
	x.names[strings.ToLower(name)] = true
	x.sheets++
	t := x.t
	t.name, t.first = name, x.sheets == 1
	t.path = "xl/worksheets/sheet" + strconv.Itoa(x.sheets) + ".xml"
	return nil
}

// endSample sizes the columns from the header and the rows held back, then writes them.
func (x *XLSX) endSample() error {
	t := x.t
	t.sampling = false
	t.widths = columnWidths(t.cols, t.sample)
	if err := x.startRows(); err != nil {
		return err
	}
	for _, row := range t.sample {
		if err := x.writeData(row); err != nil {
			return err
		}
	}
	t.sample = nil
	return nil
}

// startRows opens the current sheet's zip entry and writes its XML up to the header row:
// the frozen pane, the column widths, the header.
func (x *XLSX) startRows() error {
	t := x.t
	w, err := x.zw.CreateHeader(&zip.FileHeader{Name: t.path, Method: zip.Deflate})
	if err != nil {
		return fmt.Errorf("xlsx: starting sheet %q: %w", t.name, err)
	}
	x.streamed[t.path] = true
	if t.out == nil {
		t.out = bufio.NewWriterSize(w, 64<<10)
	} else {
		t.out.Reset(w)
	}
	b := append(t.row[:0], `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`+"\n"+
		`<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" `+
		`xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">`+
		`<sheetViews><sheetView`...)
	if t.first {
		b = append(b, ` tabSelected="1"`...)
	}
	b = append(b, ` workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>`+
		`<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>`+
		`<sheetFormatPr defaultRowHeight="15"/>`...)
	if len(t.widths) > 0 {
		b = append(b, `<cols>`...)
		for i, w := range t.widths {
			b = append(b, `<col min="`...)
			b = strconv.AppendInt(b, int64(i+1), 10)
			b = append(b, `" max="`...)
			b = strconv.AppendInt(b, int64(i+1), 10)
			b = append(b, `" width="`...)
			b = strconv.AppendFloat(b, w, 'f', -1, 64)
			b = append(b, `" customWidth="1"/>`...)
		}
		b = append(b, `</cols>`...)
	}
	b = append(b, `<sheetData><row r="1">`...)
	header := ` s="` + strconv.Itoa(x.styleHeader) + `"`
	for i, col := range t.cols {
		b = x.appendText(t.cellStart(b, i, 1, header), []byte(col.Name))
	}
	b = append(b, `</row>`...)
	t.row = b
	t.bytes, t.rows = 0, 0
	return t.write(b)
}

// write appends XML to the current sheet.
func (t *xlsxTable) write(b []byte) error {
	n, err := t.out.Write(b)
	t.bytes += int64(n)
	if err != nil {
		return fmt.Errorf("xlsx: writing sheet %q: %w", t.name, err)
	}
	return nil
}

// cellStart appends the opening of cell (col, row) up to its type, with the style attribute.
func (t *xlsxTable) cellStart(b []byte, col, row int, style string) []byte {
	b = append(b, `<c r="`...)
	b = append(b, t.letters[col]...)
	b = strconv.AppendInt(b, int64(row), 10)
	b = append(b, '"')
	return append(b, style...)
}

// writeData writes one data row, first continuing on a new sheet when this one is full.
func (x *XLSX) writeData(cells [][]byte) error {
	t := x.t
	if t.rows >= x.opts.MaxRowsPerSheet {
		if err := x.nextSheet(); err != nil {
			return err
		}
	}
	t.row = x.appendRow(t.row[:0], cells, t.rows+2)
	if t.rows > 0 && t.bytes+int64(len(t.row))+xlsxTailBytes > x.maxSheetBytes {
		if err := x.nextSheet(); err != nil {
			return err
		}
		t.row = x.appendRow(t.row[:0], cells, t.rows+2)
	}
	if err := t.write(t.row); err != nil {
		return err
	}
	t.rows++
	return nil
}

// appendRow appends the XML of row number r.
func (x *XLSX) appendRow(b []byte, cells [][]byte, r int) []byte {
	t := x.t
	b = append(b, `<row r="`...)
	b = strconv.AppendInt(b, int64(r), 10)
	b = append(b, `">`...)
	for i, cell := range cells {
		if cell != nil {
			b = x.appendCell(t.cellStart(b, i, r, t.styles[i]), t.cols[i].Kind, cell)
		}
	}
	return append(b, `</row>`...)
}

// nextSheet ends the current sheet and continues the table on "base (n)", with the same
// header, widths and styles.
func (x *XLSX) nextSheet() error {
	t := x.t
	if err := x.endSheet(); err != nil {
		return err
	}
	var name string
	for {
		t.part++
		suffix := " (" + strconv.Itoa(t.part) + ")"
		name = cutUTF16(t.base, xlsxSheetName-len(suffix)) + suffix
		if !x.names[strings.ToLower(name)] {
			break
		}
	}
	if err := x.newSheet(name); err != nil {
		return err
	}
	t.extra++
	if t.extra == 1 {
		t.warning = len(x.continued)
		x.continued = append(x.continued, "")
	}
	x.continued[t.warning] = fmt.Sprintf("sheet %q continues on %s, the last one %q",
		t.base, plural(t.extra, "more sheet", "more sheets"), t.name)
	return x.startRows()
}

// endTable ends the current table, if any.
func (x *XLSX) endTable() error {
	t := x.t
	if t == nil {
		return nil
	}
	if t.sampling {
		if err := x.endSample(); err != nil {
			return err
		}
	}
	err := x.endSheet()
	x.t = nil
	return err
}

// endSheet writes the end of the current sheet's XML with its autofilter over the header and
// the rows (known only now), and flushes it into its zip entry. A sheet without a header was
// never started here: excelize writes it, empty. The autofilter is also set on excelize's
// copy of the sheet, for the workbook's hidden name Excel keeps for it.
func (x *XLSX) endSheet() error {
	t := x.t
	if t == nil || t.cols == nil {
		return nil
	}
	b := append(t.row[:0], `</sheetData>`...)
	if len(t.cols) > 0 {
		last, err := excelize.CoordinatesToCellName(len(t.cols), t.rows+1)
		if err == nil {
			err = x.f.AutoFilter(t.name, "A1:"+last, nil)
		}
		if err != nil {
			return fmt.Errorf("xlsx: autofilter of %q: %w", t.name, err)
		}
		b = append(b, `<autoFilter ref="A1:`...)
		b = append(b, last...)
		b = append(b, `"/>`...)
	}
	b = append(b, `<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>`...)
	t.row = b
	if err := t.write(b); err != nil {
		return err
	}
	if err := t.out.Flush(); err != nil {
		return fmt.Errorf("xlsx: writing sheet %q: %w", t.name, err)
	}
	return nil
}

// appendCell appends a cell's type attribute, the end of its start tag, its value and its end
// tag. A cell that does not parse as its kind is kept as text rather than lost.
func (x *XLSX) appendCell(b []byte, kind Kind, cell []byte) []byte {
	switch kind {
	case KindInteger:
		if v, ok := parseInt15(cell); ok {
			b = append(b, `><v>`...)
			b = strconv.AppendInt(b, v, 10)
			return append(b, `</v></c>`...)
		}
	case KindDecimal:
		if len(cell) > 0 && (cell[0] == '-' || '0' <= cell[0] && cell[0] <= '9') {
			if v, err := strconv.ParseFloat(string(cell), 64); err == nil {
				if math.IsInf(v, 0) || math.IsNaN(v) {
					return x.appendText(b, []byte(fmt.Sprint(v)))
				}
				b = append(b, `><v>`...)
				b = appendCellFloat(b, v)
				return append(b, `</v></c>`...)
			}
		}
	case KindBoolean:
		switch string(cell) {
		case "true", "t":
			return append(b, ` t="b"><v>1</v></c>`...)
		case "false", "f":
			return append(b, ` t="b"><v>0</v></c>`...)
		}
	case KindTimestamp:
		if v, ok := parseTimestamp(cell); ok {
			if serial, ok := excelSerial(v); ok {
				b = append(b, `><v>`...)
				b = strconv.AppendFloat(b, serial, 'f', -1, 64)
				return append(b, `</v></c>`...)
			}
			return x.appendText(b, []byte(v.Format(time.RFC3339Nano)))
		}
	}
	return x.appendText(b, cell)
}

// appendText appends an inline-string cell's type, value and end tag: text made fit for a
// cell (characters XML 1.0 forbids, control characters but tab, CR and LF, U+FFFE and U+FFFF,
// would make the file unreadable, so they are dropped, and invalid UTF-8 becomes U+FFFD; text
// past MaxCellChars is cut), XML-escaped, with its surrounding white space kept.
func (x *XLSX) appendText(b, cell []byte) []byte {
	cell = x.text(cell)
	b = append(b, ` t="inlineStr"><is><t`...)
	if n := len(cell); n > 0 && (isXMLSpace(cell[0]) || isXMLSpace(cell[n-1])) {
		b = append(b, ` xml:space="preserve"`...)
	}
	b = append(b, '>')
	b = appendEscaped(b, cell)
	return append(b, `</t></is></c>`...)
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// xmlSpecial marks the bytes appendEscaped looks at.
var xmlSpecial = [256]bool{'&': true, '<': true, '>': true, '\r': true, '_': true}

// appendEscaped appends s as XML text: & < > escaped, CR as a character reference (a parser
// would read a raw one as LF), and the underscore of a literal "_xHHHH_" escaped as
// "_x005F_", since Excel reads "_xHHHH_" as the character HHHH (ECMA-376 ST_Xstring).
func appendEscaped(b, s []byte) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !xmlSpecial[c] {
			continue
		}
		var esc string
		switch c {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\r':
			esc = "&#13;"
		case '_':
			if !isXEscape(s[i:]) {
				continue
			}
			esc = "_x005F_"
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		last = i + 1
	}
	return append(b, s[last:]...)
}

// isXEscape reports whether s starts with "_x", four hexadecimal digits and "_".
func isXEscape(s []byte) bool {
	if len(s) < 7 || s[1] != 'x' || s[6] != '_' {
		return false
	}
	for _, c := range s[2:6] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// appendCellFloat appends v as Excel keeps it: the shortest decimal that reads back as v,
// with digits past the 15th significant one truncated (Excel's precision), as excelize does.
func appendCellFloat(b []byte, v float64) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, v, 'f', -1, 64)
	if len(b)-start <= 16 || math.Abs(v) == math.MaxFloat64 {
		return b
	}
	s := b[start:]
	dot := bytes.IndexByte(s, '.')
	significant := 0
	for i, c := range s {
		if c < '0' || c > '9' || significant == 0 && c == '0' {
			continue
		}
		if significant++; significant <= 15 {
			continue
		}
		if dot >= 0 && i > dot {
			return bytes.TrimSuffix(b[:start+i], []byte("."))
		}
		if dot < 0 {
			dot = len(s)
		}
		for j := i; j < dot; j++ {
			s[j] = '0'
		}
		return b[:start+dot]
	}
	return b
}

// excelMinTime is the day before Excel's first date, 1900-01-01, in its 1900 date system.
var (
	excelMinTime  = time.Date(1899, time.December, 31, 0, 0, 0, 0, time.UTC)
	excelLeapBug  = time.Date(1900, time.March, 1, 0, 0, 0, 0, time.UTC)
	nanosecsInDay = float64(24 * time.Hour)
)

// excelSerial is t as an Excel date-time serial number (days since 1899-12-30 from March
// 1900, as Excel counts a 29 February 1900 that never was); false before 1900, which Excel's
// dates do not reach.
func excelSerial(t time.Time) (float64, bool) {
	if !t.After(excelMinTime) {
		return 0, false
	}
	secs := t.Unix() - excelMinTime.Unix()
	days := secs / 86400
	rem := (secs%86400)*int64(time.Second) + int64(t.Nanosecond())
	v := float64(days) + float64(rem)/nanosecsInDay
	if !t.Before(excelLeapBug) {
		v++
	}
	return v, true
}

// parseInt15 parses a decimal integer of at most 15 digits: Excel keeps 15 significant
// digits, so a longer one would be silently rounded; it stays text instead.
func parseInt15(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// parseTimestamp reads the catalog's RFC 3339 text, by hand for its usual form
// "2006-01-02T15:04:05Z" (time.Parse costs more than the rest of the cell).
func parseTimestamp(b []byte) (time.Time, bool) {
	if len(b) == 20 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' && b[19] == 'Z' {
		y, ok1 := digits(b[0:4])
		mo, ok2 := digits(b[5:7])
		d, ok3 := digits(b[8:10])
		h, ok4 := digits(b[11:13])
		mi, ok5 := digits(b[14:16])
		s, ok6 := digits(b[17:19])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && mo >= 1 && mo <= 12 && d >= 1 && h < 24 && mi < 60 && s < 60 {
			t := time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC)
			if t.Day() == d {
				return t, true
			}
		}
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func digits(b []byte) (int, bool) {
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// text makes b fit for a cell: characters XML 1.0 forbids (control characters but tab, CR,
// LF; U+FFFE, U+FFFF) would make the file unreadable, so they are dropped, and invalid UTF-8
// becomes U+FFFD; text past MaxCellChars is cut. The common case, nothing to change, is one
// scan and returns b itself.
func (x *XLSX) text(b []byte) []byte {
	if len(b) > x.opts.MaxCellChars {
		return x.textLong(b)
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\n' && c != '\t' && c != '\r' {
				return x.textSlow(b)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF {
			return x.textSlow(b)
		}
		i += size
	}
	return b // at most MaxCellChars bytes: at most as many UTF-16 units
}

// textLong is text for a cell of more bytes than MaxCellChars, which may hold too many
// characters.
func (x *XLSX) textLong(b []byte) []byte {
	units := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\n' && c != '\t' && c != '\r' {
				return x.textSlow(b)
			}
			units++
			i++
		} else {
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF {
				return x.textSlow(b)
			}
			units += utf16Len(r)
			i += size
		}
		if units > x.opts.MaxCellChars {
			return x.textSlow(b)
		}
	}
	return b
}

// textSlow is text for cells that need changing.
func (x *XLSX) textSlow(b []byte) []byte {
	out := make([]byte, 0, min(len(b), x.opts.MaxCellChars*3))
	units := 0
	cleaned, cut := false, false
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			cleaned = true
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0xFFFE, r == 0xFFFF:
			cleaned = true
			continue
		}
		if units+utf16Len(r) > x.opts.MaxCellChars {
			cut = true
			break
		}
		units += utf16Len(r)
		out = utf8.AppendRune(out, r)
	}
	if cleaned {
		x.cleaned++
	}
	if cut {
		x.cut++
	}
	return out
}

func utf16Len(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// cutUTF16 cuts s to at most n UTF-16 code units, on a character boundary.
func cutUTF16(s string, n int) string {
	units := 0
	for i, r := range s {
		units += utf16Len(r)
		if units > n {
			return s[:i]
		}
	}
	return s
}

// sheetName makes name acceptable to Excel: no : \ / ? * [ ] or control characters, no
// leading or trailing apostrophe, not "History" (reserved), at most 31 characters.
func sheetName(name string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || strings.ContainsRune(`:\/?*[]`, r) {
			return '_'
		}
		return r
	}, strings.ToValidUTF8(name, "\uFFFD"))
	name = strings.Trim(cutUTF16(strings.TrimSpace(name), xlsxSheetName), "'")
	switch {
	case name == "":
		return xlsxDefaultSheet
	case strings.EqualFold(name, "History"):
		return name + "_"
	}
	return name
}

// columnWidths sizes each column to its header (plus the filter button) and its widest
// sampled value, in characters, between xlsxMinColWidth and xlsxMaxColWidth.
func columnWidths(cols []Column, sample [][][]byte) []float64 {
	widths := make([]float64, len(cols))
	for i, col := range cols {
		n := utf8.RuneCountInString(col.Name) + 3
		for _, row := range sample {
			cell := row[i]
			if cell == nil {
				continue
			}
			var w int
			switch col.Kind {
			case KindTimestamp:
				w = len("2006-01-02 15:04:05")
			case KindBoolean:
				w = len("FALSE")
			case KindInteger, KindDecimal:
				w = len(cell) + 1
			default:
				w = widestLine(cell)
			}
			n = max(n, w)
		}
		widths[i] = float64(min(max(n+1, xlsxMinColWidth), xlsxMaxColWidth))
	}
	return widths
}

// widestLine counts the characters of the longest line of b, stopping past the widest
// column: a cell shows its lines one under the other.
func widestLine(b []byte) int {
	widest, n := 0, 0
	for i := 0; i < len(b) && widest <= xlsxMaxColWidth; {
		r, size := utf8.DecodeRune(b[i:])
		i += size
		if r == '\n' {
			widest, n = max(widest, n), 0
			continue
		}
		n++
	}
	return max(widest, n)
}

func cloneCells(cells [][]byte) [][]byte {
	size := 0
	for _, c := range cells {
		size += len(c)
	}
	buf := make([]byte, 0, size)
	out := make([][]byte, len(cells))
	for i, c := range cells {
		if c != nil {
			buf = append(buf, c...)
			out[i] = buf[len(buf)-len(c) : len(buf) : len(buf)]
		}
	}
	return out
}

func plural(n int, one, many string) string {
	return strconv.Itoa(n) + " " + plural0(n, one, many)
}

func plural0(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
