package exportfmt_test

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/exportfmt"
)

// sample is several deflate blocks of text that compresses, with a tail that does not.
func sample() []byte {
	var b bytes.Buffer
	for i := range 120000 {
		fmt.Fprintf(&b, "SKU-%07d,Cable %d m,%d.%02d,active\n", i, i%50, i%900, i%100)
	}
	for i := range 4096 {
		b.WriteByte(byte(i * 7919 % 251))
	}
	return b.Bytes()
}

// TestCompressGzipAndZip: what Compress writes decompresses, with the standard library's
// readers, to exactly the input, written in uneven pieces.
func TestCompressGzipAndZip(t *testing.T) {
	t.Parallel()
	in := sample()
	for _, kind := range []string{exportfmt.CompressGzip, exportfmt.CompressZip} {
		var out bytes.Buffer
		w, err := exportfmt.Compress(&out, kind, "products.csv", time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		for rest := in; len(rest) > 0; {
			n := min(len(rest), 1+len(rest)%70001)
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		var got []byte
		switch kind {
		case exportfmt.CompressGzip:
			r, err := gzip.NewReader(&out)
			if err != nil {
				t.Fatal(err)
			}
			if got, err = io.ReadAll(r); err != nil {
				t.Fatalf("gzip: %v", err)
			}
		case exportfmt.CompressZip:
			zr, err := zip.NewReader(bytes.NewReader(out.Bytes()), int64(out.Len()))
			if err != nil {
				t.Fatal(err)
			}
			if len(zr.File) != 1 || zr.File[0].Name != "products.csv" {
				t.Fatalf("zip entries %+v", zr.File)
			}
			f, err := zr.File[0].Open()
			if err != nil {
				t.Fatal(err)
			}
			if got, err = io.ReadAll(f); err != nil {
				t.Fatalf("zip: %v", err)
			}
		}
		if !bytes.Equal(got, in) {
			t.Errorf("%s: %d bytes back, want the %d written", kind, len(got), len(in))
		}
		if out.Len() > len(in)/3 {
			t.Errorf("%s: %d bytes for %d: not compressed", kind, out.Len(), len(in))
		}
	}
	if _, err := exportfmt.Compress(io.Discard, "brotli", "x", time.Now()); err == nil {
		t.Error("an unknown compression was accepted")
	}
}
