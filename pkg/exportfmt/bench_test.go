package exportfmt_test

import (
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/exportfmt"
)

// benchCols is a products export with the default fields: 16 columns of every kind.
var benchCols = []exportfmt.Column{
	{Name: "id", Kind: exportfmt.KindInteger},
	{Name: "sku", Kind: exportfmt.KindText},
	{Name: "name", Kind: exportfmt.KindText},
	{Name: "description", Kind: exportfmt.KindText},
	{Name: "brand", Kind: exportfmt.KindText},
	{Name: "ean", Kind: exportfmt.KindText},
	{Name: "price", Kind: exportfmt.KindDecimal},
	{Name: "currency", Kind: exportfmt.KindText},
	{Name: "stock", Kind: exportfmt.KindInteger},
	{Name: "status", Kind: exportfmt.KindText},
	{Name: "category_id", Kind: exportfmt.KindInteger},
	{Name: "weight_grams", Kind: exportfmt.KindInteger},
	{Name: "attributes", Kind: exportfmt.KindJSON},
	{Name: "created_at", Kind: exportfmt.KindTimestamp},
	{Name: "updated_at", Kind: exportfmt.KindTimestamp},
	{Name: "active", Kind: exportfmt.KindBoolean},
}

// benchRows makes n distinct rows shaped like the catalog's (so compression is not flattered).
func benchRows(n int) [][][]byte {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([][][]byte, n)
	for i := range rows {
		s := strconv.Itoa(i)
		rows[i] = [][]byte{
			[]byte(strconv.Itoa(i + 1)),
			[]byte("SKU-" + s),
			[]byte("Câble HDMI 2.1 modèle " + s),
			[]byte(`Câble "Ultra High Speed" 8K@60Hz, gaine nylon tressée & connecteurs plaqués or. Idéal consoles/TV 🎮 réf. ` + s),
			[]byte("Acme"),
			[]byte(strconv.Itoa(3760000000000 + i)),
			[]byte(strconv.FormatFloat(float64(i%100000)/100+0.5, 'f', 2, 64)),
			[]byte("EUR"),
			[]byte(strconv.Itoa(i % 500)),
			[]byte("active"),
			[]byte(strconv.Itoa(i % 200)),
			nil,
			[]byte(`{"color": "red", "size": "M", "n": ` + strconv.Itoa(i%97) + `}`),
			[]byte(base.Add(time.Duration(i) * time.Second).Format(time.RFC3339)),
			[]byte(base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)),
			[]byte(strconv.FormatBool(i%2 == 0)),
		}
		if i%3 != 0 {
			rows[i][11] = []byte(strconv.Itoa(i % 3000))
		}
	}
	return rows
}

func benchWriter(b *testing.B, newWriter func(io.Writer) exportfmt.Writer) {
	rows := benchRows(1024)
	b.ReportAllocs()
	b.ResetTimer()
	w := newWriter(io.Discard)
	if err := w.WriteHeader(benchCols); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if err := w.WriteRow(rows[i%len(rows)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkJSON(b *testing.B) {
	benchWriter(b, func(w io.Writer) exportfmt.Writer { return exportfmt.NewJSON(w, exportfmt.JSONOptions{}) })
}

func BenchmarkJSONLines(b *testing.B) {
	benchWriter(b, func(w io.Writer) exportfmt.Writer {
		return exportfmt.NewJSON(w, exportfmt.JSONOptions{Lines: true})
	})
}

// BenchmarkXLSX includes Close, which zips the sheet: about a third of the time.
func BenchmarkXLSX(b *testing.B) {
	benchWriter(b, func(w io.Writer) exportfmt.Writer {
		x, err := exportfmt.NewXLSX(w, exportfmt.XLSXOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return x
	})
}
