// Package objectstoretest is the conformance suite every objectstore.Store must pass.
package objectstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/productsmanager/exportplatform/pkg/objectstore"
)

// Run checks s against the Store contract. prefix isolates this run's keys.
func Run(t *testing.T, s objectstore.Store, prefix string) {
	ctx := context.Background()
	t.Run("put get stat list delete", func(t *testing.T) {
		data := make([]byte, 3<<20+17) // several parts when PartSize is small
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		key := prefix + "dir/a.csv"
		info, err := s.Put(ctx, key, bytes.NewReader(data), "text/csv")
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		if info.Size != int64(len(data)) {
			t.Errorf("Put size = %d, want %d", info.Size, len(data))
		}
		rc, ginfo, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Error("Get returned other bytes than Put stored")
		}
		if ginfo.ContentType != "text/csv" || ginfo.Size != int64(len(data)) {
			t.Errorf("Get info = %+v", ginfo)
		}
		keys, err := s.List(ctx, prefix+"dir/")
		if err != nil || !slices.Equal(keys, []string{key}) {
			t.Errorf("List = %v, %v; want [%s]", keys, err, key)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, objectstore.ErrNotFound) {
			t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("deleting a missing key: %v", err)
		}
	})
	t.Run("missing key", func(t *testing.T) {
		if _, _, err := s.Get(ctx, prefix+"nope"); !errors.Is(err, objectstore.ErrNotFound) {
			t.Errorf("Get missing: %v, want ErrNotFound", err)
		}
	})
	t.Run("failed put leaves nothing", func(t *testing.T) {
		key := prefix + "broken.csv"
		r := io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), errReader{})
		if _, err := s.Put(ctx, key, r, "text/csv"); err == nil {
			t.Fatal("Put of a failing reader succeeded")
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, objectstore.ErrNotFound) {
			t.Errorf("after a failed Put, Stat = %v, want ErrNotFound", err)
		}
	})
	t.Run("cancelled put leaves nothing", func(t *testing.T) {
		key := prefix + "cancelled.csv"
		cctx, cancel := context.WithCancel(ctx)
		pr, pw := io.Pipe()
		go func() {
			// Past a 5 MiB part: the upload is under way, with a part stored, when the
			// context goes (TestMinio then looks for incomplete uploads left behind).
			pw.Write(make([]byte, 6<<20))
			cancel()
			pw.Write(make([]byte, 1<<20))
			pw.Close()
		}()
		if _, err := s.Put(cctx, key, pr, "text/csv"); err == nil {
			t.Fatal("a cancelled Put succeeded")
		}
		pr.Close()
		if _, err := s.Stat(ctx, key); !errors.Is(err, objectstore.ErrNotFound) {
			t.Errorf("after a cancelled Put, Stat = %v, want ErrNotFound", err)
		}
	})
	if c, ok := s.(objectstore.Composer); ok {
		t.Run("compose", func(t *testing.T) {
			a, b := make([]byte, objectstore.MinComposePart+11), []byte("tail")
			_, _ = rand.Read(a)
			for k, data := range map[string][]byte{"a": a, "b": b} {
				if _, err := s.Put(ctx, prefix+"compose/"+k, bytes.NewReader(data), "text/csv"); err != nil {
					t.Fatal(err)
				}
			}
			info, err := c.Compose(ctx, prefix+"compose/out", []string{prefix + "compose/a", prefix + "compose/b"}, "text/csv")
			if err != nil {
				t.Fatal(err)
			}
			rc, _, err := s.Get(ctx, prefix+"compose/out")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			_ = rc.Close()
			if want := append(slices.Clone(a), b...); info.Size != int64(len(want)) || !bytes.Equal(got, want) {
				t.Errorf("composed %d bytes (info %d), want %d", len(got), info.Size, len(want))
			}
			if _, err := c.Compose(ctx, prefix+"compose/bad", []string{prefix + "compose/b", prefix + "compose/a"}, "text/csv"); err == nil {
				t.Error("a source under 5 MiB before the last was composed")
			}
			if _, err := c.Compose(ctx, prefix+"compose/none", []string{prefix + "compose/missing"}, "text/csv"); err == nil {
				t.Error("a missing source was composed")
			}
			for _, k := range []string{"a", "b", "out"} {
				_ = s.Delete(ctx, prefix+"compose/"+k)
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("source failed") }
