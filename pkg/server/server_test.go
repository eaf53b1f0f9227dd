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
