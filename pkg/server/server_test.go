package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestReadyzTellsNoInternalError: a failed check is named, its error (hosts, users, versions)
// goes to the log only.
func TestReadyzTellsNoInternalError(t *testing.T) {
	var logs bytes.Buffer
	mux := http.NewServeMux()
	secret := `failed to connect to user=exports database=exports: 10.0.3.7:5432: password authentication failed`
	Ops(mux, prometheus.NewRegistry(), map[string]Check{
		"postgres": func(context.Context) error { return errors.New(secret) },
		"kafka":    func(context.Context) error { return nil },
	}, slog.New(slog.NewJSONHandler(&logs, nil)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"postgres":"unavailable"`) ||
		strings.Contains(string(body), "10.0.3.7") || strings.Contains(string(body), "kafka") {
		t.Errorf("/readyz = %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "10.0.3.7") {
		t.Errorf("the check's error is not logged: %s", logs.String())
	}
}

// TestClientIP: the peer is the client unless it is a trusted proxy; then the rightmost
// address of X-Forwarded-For that is not a trusted proxy is.
func TestClientIP(t *testing.T) {
	t.Parallel()
	ps, err := ParseProxies("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ peer, xff, want string }{
		{"192.0.2.7:5000", "", "192.0.2.7"},
		{"192.0.2.7:5000", "203.0.113.9", "192.0.2.7"},                     // not a proxy: its header is not believed
		{"127.0.0.1:5000", "203.0.113.9", "203.0.113.9"},                   // the local proxy
		{"10.1.2.3:5000", "1.1.1.1, 203.0.113.9, 10.9.9.9", "203.0.113.9"}, // a spoofed left part is ignored
		{"10.1.2.3:5000", "10.2.2.2, 10.3.3.3", "10.2.2.2"},                // proxies all the way
		{"10.1.2.3:5000", "bogus, 203.0.113.9", "203.0.113.9"},
		{"10.1.2.3:5000", "203.0.113.9, bogus", "10.1.2.3"},
		{"[::ffff:127.0.0.1]:5000", "2001:db8::1", "2001:db8::1"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := ps.ClientIP(r); got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	if _, err := ParseProxies("10.0.0.0/33"); err == nil {
		t.Error("a bad prefix was accepted")
	}
	if ps, _ := ParseProxies(""); ps.ClientIP(&http.Request{RemoteAddr: "192.0.2.1:1", Header: http.Header{"X-Forwarded-For": {"1.2.3.4"}}}) != "192.0.2.1" {
		t.Error("no trusted proxy, yet X-Forwarded-For believed")
	}
}
