package exportfmt

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
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

// XLSX writes an Excel workbook through excelize's StreamWriter, one sheet per table:
// the header row bold on grey, frozen and with an autofilter over the table; columns sized from
// the header and the first SampleRows rows; cells typed (integers and decimals as numbers,
// decimals shown with two decimals, booleans, timestamps as date-times in UTC, text and json
// as strings, which a spreadsheet never runs as formulas); NULL as an empty cell.
//
// Rows go to temporary files in os.TempDir (about the uncompressed sheet XML: 1 GiB for a
// million rows of 16 columns); Close zips them onto the writer as it reads them, so memory
// does not grow with the rows. It does with the sheets: excelize keeps each sheet's 16 MiB
// chunk buffer (up to 32 MiB once grown) until Close, so a table continued on n full sheets
// holds n of them. Call Close even after an error: it removes the files. An XLSX is not safe
// for concurrent use.
type XLSX struct {
	out  io.Writer
	opts XLSXOptions
	f    *excelize.File

	styleHeader, styleDecimal, styleTime int

	maxSheetBytes int64
	names         map[string]bool // lower-cased sheet names taken: Excel ignores case
	defaultUsed   bool            // the File's initial "Sheet1" became our first sheet
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
	base     string // the name asked for; continuation sheets add " (2)", " (3)"…
	part     int    // 1 for the first sheet, 2 for "base (2)"…
	extra    int    // sheets after the first
	warning  int    // index of this table's warning in XLSX.continued, once extra > 0
	name     string // the current sheet's name
	sw       *excelize.StreamWriter
	cols     []Column // nil until WriteHeader
	sampling bool
	sample   [][][]byte // rows held back until the column widths are known
	widths   []float64
	rows     int   // data rows in the current sheet
	bytes    int64 // estimated XML size of the current sheet
	cells    []excelize.Cell
	vals     []any // points into cells, or nil for NULL; reused for every row
	ref      []byte
}

// NewXLSX returns a workbook writer onto w. Nothing is written to w before Close.
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
	x := &XLSX{
		out:           w,
		opts:          opts,
		f:             excelize.NewFile(),
		maxSheetBytes: xlsxMaxSheetBytes,
		names:         map[string]bool{},
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
	sw, err := x.newSheet(name)
	if err != nil {
		return x.fail(err)
	}
	x.t = &xlsxTable{base: name, part: 1, name: name, sw: sw}
	return nil
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
	t.cells = make([]excelize.Cell, len(cols))
	t.vals = make([]any, len(cols))
	for i, col := range cols {
		switch col.Kind {
		case KindDecimal:
			t.cells[i].StyleID = x.styleDecimal
		case KindTimestamp:
			t.cells[i].StyleID = x.styleTime
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

// Close ends the last table and writes the workbook to the writer, then removes the
// temporary files. It does not close the underlying writer; a second call returns the
// first one's result.
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
		err = fmt.Errorf("xlsx: removing temporary files: %w", cerr)
	}
	x.closeErr = err
	return err
}

// errAborted is what a writer abandoned by Abort answers.
var errAborted = errors.New("xlsx: export abandoned")

// Abort removes the temporary files without writing the workbook. It does nothing after Close.
func (x *XLSX) Abort() error {
	if x.closed {
		return nil
	}
	x.closed = true
	_ = x.fail(errAborted)
	x.closeErr = x.err
	if err := x.f.Close(); err != nil {
		return fmt.Errorf("xlsx: removing temporary files: %w", err)
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
	// File.WriteTo and Write build the whole zip in a bytes.Buffer (WriteToBuffer), which on
	// a million rows is hundreds of MiB. The zip writer excelize asks for is ours: it streams
	// onto x.out, and the buffer excelize hands it stays empty.
	zw := zip.NewWriter(x.out)
	zw.RegisterCompressor(zip.Deflate, newDeflate)
	x.f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zw })
	buf, err := x.f.WriteToBuffer()
	if err != nil {
		return fmt.Errorf("xlsx: writing the workbook: %w", err)
	}
	if buf.Len() != 0 {
		return errors.New("xlsx: excelize wrote around its zip writer")
	}
	return nil
}

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

