package exportfmt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// CSVOptions shape a CSV file. The zero value is not the default: use DefaultCSVOptions.
type CSVOptions struct {
	Delimiter byte // ',', ';', '\t' or '|'
	Decimal   byte // '.' or ',': the decimal separator of decimal columns
	CRLF      bool // line endings \r\n instead of \n
	BOM       bool // a UTF-8 byte order mark first, so Excel reads UTF-8
	// FormulaEscape prefixes text cells starting with = + - @ tab or CR with a single quote,
	// so a spreadsheet does not run them as formulas (OWASP CSV injection).
	FormulaEscape bool
}

// DefaultCSVOptions: comma, dot, LF, BOM, formula escape on.
func DefaultCSVOptions() CSVOptions {
	return CSVOptions{Delimiter: ',', Decimal: '.', BOM: true, FormulaEscape: true}
}

// Validate checks the options.
func (o CSVOptions) Validate() error {
	switch o.Delimiter {
	case ',', ';', '\t', '|':
	default:
		return fmt.Errorf("delimiter %q: must be one of , ; tab |", o.Delimiter)
	}
	if o.Decimal != '.' && o.Decimal != ',' {
		return fmt.Errorf("decimal %q: must be . or ,", o.Decimal)
	}
	if o.Decimal == o.Delimiter {
		return errors.New("decimal separator and delimiter must differ")
	}
	return nil
}

// CSV writes RFC 4180 CSV: a cell is quoted when it holds the delimiter, a quote, CR or LF,
// quotes are doubled, NULL is an empty cell.
type CSV struct {
	w    *bufio.Writer
	opts CSVOptions
	cols []Column
	eol  []byte
}

// NewCSV returns a CSV writer onto w.
func NewCSV(w io.Writer, opts CSVOptions) (*CSV, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	eol := []byte("\n")
	if opts.CRLF {
		eol = []byte("\r\n")
	}
	return &CSV{w: bufio.NewWriterSize(w, 64<<10), opts: opts, eol: eol}, nil
}

// WriteHeader writes the BOM (if asked) and the header line.
func (c *CSV) WriteHeader(cols []Column) error {
	c.cols = cols
	if c.opts.BOM {
		c.w.WriteString("\uFEFF")
	}
	for i, col := range cols {
		if i > 0 {
			c.w.WriteByte(c.opts.Delimiter)
		}
		c.writeCell([]byte(col.Name), false)
	}
	_, err := c.w.Write(c.eol)
	return err
}

// WriteRow writes one record.
func (c *CSV) WriteRow(cells [][]byte) error {
	if len(cells) != len(c.cols) {
		return fmt.Errorf("csv: row has %d cells, header %d", len(cells), len(c.cols))
	}
	for i, cell := range cells {
		if i > 0 {
			c.w.WriteByte(c.opts.Delimiter)
		}
		if cell == nil {
			continue
		}
		switch c.cols[i].Kind {
		case KindText, KindJSON:
			c.writeCell(cell, c.opts.FormulaEscape)
		case KindDecimal:
			if c.opts.Decimal != '.' {
				if j := bytes.IndexByte(cell, '.'); j >= 0 {
					c.w.Write(cell[:j])
					c.w.WriteByte(c.opts.Decimal)
					c.w.Write(cell[j+1:])
					continue
				}
			}
			c.w.Write(cell)
		default: // integers, booleans, timestamps: never special characters
			c.w.Write(cell)
		}
	}
	_, err := c.w.Write(c.eol)
	return err
}

// Close flushes buffered output.
func (c *CSV) Close() error { return c.w.Flush() }

// Flush hands the buffered output to the underlying writer.
func (c *CSV) Flush() error { return c.w.Flush() }

func (c *CSV) writeCell(cell []byte, escape bool) {
	prefix := escape && len(cell) > 0 && isFormulaStart(cell[0])
	if !c.needsQuotes(cell) {
		if prefix {
			c.w.WriteByte('\'')
		}
		c.w.Write(cell)
		return
	}
	c.w.WriteByte('"')
	if prefix {
		c.w.WriteByte('\'')
	}
	for {
		i := bytes.IndexByte(cell, '"')
		if i < 0 {
			c.w.Write(cell)
			break
		}
		c.w.Write(cell[:i+1])
		c.w.WriteByte('"')
		cell = cell[i+1:]
	}
	c.w.WriteByte('"')
}

func (c *CSV) needsQuotes(cell []byte) bool {
	for _, b := range cell {
		if b == c.opts.Delimiter || b == '"' || b == '\n' || b == '\r' {
			return true
		}
	}
	return false
}

func isFormulaStart(b byte) bool {
	return b == '=' || b == '+' || b == '-' || b == '@' || b == '\t' || b == '\r'
}
