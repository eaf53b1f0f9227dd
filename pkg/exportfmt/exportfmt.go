// Package exportfmt writes export files: one Writer per format, each streaming onto any
// io.Writer (WriteHeader once, WriteRow per row, Close to finalise), so the same code serves
// an HTTP stream and a file stored in S3. It knows only the standard library (and excelize for
// XLSX), never a database or a service.
//
// Rows arrive as text cells (nil for NULL) with a Kind per column telling how to type them.
package exportfmt

// Kind is how a column's text is to be read; the names match catalog.Type.
type Kind string

// Column kinds.
const (
	KindText      Kind = "text"
	KindInteger   Kind = "integer"
	KindDecimal   Kind = "decimal"
	KindBoolean   Kind = "boolean"
	KindTimestamp Kind = "timestamp"
	KindJSON      Kind = "json"
)

// Column is one output column.
type Column struct {
	Name string
	Kind Kind
}

// Writer writes one export file.
type Writer interface {
	WriteHeader(cols []Column) error
	WriteRow(cells [][]byte) error
	// Close finishes the file (trailers, buffers); it does not close the underlying writer.
	Close() error
}

// Sheets is implemented by writers whose file holds several tables (XLSX workbooks).
// StartSheet begins a new table named name; the WriteHeader that follows gives its columns.
// A writer that is not Sheets holds exactly one table.
type Sheets interface {
	StartSheet(name string) error
}

// Warner is implemented by writers that may have to alter data to fit their format (XLSX cuts
// text past 32,767 characters); Warnings describes what was altered, for the job's warnings.
type Warner interface {
	Warnings() []string
}

// Flusher is implemented by writers that buffer their output: Flush hands what is buffered to
// the underlying writer, so a stream's header leaves at once and rows that trickle in from a
// selective filter do not wait for a full buffer. It does not end the file.
type Flusher interface {
	Flush() error
}

// Aborter is implemented by writers that would otherwise finish a file on Close (XLSX writes
// its workbook's parts after the sheets): Abort abandons it, for a run that failed. After
// Abort, Close returns the abort's error and writes nothing.
type Aborter interface {
	Abort() error
}
