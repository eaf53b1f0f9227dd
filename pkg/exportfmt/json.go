package exportfmt

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// JSONOptions shape a JSON export. The zero value is the default: one JSON array.
type JSONOptions struct {
	// Lines writes JSON Lines: one compact object per line, each followed by "\n", no array, so a
	// reader can process the file record by record.
	Lines bool
	// Pretty indents the array with two spaces, for people. JSON Lines ignores it: a record
	// must stay on one line.
	Pretty bool
}

// JSON writes one object per row, keys being the column names in column order.
//
// The byte layout (pinned by the golden files in testdata/):
//
//	array:  "[\n" + the objects joined by ",\n" + "\n]\n", or "[]\n" without rows; an object
//	        is compact, one per line: {"sku":"A1","price":12.50,"tags":null}
//	pretty: json.MarshalIndent(rows, "", "  ") + "\n": "[\n  {\n    \"sku\": \"A1\",\n …\n  }\n]\n",
//	        json cells reindented at their depth; "[]\n" without rows
//	lines:  each compact object followed by "\n"; nothing at all without rows
//
// Integers and decimals are JSON numbers copied from the cell text, so 12.50 keeps its two
// decimals (a text that is not a JSON number becomes a string, so the output stays valid);
// booleans are true/false; timestamps and text are strings; json cells are embedded as they
// are (trusted, see writeRaw); NULL is null. Strings escape ", \, control characters and
// U+2028/U+2029 (which break JavaScript parsers), never <, > or & (the file is not HTML);
// invalid UTF-8 becomes \ufffd.
type JSON struct {
	w       *bufio.Writer
	opts    JSONOptions
	cols    []Column
	keys    [][]byte // per column: the separator, the quoted key and the colon, ready to write
	rows    int64
	closed  bool
	scratch bytes.Buffer // reindents or compacts json cells
}

var _ Writer = (*JSON)(nil)

// NewJSON returns a JSON writer onto w.
func NewJSON(w io.Writer, opts JSONOptions) *JSON {
	if opts.Lines {
		opts.Pretty = false
	}
	return &JSON{w: bufio.NewWriterSize(w, 64<<10), opts: opts}
}

// WriteHeader records the columns and opens the array (JSON Lines have nothing to open), so a
// stream's first byte leaves before its first row is found. A file that fails later is never
// stored, and a stream that fails later is cut off, so a half-open array is never taken for a
// whole one.
func (j *JSON) WriteHeader(cols []Column) error {
	if j.closed {
		return errors.New("json: header after close")
	}
	j.cols = cols
	j.keys = make([][]byte, len(cols))
	var buf bytes.Buffer
	for i, col := range cols {
		buf.Reset()
		switch {
		case j.opts.Pretty && i == 0:
			buf.WriteString("{\n    ")
		case j.opts.Pretty:
			buf.WriteString(",\n    ")
		case i == 0:
			buf.WriteByte('{')
		default:
			buf.WriteByte(',')
		}
		appendJSONString(&buf, []byte(col.Name))
		buf.WriteByte(':')
		if j.opts.Pretty {
			buf.WriteByte(' ')
		}
		j.keys[i] = bytes.Clone(buf.Bytes())
	}
	if !j.opts.Lines {
		j.w.WriteByte('[')
	}
	return nil
}

// WriteRow writes one object.
func (j *JSON) WriteRow(cells [][]byte) error {
	if j.closed {
		return errors.New("json: row after close")
	}
	if len(cells) != len(j.cols) {
		return fmt.Errorf("json: row has %d cells, header %d", len(cells), len(j.cols))
	}
	w := j.w
	switch {
	case j.opts.Lines:
	case j.rows == 0 && j.opts.Pretty:
		w.WriteString("\n  ")
	case j.rows == 0:
		w.WriteString("\n")
	case j.opts.Pretty:
		w.WriteString(",\n  ")
	default:
		w.WriteString(",\n")
	}
	j.rows++
	if len(cells) == 0 {
		w.WriteByte('{') // the first key carries it otherwise
	}
	for i, cell := range cells {
		w.Write(j.keys[i])
		if cell == nil {
			w.WriteString("null")
			continue
		}
		switch j.cols[i].Kind {
		case KindInteger, KindDecimal:
			if isJSONNumber(cell) {
				w.Write(cell)
			} else {
				appendJSONString(w, cell)
			}
		case KindBoolean:
			switch string(cell) {
			case "true", "t":
				w.WriteString("true")
			case "false", "f":
				w.WriteString("false")
			default:
				appendJSONString(w, cell)
			}
		case KindJSON:
			j.writeRaw(cell)
		default: // text, timestamps and kinds this writer does not know: strings
			appendJSONString(w, cell)
		}
	}
	end := "}"
	switch {
	case j.opts.Lines:
		end = "}\n"
	case j.opts.Pretty && len(cells) > 0:
		end = "\n  }"
	}
	// bufio.Writer errors are sticky: whichever write failed, this one reports it.
	_, err := w.WriteString(end)
	return err
}

