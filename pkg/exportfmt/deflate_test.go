package exportfmt_test

import (
	"bytes"
	"compress/flate"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/productsmanager/exportplatform/pkg/exportfmt"
)

// TestDeflate checks the block-parallel compressor's output is one deflate stream giving the
// input back, whatever the input size and the sizes of the writes.
func TestDeflate(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	mixed := make([]byte, 2<<20+12345) // three blocks, the last one partial
	for i := range mixed {
		if i%4096 < 2048 {
			mixed[i] = byte(rng.IntN(256))
		} else {
			mixed[i] = "<row r=\"1\"><c>"[i%14]
		}
	}
	tests := []struct {
		name  string
		input []byte
		chunk int
	}{
		{"empty", nil, 1},
		{"small", []byte("<worksheet/>"), 5},
		{"exactly one block", bytes.Repeat([]byte("a"), 1<<20), 32 << 10},
		{"several blocks, odd writes", mixed, 7777},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			w, err := exportfmt.NewDeflate(&out)
			if err != nil {
				t.Fatal(err)
			}
			for p := tt.input; len(p) > 0; {
				n := min(tt.chunk, len(p))
				if _, err := w.Write(p[:n]); err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(flate.NewReader(&out))
			if err != nil {
				t.Fatalf("inflating: %v", err)
			}
			if !bytes.Equal(got, tt.input) {
				t.Fatalf("got %d bytes back, want %d", len(got), len(tt.input))
			}
		})
	}
}

// TestDeflateWriteError checks a failing writer's error comes back and no goroutine is left
// behind (TestMain checks).
func TestDeflateWriteError(t *testing.T) {
	t.Parallel()
	w, err := exportfmt.NewDeflate(errWriter{})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("<c r=\"A1\"><v>1</v></c>"), 1<<16) // 1.4 MiB: two blocks
	_, werr := w.Write(data)
	if cerr := w.Close(); werr == nil && cerr == nil {
		t.Fatal("write error not reported")
	}
}
