// Package servertest helps tests that start a whole service through its run function: a log
// sink that forwards each JSON line to t.Log and picks out the address the HTTP server listens
// on (tests ask for port 0), and a bounded GET.
package servertest

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// LogWatch is run's stdout in a test.
type LogWatch struct {
	w      *io.PipeWriter
	addrc  chan string
	closed sync.WaitGroup
}

// NewLogWatch starts forwarding; t.Cleanup stops it.
func NewLogWatch(t *testing.T) *LogWatch {
	pr, pw := io.Pipe()
	lw := &LogWatch{w: pw, addrc: make(chan string, 1)}
	lw.closed.Add(1)
	go func() {
		defer lw.closed.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			t.Log(line)
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "http server listening" {
				select {
				case lw.addrc <- rec.Addr:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		pw.Close()
		lw.closed.Wait()
	})
	return lw
}

func (lw *LogWatch) Write(p []byte) (int, error) { return lw.w.Write(p) }

// Addr waits for the listening address, failing if run returns first.
func (lw *LogWatch) Addr(t *testing.T, done <-chan error) string {
	t.Helper()
	select {
	case a := <-lw.addrc:
		return a
	case err := <-done:
		t.Fatalf("run() returned before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("run() did not start listening within 30s")
	}
	return ""
}

// Get fetches u within 5 s and returns the status and body.
func Get(t *testing.T, u string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