// writeRaw embeds a json cell. It is trusted to be valid JSON (it comes from PostgreSQL's
// jsonb::text or json_build_object) and not validated: json.Valid would cost more than the
// rest of the row. The compact layouts copy it as it is, unless it holds a line break (a json
// column keeps its input's whitespace), which would split a JSON Lines record: then it is
// compacted. Pretty reindents it at its depth. A cell the json package fails to compact or
// indent (an empty one, say) is not JSON after all: it is written as a string instead.
func (j *JSON) writeRaw(cell []byte) {
	if !j.opts.Pretty && bytes.IndexByte(cell, '\n') < 0 && bytes.IndexByte(cell, '\r') < 0 && len(cell) > 0 {
		j.w.Write(cell)
		return
	}
	j.scratch.Reset()
	var err error
	if j.opts.Pretty {
		err = json.Indent(&j.scratch, cell, "    ", "  ")
	} else {
		err = json.Compact(&j.scratch, cell)
	}
	if err != nil {
		appendJSONString(j.w, cell)
		return
	}
	j.w.Write(bytes.TrimRight(j.scratch.Bytes(), " \t\r\n"))
}

// Flush hands the buffered output to the underlying writer (never a partial row).
func (j *JSON) Flush() error {
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("json: flushing: %w", err)
	}
	return nil
}

// Close writes the end of the array (an empty export is "[]") and flushes. It does not close
// the underlying writer; calling it again does nothing.
func (j *JSON) Close() error {
	if j.closed {
		return nil
	}
	j.closed = true
	if !j.opts.Lines {
		if j.rows == 0 {
			j.w.WriteString("]\n")
		} else {
			j.w.WriteString("\n]\n")
		}
	}
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("json: flushing: %w", err)
	}
	return nil
}

// isJSONNumber reports whether b is a number by JSON's grammar: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?.
// Leading zeros, "1." or "NaN" would make the file unreadable, so they are caught here.
func isJSONNumber(b []byte) bool {
	i, n := 0, len(b)
	if i < n && b[i] == '-' {
		i++
	}
	switch {
	case i >= n:
		return false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		for i < n && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < n && b[i] == '.' {
		i++
		start := i
		for i < n && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < n && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < n && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < n && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == n
}

// jsonWriter is what appendJSONString writes to: a *bufio.Writer for rows, a *bytes.Buffer
// for the keys.
type jsonWriter interface {
	io.Writer
	io.ByteWriter
	io.StringWriter
}

// jsonSafe marks the ASCII bytes a JSON string holds as they are.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a quoted JSON string. It is hand-written rather than
// json.Marshal per cell because it runs for most cells of every row: it copies runs of safe
// bytes in one Write and allocates nothing.
func appendJSONString(w jsonWriter, s []byte) {
	w.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
			w.Write(s[start:i])
			switch b {
			case '"', '\\':
				w.WriteByte('\\')
				w.WriteByte(b)
			case '\n':
				w.WriteString(`\n`)
			case '\r':
				w.WriteString(`\r`)
			case '\t':
				w.WriteString(`\t`)
			default:
				w.WriteString(`\u00`)
				w.WriteByte(hexDigits[b>>4])
				w.WriteByte(hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			w.Write(s[start:i])
			w.WriteString(`\ufffd`)
		case r == '\u2028' || r == '\u2029':
			w.Write(s[start:i])
			w.WriteString(`\u202`)
			w.WriteByte(hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	w.Write(s[start:])
	w.WriteByte('"')
}

// AppendJSONString appends s as a quoted JSON string, escaped as the JSON writer escapes its
// cells, for values built as JSON outside it (the catalog's relations).
func AppendJSONString(dst, s []byte) []byte {
	a := byteAppender{dst}
	appendJSONString(&a, s)
	return a.b
}

// AppendJSONNumber appends s when it is a number by JSON's grammar, else s as a string, as the
// JSON writer writes a numeric cell.
func AppendJSONNumber(dst, s []byte) []byte {
	if isJSONNumber(s) {
		return append(dst, s...)
	}
	return AppendJSONString(dst, s)
}

// byteAppender is a jsonWriter onto a byte slice.
type byteAppender struct{ b []byte }

func (a *byteAppender) Write(p []byte) (int, error) { a.b = append(a.b, p...); return len(p), nil }
func (a *byteAppender) WriteByte(c byte) error      { a.b = append(a.b, c); return nil }
func (a *byteAppender) WriteString(s string) (int, error) {
	a.b = append(a.b, s...)
	return len(s), nil
}
