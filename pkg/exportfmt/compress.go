package exportfmt

import (
	"archive/zip"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"time"
)

// Compressions a stored or delivered file may take (the `compression` of an export's
// configuration). An XLSX workbook is a zip already; it may still be gzipped.
const (
	CompressNone = ""
	CompressGzip = "gzip"
	CompressZip  = "zip"
)

// Compress wraps w so that what is written to the result is stored compressed: a gzip member
// (RFC 1952) or a zip archive holding one file named inner. Both use the parallel deflate of
// the XLSX writer; neither holds more than its blocks in flight. Close finishes the compressed
// stream (it does not close w); Flush pushes out what was written so far, for a stream.
func Compress(w io.Writer, kind, inner string, modified time.Time) (io.WriteCloser, error) {
	switch kind {
	case CompressGzip:
		return newGzip(w)
	case CompressZip:
		zw := zip.NewWriter(w)
		zw.RegisterCompressor(zip.Deflate, newDeflate)
		f, err := zw.CreateHeader(&zip.FileHeader{Name: inner, Method: zip.Deflate, Modified: modified.UTC()})
		if err != nil {
			return nil, fmt.Errorf("starting zip entry %s: %w", inner, err)
		}
		return &zipFile{Writer: f, zw: zw}, nil
	}
	return nil, fmt.Errorf("unknown compression %q", kind)
}

type zipFile struct {
	io.Writer
	zw *zip.Writer
}

func (z *zipFile) Flush() error { return z.zw.Flush() }
func (z *zipFile) Close() error { return z.zw.Close() }

// gzipWriter is a gzip member around a deflate stream: the fixed 10-byte header, the
// compressed data, then the CRC-32 and the length (mod 2^32) of the input.
type gzipWriter struct {
	w   io.Writer
	d   io.WriteCloser
	crc hash.Hash32
	n   uint32
}

// gzipHeader: magic, deflate, no flags, no mtime (so equal inputs give equal bytes), no extra
// flags, OS unknown.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

func newGzip(w io.Writer) (*gzipWriter, error) {
	if _, err := w.Write(gzipHeader); err != nil {
		return nil, err
	}
	d, err := newDeflate(w)
	if err != nil {
		return nil, err
	}
	return &gzipWriter{w: w, d: d, crc: crc32.NewIEEE()}, nil
}

func (g *gzipWriter) Write(p []byte) (int, error) {
	n, err := g.d.Write(p)
	g.crc.Write(p[:n])
	g.n += uint32(n)
	return n, err
}

// Flush flushes the deflate stream when it can (the single-core compressor); the parallel
// one sends each block as soon as it is compressed.
func (g *gzipWriter) Flush() error {
	if f, ok := g.d.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

func (g *gzipWriter) Close() error {
	if err := g.d.Close(); err != nil {
		return err
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], g.crc.Sum32())
	binary.LittleEndian.PutUint32(trailer[4:], g.n)
	_, err := g.w.Write(trailer[:])
	return err
}
