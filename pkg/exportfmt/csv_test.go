package exportfmt_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/productsmanager/exportplatform/pkg/exportfmt"
)

var cols = []exportfmt.Column{
	{Name: "sku", Kind: exportfmt.KindText},
	{Name: "name", Kind: exportfmt.KindText},
	{Name: "price", Kind: exportfmt.KindDecimal},
	{Name: "stock", Kind: exportfmt.KindInteger},
}

func write(t *testing.T, opts exportfmt.CSVOptions, rows ...[]string) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := exportfmt.NewCSV(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteHeader(cols); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		cells := make([][]byte, len(r))
		for i, s := range r {
			if s != "<NULL>" {
				cells[i] = []byte(s)
			}
		}
		if err := w.WriteRow(cells); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestCSV(t *testing.T) {
	t.Parallel()
	def := exportfmt.DefaultCSVOptions()
	noBOM := def
	noBOM.BOM = false
	tests := []struct {
		name string
		opts exportfmt.CSVOptions
		row  []string
		want string
	}{
		{"bom and header", def, nil, "\uFEFFsku,name,price,stock\n"},
		{"plain", noBOM, []string{"A1", "Cable", "12.50", "3"}, "A1,Cable,12.50,3\n"},
		{"quotes doubled", noBOM, []string{"A1", `Câble "Ultra" 2m`, "1.00", "0"}, `A1,"Câble ""Ultra"" 2m",1.00,0` + "\n"},
		{"delimiter quoted", noBOM, []string{"A1", "a, b", "1.00", "0"}, `A1,"a, b",1.00,0` + "\n"},
		{"line breaks kept inside quotes", noBOM, []string{"A1", "l1\nl2\r\nl3", "1.00", "0"}, "A1,\"l1\nl2\r\nl3\",1.00,0\n"},
		{"emoji and accents untouched", noBOM, []string{"A1", "Casque 🎧 éçü", "1.00", "0"}, "A1,Casque 🎧 éçü,1.00,0\n"},
		{"null is empty", noBOM, []string{"A1", "<NULL>", "<NULL>", "<NULL>"}, "A1,,,\n"},
		{"formula escaped", noBOM, []string{"=HYPERLINK(\"x\")", "+33 1", "1.00", "-5"}, `"'=HYPERLINK(""x"")",'+33 1,1.00,-5` + "\n"},
		{"at and tab escaped", noBOM, []string{"@home", "\tx", "1.00", "0"}, "'@home,'\tx,1.00,0\n"},
		{"formula escape off", exportfmt.CSVOptions{Delimiter: ',', Decimal: '.', FormulaEscape: false}, []string{"=1+1", "-x", "1.00", "0"}, "=1+1,-x,1.00,0\n"},
		{"semicolon and decimal comma", exportfmt.CSVOptions{Delimiter: ';', Decimal: ','}, []string{"A;1", "a,b", "12.50", "3"}, "\"A;1\";a,b;12,50;3\n"},
		{"crlf", exportfmt.CSVOptions{Delimiter: '|', Decimal: '.', CRLF: true}, []string{"A1", "x", "1.00", "0"}, "A1|x|1.00|0\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got string
			if tt.row == nil {
				got = write(t, tt.opts)
			} else {
				got = write(t, tt.opts, tt.row)
				_, got, _ = strings.Cut(got, "\n") // drop the header line
				if tt.opts.CRLF {
					_, got, _ = strings.Cut(write(t, tt.opts, tt.row), "\r\n")
				}
			}
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestCSVReadBack checks an independent reader (encoding/csv) gets the cells back.
func TestCSVReadBack(t *testing.T) {
	t.Parallel()
	opts := exportfmt.DefaultCSVOptions()
	opts.FormulaEscape = false
	rows := [][]string{
		{"S-1", "Multi\nline \"quoted\", text;", "0.50", "1"},
		{"S-2", "emoji ✅🎧 and accents àéîõü", "4999.99", "10000"},
		{"S-3", "", "1.00", "0"},
	}
	out := write(t, opts, rows...)
	if !strings.HasPrefix(out, "\uFEFF") {
		t.Fatal("no BOM")
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(rows)+1 {
		t.Fatalf("read %d records, want %d", len(recs), len(rows)+1)
	}
	for i, r := range rows {
		for j := range r {
			if recs[i+1][j] != r[j] {
				t.Errorf("row %d col %d = %q, want %q", i, j, recs[i+1][j], r[j])
			}
		}
	}
}

func TestCSVOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, o := range []exportfmt.CSVOptions{
		{Delimiter: 'x', Decimal: '.'},
		{Delimiter: ',', Decimal: ';'},
		{Delimiter: ',', Decimal: ','},
	} {
		if _, err := exportfmt.NewCSV(&bytes.Buffer{}, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}
