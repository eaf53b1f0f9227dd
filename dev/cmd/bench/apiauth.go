package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// benchAPIAuth measures what authentication and per-user rate limiting add to a request: a
// producer-api replica with the production limits on (counting in PostgreSQL, limits too high
// to refuse) answers GET /fields/products (token verified, request counted, a handler that
// reads nothing) and GET /healthz (neither), one request at a time; the figure is the
// difference of their p99s. Reported: api_auth_p50_ms, api_auth_p99_ms, api_auth_added_p99_ms.
func (b *bench) benchAPIAuth(ctx context.Context) {
	const name = "api_auth"
	addr := "127.0.0.1:18190"
	cmd := exec.CommandContext(ctx, filepath.Join(b.cfg.stackDir, "bin", "producer-api"))
	cmd.Env = append(os.Environ(), "API_ADDR="+addr, "LOG_LEVEL=warn",
		"API_RATE_READS=100000000", "API_RATE_EXPORTS=50", "API_MAX_ACTIVE_JOBS_PER_USER=10")
	if err := cmd.Start(); err != nil {
		b.fail(name, "starting a producer-api replica: "+err.Error())
		return
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	base := "http://" + addr
	if !waitReady(addr, 30*time.Second) {
		b.fail(name, "the producer-api replica did not become ready")
		return
	}
	measure := func(path string, auth bool, n int) ([]time.Duration, error) {
		out := make([]time.Duration, 0, n)
		for range n {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
			if err != nil {
				return nil, err
			}
			if auth {
				req.Header.Set("Authorization", "Bearer "+b.token)
			}
			t0 := time.Now()
			resp, err := b.http.Do(req)
			if err != nil {
				return nil, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("GET %s: %d", path, resp.StatusCode)
			}
			out = append(out, time.Since(t0))
		}
		slices.Sort(out)
		return out, nil
	}
	// Warm the connections and the database's plan, then measure both, interleaved in rounds
	// so that the host's noise falls on both alike.
	if _, err := measure("/api/v1/exports/fields/products", true, 200); err != nil {
		b.fail(name, err.Error())
		return
	}
	var with, without []time.Duration
	for range 10 {
		w, err := measure("/api/v1/exports/fields/products", true, 500)
		if err != nil {
			b.fail(name, err.Error())
			return
		}
		wo, err := measure("/healthz", false, 500)
		if err != nil {
			b.fail(name, err.Error())
			return
		}
		with, without = append(with, w...), append(without, wo...)
	}
	slices.Sort(with)
	slices.Sort(without)
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[int(p*float64(len(d)-1))]) / float64(time.Millisecond)
	}
	b.emit("api_auth_p50_ms", pct(with, 0.50), "ms", 3)
	b.emit("api_auth_p99_ms", pct(with, 0.99), "ms", 3)
	b.emit("api_noauth_p99_ms", pct(without, 0.99), "ms", 3)
	b.emit("api_auth_added_p99_ms", pct(with, 0.99)-pct(without, 0.99), "ms", 3)
}
