//go:build !race

// The race detector would make this test's 1.1 million rows take minutes; `make test` runs it
// in a stage of its own, without -race.

package exportfmt_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/exportfmt"
)

// TestXLSXInLibreOffice writes a workbook of 1,100,000 rows, past Excel's 1,048,576 a sheet,
// and has LibreOffice (headless, a reader independent of excelize and openpyxl) open it and
// save each sheet as CSV: the table continues on a second sheet, and every row is there, in
// order, once.
func TestXLSXInLibreOffice(t *testing.T) {
	soffice, err := exec.LookPath("soffice")
	if err != nil {
		msg := "soffice not found: apt-get install libreoffice-calc-nogui"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	const rows = 1_100_000
	dir := t.TempDir()
	path := filepath.Join(dir, "products.xlsx")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	x, err := exportfmt.NewXLSX(bw, exportfmt.XLSXOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.StartSheet("products"); err != nil {
		t.Fatal(err)
	}
	// The default columns of a products export, every kind; the id numbers the rows.
	if err := x.WriteHeader(benchCols); err != nil {
		t.Fatal(err)
	}
	sample := benchRows(1024)
	cells := make([][]byte, len(benchCols))
	var id []byte
	for i := 1; i <= rows; i++ {
		copy(cells, sample[i%len(sample)])
		id = strconv.AppendInt(id[:0], int64(i), 10)
		cells[0] = id
		if err := x.WriteRow(cells); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("warnings: %q", x.Warnings())

	// Filter options: comma, double quote, UTF-8, first line 1, no column formats, then the
	// 12th token -1: every sheet to its own file, products-<sheet name>.csv (LibreOffice ≥ 7.2).
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), soffice, "--headless", "--norestore", "-env:UserInstallation=file://"+filepath.Join(dir, "profile"),
		"--convert-to", `csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1`, "--outdir", dir, path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("soffice: %v\n%s", err, out)
	}
	t.Logf("LibreOffice read and converted the workbook in %s", time.Since(start).Round(time.Second))

	next := 1 // the id the next data row must hold
	for _, sheet := range []struct {
		name string
		rows int
	}{{"products", 1_048_575}, {"products (2)", rows - 1_048_575}} {
		file := filepath.Join(dir, "products-"+sheet.name+".csv")
		raw, err := os.ReadFile(file)
		if err != nil {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("sheet %q: %v (the directory holds %v; soffice said %s)", sheet.name, err, entries, out)
		}
		lines := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
		if len(lines) != sheet.rows+1 {
			t.Errorf("sheet %q: %d lines, want the header and %d rows", sheet.name, len(lines), sheet.rows)
			continue
		}
		if !bytes.HasPrefix(lines[0], []byte("id,sku,name,description,")) {
			t.Errorf("sheet %q: header %q", sheet.name, lines[0])
		}
		for _, line := range lines[1:] {
			if want := fmt.Sprintf("%d,SKU-", next); !bytes.HasPrefix(line, []byte(want)) {
				t.Fatalf("sheet %q: row %q, want it to begin %q", sheet.name, line, want)
			}
			next++
		}
	}
	if next != rows+1 {
		t.Errorf("LibreOffice read %d rows, want %d", next-1, rows)
	}
}