// newSheet creates the sheet name and its stream writer. The first one renames excelize's
// initial "Sheet1", which would otherwise stay as an empty extra sheet (deleting it later
// would shift the sheet indexes autofilters refer to).
func (x *XLSX) newSheet(name string) (*excelize.StreamWriter, error) {
	if !x.defaultUsed {
		x.defaultUsed = true
		if err := x.f.SetSheetName("Sheet1", name); err != nil {
			return nil, fmt.Errorf("xlsx: naming sheet %q: %w", name, err)
		}
	} else if _, err := x.f.NewSheet(name); err != nil {
		return nil, fmt.Errorf("xlsx: adding sheet %q: %w", name, err)
	}
	x.names[strings.ToLower(name)] = true
	// The stream writes the sheet's <dimension> (its used range) before the rows, so it would
	// claim "A1", and readers that trust it (openpyxl's read-only mode) would see one cell.
	// Without the element they scan the rows.
	if err := x.f.SetSheetDimension(name, ""); err != nil {
		return nil, fmt.Errorf("xlsx: sheet %q: %w", name, err)
	}
	sw, err := x.f.NewStreamWriter(name)
	if err != nil {
		return nil, fmt.Errorf("xlsx: streaming sheet %q: %w", name, err)
	}
	return sw, nil
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

// startRows lays out the current sheet (widths, frozen header) and writes its header row.
func (x *XLSX) startRows() error {
	t := x.t
	for i, w := range t.widths {
		if err := t.sw.SetColWidth(i+1, i+1, w); err != nil {
			return fmt.Errorf("xlsx: sizing column %d of %q: %w", i+1, t.name, err)
		}
	}
	if err := t.sw.SetPanes(&excelize.Panes{
		Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft",
		Selection: []excelize.Selection{{SQRef: "A2", ActiveCell: "A2", Pane: "bottomLeft"}},
	}); err != nil {
		return fmt.Errorf("xlsx: freezing the header of %q: %w", t.name, err)
	}
	header := make([]any, len(t.cols))
	t.bytes = 1024 // the sheet's XML before and after the rows
	for i, col := range t.cols {
		s, n := x.text([]byte(col.Name))
		header[i] = excelize.Cell{StyleID: x.styleHeader, Value: s}
		t.bytes += int64(n) + 80
	}
	if err := t.sw.SetRow("A1", header); err != nil {
		return fmt.Errorf("xlsx: header of %q: %w", t.name, err)
	}
	t.rows = 0
	return nil
}

// writeData writes one data row, first continuing on a new sheet when this one is full.
func (x *XLSX) writeData(cells [][]byte) error {
	t := x.t
	est := int64(32) // <row r="…">…</row>
	for i, cell := range cells {
		if cell == nil {
			t.vals[i] = nil
			continue
		}
		c := &t.cells[i]
		var n int
		c.Value, n = x.value(t.cols[i].Kind, cell)
		t.vals[i] = c
		est += int64(n) + 80 // <c r="…" s="…" t="inlineStr"><is><t xml:space="preserve">…
	}
	if t.rows >= x.opts.MaxRowsPerSheet || (t.rows > 0 && t.bytes+est > x.maxSheetBytes) {
		if err := x.nextSheet(); err != nil {
			return err
		}
	}
	t.ref = strconv.AppendInt(append(t.ref[:0], 'A'), int64(t.rows+2), 10)
	if err := t.sw.SetRow(string(t.ref), t.vals); err != nil {
		return fmt.Errorf("xlsx: row %d of %q: %w", t.rows+2, t.name, err)
	}
	t.rows++
	t.bytes += est
	return nil
}

// nextSheet ends the current sheet and continues the table on "base (n)", with the same
// header, widths and styles.
func (x *XLSX) nextSheet() error {
	t := x.t
	if err := x.endSheet(); err != nil {
		return err
	}
	for {
		t.part++
		suffix := " (" + strconv.Itoa(t.part) + ")"
		t.name = cutUTF16(t.base, xlsxSheetName-len(suffix)) + suffix
		if !x.names[strings.ToLower(t.name)] {
			break
		}
	}
	sw, err := x.newSheet(t.name)
	if err != nil {
		return err
	}
	t.sw = sw
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

// endSheet sets the autofilter over the header and the rows (known only now) and flushes
// the stream. AutoFilter is a File method, but it edits the same worksheet value the stream
// writer serialises in Flush, so it has to come before Flush.
func (x *XLSX) endSheet() error {
	t := x.t
	if t == nil {
		return nil
	}
	if len(t.cols) > 0 && !t.sampling {
		last, err := excelize.CoordinatesToCellName(len(t.cols), t.rows+1)
		if err == nil {
			err = x.f.AutoFilter(t.name, "A1:"+last, nil)
		}
		if err != nil {
			return fmt.Errorf("xlsx: autofilter of %q: %w", t.name, err)
		}
	}
	if err := t.sw.Flush(); err != nil {
		return fmt.Errorf("xlsx: flushing sheet %q: %w", t.name, err)
	}
	return nil
}

// value types one cell and estimates its XML size. A cell that does not parse as its kind
// is kept as text rather than lost.
func (x *XLSX) value(kind Kind, cell []byte) (any, int) {
	switch kind {
	case KindInteger:
		if v, ok := parseInt15(cell); ok {
			return v, len(cell)
		}
	case KindDecimal:
		if len(cell) > 0 && (cell[0] == '-' || '0' <= cell[0] && cell[0] <= '9') {
			if v, err := strconv.ParseFloat(string(cell), 64); err == nil {
				return v, len(cell) + 16
			}
		}
	case KindBoolean:
		switch string(cell) {
		case "true", "t":
			return true, 1
		case "false", "f":
			return false, 1
		}
	case KindTimestamp:
		if v, ok := parseTimestamp(cell); ok {
			return v, 24
		}
	}
	return x.text(cell)
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

// text makes b fit for a cell and estimates its escaped XML size: characters XML 1.0 forbids
// (control characters but tab, CR, LF; U+FFFE, U+FFFF) would make the file unreadable, so
// they are dropped, and invalid UTF-8 becomes U+FFFD; text past MaxCellChars is cut. The
// common case, nothing to change, is one scan and one copy.
func (x *XLSX) text(b []byte) (string, int) {
	units, extra := 0, 0
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '&' || c == '<' || c == '>' || c == '"' || c == '\'' || c == '\t' || c == '\r':
				extra += 5 // &amp; &#34; &#x9;…
			case c < 0x20 && c != '\n':
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
	return string(b), len(b) + extra
}

// textSlow is text for cells that need changing.
func (x *XLSX) textSlow(b []byte) (string, int) {
	var sb strings.Builder
	sb.Grow(min(len(b), x.opts.MaxCellChars*3))
	units, extra := 0, 0
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
		case r == '&' || r == '<' || r == '>' || r == '"' || r == '\'' || r == '\t' || r == '\r':
			extra += 5
		}
		if units+utf16Len(r) > x.opts.MaxCellChars {
			cut = true
			break
		}
		units += utf16Len(r)
		sb.WriteRune(r)
	}
	if cleaned {
		x.cleaned++
	}
	if cut {
		x.cut++
	}
	return sb.String(), sb.Len() + extra
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
