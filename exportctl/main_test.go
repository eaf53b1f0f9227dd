package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// result is what one exportctl invocation left.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs exportctl against api with no terminal and fast intervals.
func runCLI(t *testing.T, ctx context.Context, api string, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		if k == "EXPORT_API_URL" {
			return api
		}
		return env[k]
	}
	a := newApp(getenv, &stdout, &stderr)
	defer a.httpc.CloseIdleConnections()
	a.isTerminal = func(io.Writer) bool { return env["TTY"] != "" }
	a.pollEvery, a.lineEvery = 5*time.Millisecond, time.Hour
	code := a.main(ctx, args)
	t.Logf("exportctl %s → %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return result{code, stdout.String(), stderr.String()}
}

// fakeAPI is an httptest server speaking the parts of CONTRACT §4 and §5 the CLI uses. Each
// test sets the handlers it needs on mux.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server
	mux *http.ServeMux

	mu       sync.Mutex
	requests []string // "METHOD /path"
	bodies   map[string]json.RawMessage
	tokens   []string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, mux: http.NewServeMux(), bodies: map[string]json.RawMessage{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.Path)
		if len(body) > 0 {
			f.bodies[r.Method+" "+r.URL.Path] = body
		}
		f.tokens = append(f.tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) requested(req string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.requests {
		if r == req {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg, field string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg, "field": field}})
}

const jobID = "01a20000-0000-7000-8000-000000000001"

// accept answers an export request with a 202 for jobID.
func accept(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusAccepted, map[string]any{"task_id": jobID, "job_id": jobID, "status": "queued"})
}

// update is a WebSocket push message of jobID.
func update(typ, status, phase string, done, total int64, extra map[string]any) map[string]any {
	m := map[string]any{"type": typ, "task_id": jobID, "job_id": jobID, "status": status, "phase": phase,
		"rows_done": done, "rows_total": total, "progress": float64(done) * 100 / float64(max(total, 1)),
		"updated_at": time.Now().UTC().Format(time.RFC3339Nano)}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// serveWS answers a subscribe to jobID with a snapshot of the first message's state, then the
// messages; hold, when not nil, is waited for before closing (the connection stays open).
func serveWS(t *testing.T, msgs []map[string]any, hold <-chan struct{}) http.HandlerFunc {
	up := websocket.Upgrader{}
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		var sub struct {
			Type    string   `json:"type"`
			TaskIDs []string `json:"task_ids"`
		}
		if err := c.ReadJSON(&sub); err != nil || sub.Type != "subscribe" || len(sub.TaskIDs) != 1 || sub.TaskIDs[0] != jobID {
			t.Errorf("subscribe message = %+v, %v", sub, err)
			return
		}
		snap := map[string]any{}
		for k, v := range msgs[0] {
			snap[k] = v
		}
		snap["id"] = jobID
		_ = c.WriteJSON(map[string]any{"type": "snapshot", "job": snap})
		for _, m := range msgs[1:] {
			_ = c.WriteJSON(m)
		}
		if hold != nil {
			<-hold
		}
		// Wait for the client to go, so the handler ends before the test does.
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}
}

// serveFile answers the download of jobID with data and the X-Content-SHA256 header sum.
func serveFile(data []byte, sum string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		w.Header().Set("Content-Disposition", `attachment; filename="../../products.csv"`)
		w.Header().Set("X-Content-SHA256", sum)
		_, _ = w.Write(data)
	}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

var csvData = []byte("\xEF\xBB\xBFsku,name\r\nA-1,Cable\r\nA-2,Plug\r\n")

func completedMsg() map[string]any {
	return update("completed", "completed", "done", 2, 2, map[string]any{
		"file": map[string]any{"file_name": "products.csv", "sha256": sha(csvData), "size_bytes": len(csvData)}})
}

func TestExportWithoutTerminal(t *testing.T) {
	f := newFakeAPI(t)
	f.mux.HandleFunc("POST /api/v1/exports/csv/products", accept)
	f.mux.HandleFunc("GET /api/v1/exports/ws", serveWS(t, []map[string]any{
		update("progress", "queued", "queued", 0, 0, map[string]any{"queue_position": 2, "rows_total": nil}),
		update("progress", "running", "counting", 0, 0, map[string]any{"rows_total": nil}),
		update("progress", "running", "writing", 1, 2, map[string]any{"rate_rows_per_s": 12345.0, "eta_seconds": 65.0}),
		update("progress", "running", "uploading", 2, 2, nil),
		completedMsg(),
	}, nil))
	f.mux.HandleFunc("GET /api/v1/exports/download/"+jobID, serveFile(csvData, sha(csvData)))

	out := filepath.Join(t.TempDir(), "catalog.csv")
	r := runCLI(t, t.Context(), f.srv.URL, map[string]string{"NO_COLOR": "1"},
		"export", "products", "--format", "csv", "--fields", "sku,name", "--filter", "status=active",
		"--filter", "category_id=3,7", "--option", "bom=true", "--exclude-fields", "description", "--out", out)
	if r.code != exitOK {
		t.Fatalf("exit %d, want 0", r.code)
	}
	if r.stdout != out+"\n" {
		t.Errorf("stdout = %q, want the path alone", r.stdout)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, csvData) {
		t.Errorf("file = %q, %v; want %q", got, err, csvData)
	}
	var body map[string]any
	if err := json.Unmarshal(f.bodies["POST /api/v1/exports/csv/products"], &body); err != nil {
		t.Fatal(err)
	}
	wantBody := `{"exclude_fields":["description"],"fields":["sku","name"],"filters":{"category_id":[3,7],"status":"active"},"options":{"bom":true}}`
	if b, _ := json.Marshal(body); string(b) != wantBody {
		t.Errorf("request body = %s, want %s", b, wantBody)
	}
	for _, want := range []string{
		"export " + jobID + ": queued, #2 in queue\n",
		": counting 0%\n",
		": writing 50% 1/2 rows, 12.3k rows/s, ETA 1m05s\n",
		": uploading 100% 2/2 rows\n",
		": completed 100% 2/2 rows\n",
		"saved " + out,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.ContainsRune(r.stderr+r.stdout, '\x1b') {
		t.Errorf("output holds an escape sequence without a terminal")
	}
	// No token given: one minted with the local default secret, accepted by its verifier.
	v, err := auth.NewHS256Verifier([]byte(defaultSecret))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := v.Verify(f.tokens[0]); err != nil || !p.Has(auth.PermWriteExports) {
		t.Errorf("minted token: %+v, %v", p, err)
	}
}

func TestExportPollsWhenWebSocketFails(t *testing.T) {
	f := newFakeAPI(t)
	f.mux.HandleFunc("POST /api/v1/exports/json/suppliers", accept)
	f.mux.HandleFunc("GET /api/v1/exports/ws", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "hub down", "")
	})
	var polls int
	var mu sync.Mutex
	f.mux.HandleFunc("GET /api/v1/exports/progress/"+jobID, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		polls++
		n := polls
		mu.Unlock()
		if n < 3 {
			writeJSON(w, http.StatusOK, update("", "running", "writing", int64(n), 2, nil))
			return
		}
		writeJSON(w, http.StatusOK, update("", "completed", "done", 2, 2, nil))
	})
	f.mux.HandleFunc("GET /api/v1/exports/"+jobID, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, completedMsg())
	})
	f.mux.HandleFunc("GET /api/v1/exports/download/"+jobID, serveFile(csvData, sha(csvData)))
	dir := t.TempDir()
	t.Chdir(dir)
	r := runCLI(t, t.Context(), f.srv.URL, nil, "export", "suppliers", "--format", "json", "--token", "given-token")
	if r.code != exitOK {
		t.Fatalf("exit %d, want 0", r.code)
	}
	// The file name comes from the server, reduced to a plain name here.
	if r.stdout != "products.csv\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "products.csv")); err != nil {
		t.Error(err)
	}
	if !strings.Contains(r.stderr, "polling") || !strings.Contains(r.stderr, "hub down") {
		t.Errorf("stderr does not tell the WebSocket failed")
	}
	if f.tokens[0] != "given-token" {
		t.Errorf("token sent = %q, want the given one", f.tokens[0])
	}
}

func TestDownloadRejectsChecksumMismatch(t *testing.T) {
	f := newFakeAPI(t)
	f.mux.HandleFunc("GET /api/v1/exports/"+jobID, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, completedMsg())
	})
	f.mux.HandleFunc("GET /api/v1/exports/download/"+jobID, serveFile(csvData, sha([]byte("other bytes"))))
	dir := t.TempDir()
	out := filepath.Join(dir, "catalog.csv")
	if err := os.WriteFile(out, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, t.Context(), f.srv.URL, nil, "download", jobID, "--out", out)
	if r.code != exitFailure {
		t.Fatalf("exit %d, want %d", r.code, exitFailure)
	}
	if !strings.Contains(r.stderr, "checksum mismatch") || r.stdout != "" {
		t.Errorf("stderr %q, stdout %q: want a checksum error and no output", r.stderr, r.stdout)
	}
	if got, _ := os.ReadFile(out); string(got) != "previous" {
		t.Errorf("the existing file was changed to %q", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("leftovers in the directory: %v", entries)
	}
}

func TestExportFails(t *testing.T) {
	f := newFakeAPI(t)
	f.mux.HandleFunc("POST /api/v1/exports/csv/products", accept)
	f.mux.HandleFunc("GET /api/v1/exports/ws", serveWS(t, []map[string]any{
		update("progress", "running", "writing", 1, 2, nil),
		update("failed", "failed", "done", 1, 2, map[string]any{"error": map[string]string{"code": "query_failed", "message": "reading the catalog failed"}}),
	}, nil))
	r := runCLI(t, t.Context(), f.srv.URL, nil, "export", "products")
	if r.code != exitFailure || !strings.Contains(r.stderr, "reading the catalog failed") {
		t.Errorf("exit %d, stderr %q: want 1 and the job's error", r.code, r.stderr)
	}
	if f.requested("GET /api/v1/exports/download/" + jobID) {
		t.Error("downloaded the file of a failed job")
	}
}

func TestAPIErrorsExitNonZero(t *testing.T) {
	f := newFakeAPI(t)
	f.mux.HandleFunc("POST /api/v1/exports/csv/products", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusBadRequest, "invalid_argument", `unknown filter "colour"`, "filters.colour")
	})
	f.mux.HandleFunc("POST /api/v1/exports/{id}/cancel", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusConflict, "already_finished", "export is already completed; only a queued or running export can be cancelled", "")
	})
	f.mux.HandleFunc("DELETE /api/v1/exports/{id}", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", `no export job "nope"`, "")
	})
	f.mux.HandleFunc("GET /api/v1/exports", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusUnauthorized, "unauthenticated", "invalid token", "")
	})
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"bad filter", []string{"export", "products", "--filter", "colour=red"}, []string{`unknown filter "colour"`, "filters.colour", "400"}},
		{"cancel a finished job", []string{"cancel", jobID}, []string{"cannot cancel export " + jobID, "already completed", "409 already_finished"}},
		{"delete an unknown job", []string{"delete", "nope"}, []string{`no export job "nope"`, "404"}},
		{"minted token refused", []string{"jobs"}, []string{"invalid token", "JWT_SECRET"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, t.Context(), f.srv.URL, nil, tt.args...)
			if r.code != exitFailure {
				t.Errorf("exit %d, want %d", r.code, exitFailure)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q lacks %q", r.stderr, w)
				}
			}
		})
	}
}

func TestCancelAndDelete(t *testing.T) {
	f := newFakeAPI(t)
	f.mux.HandleFunc("POST /api/v1/exports/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "status": "cancelled"})
	})
	f.mux.HandleFunc("DELETE /api/v1/exports/{id}", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	if r := runCLI(t, t.Context(), f.srv.URL, nil, "cancel", jobID); r.code != 0 || r.stdout != "export "+jobID+" cancelled\n" {
		t.Errorf("cancel: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := runCLI(t, t.Context(), f.srv.URL, nil, "delete", jobID); r.code != 0 || r.stdout != "export "+jobID+" deleted\n" {
		t.Errorf("delete: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestInterruptCancelsTheExport(t *testing.T) {
	f := newFakeAPI(t)
	hold := make(chan struct{})
	defer close(hold)
	f.mux.HandleFunc("POST /api/v1/exports/csv/products", accept)
	f.mux.HandleFunc("GET /api/v1/exports/ws", serveWS(t, []map[string]any{
		update("progress", "running", "writing", 1, 10, nil),
	}, hold))
	cancelled := make(chan struct{})
	f.mux.HandleFunc("POST /api/v1/exports/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "status": "cancelled"})
		close(cancelled)
	})
	ctx, interrupt := context.WithCancel(t.Context())
	// Interrupt once the export is under way: when the snapshot has been shown.
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 4096)
		var seen strings.Builder
		for {
			n, err := pr.Read(buf)
			seen.Write(buf[:n])
			if strings.Contains(seen.String(), "writing") {
				interrupt()
			}
			if err != nil {
				return
			}
		}
	}()
	var stdout bytes.Buffer
	a := newApp(func(k string) string {
		if k == "EXPORT_API_URL" {
			return f.srv.URL
		}
		return ""
	}, &stdout, pw)
	defer a.httpc.CloseIdleConnections()
	a.isTerminal = func(io.Writer) bool { return false }
	code := a.main(ctx, []string{"export", "products"})
	pw.Close()
	if code != exitInterrupted {
		t.Errorf("exit %d, want %d", code, exitInterrupted)
	}
	select {
	case <-cancelled:
	default:
		t.Error("the server was not asked to cancel the export")
	}
}

func TestDetachPrintsTheID(t *testing.T) {
	f := newFakeAPI(t)
	f.mux.HandleFunc("POST /api/v1/exports/excel/products", accept)
	r := runCLI(t, t.Context(), f.srv.URL, nil, "--detach", "export", "products", "--format", "excel", "--detach")
	if r.code != exitUsage { // --detach is a flag of export, not a global one
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	r = runCLI(t, t.Context(), f.srv.URL, nil, "export", "products", "--format", "excel", "--detach")
	if r.code != 0 || r.stdout != jobID+"\n" {
		t.Errorf("exit %d, stdout %q: want 0 and the id", r.code, r.stdout)
	}
	if f.requested("GET /api/v1/exports/ws") {
		t.Error("a detached export was followed")
	}
}

func TestJobs(t *testing.T) {
	f := newFakeAPI(t)
	f.mux.HandleFunc("GET /api/v1/exports", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("status") != "completed" || q.Get("limit") != "1" {
			t.Errorf("query = %v", q)
		}
		total := int64(5)
		if q.Get("cursor") == "" {
			writeJSON(w, http.StatusOK, map[string]any{"next_cursor": "c2", "items": []any{
				map[string]any{"id": "job-1", "status": "completed", "format": "csv", "entity": "products",
					"progress": 100, "rows_done": 5, "rows_total": total, "requested_by": "alice",
					"created_at": "2026-11-28T10:00:00Z", "file": map[string]any{"file_name": "a.csv", "size_bytes": 2048}}}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"next_cursor": nil, "items": []any{
			map[string]any{"id": "job-2", "status": "completed", "format": "json", "entity": "suppliers", "created_at": "2026-11-28T09:00:00Z"}}})
	})
	r := runCLI(t, t.Context(), f.srv.URL, nil, "jobs", "--status", "completed", "--limit", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "job-1") || strings.Contains(r.stdout, "job-2") {
		t.Errorf("one page: exit %d, stdout %q", r.code, r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || strings.Index(lines[0], "STATUS") != strings.Index(lines[1], "completed") {
		t.Errorf("table not aligned:\n%s", r.stdout)
	}
	if !strings.Contains(lines[1], "5/5") || !strings.Contains(lines[1], "a.csv (2.0 KiB)") {
		t.Errorf("row %q lacks rows or file", lines[1])
	}
	r = runCLI(t, t.Context(), f.srv.URL, nil, "jobs", "--status", "completed", "--limit", "1", "--all", "--json")
	var got struct{ Items []job }
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got.Items) != 2 || got.Items[1].ID != "job-2" {
		t.Errorf("--all --json: %v, %+v", err, got)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"no command", nil, exitUsage, "usage: exportctl"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"help", []string{"-h"}, exitOK, "mints a short-lived token"},
		{"export help", []string{"export", "-h"}, exitOK, "-filter-json"},
		{"missing entity", []string{"export"}, exitUsage, "missing argument"},
		{"two entities", []string{"export", "products", "suppliers"}, exitUsage, "unexpected arguments"},
		{"bad filter", []string{"export", "products", "--filter", "status"}, exitUsage, "want key=value"},
		{"bad filter json", []string{"export", "products", "--filter-json", "[1]"}, exitUsage, "want a JSON object"},
		{"unknown flag", []string{"jobs", "--colour"}, exitUsage, "flag provided but not defined"},
		{"bad api", []string{"jobs", "--api", "localhost:8080"}, exitUsage, "want a URL"},
		{"cancel without id", []string{"cancel"}, exitUsage, "missing argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, t.Context(), "http://127.0.0.1:1", nil, tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d", r.code, tt.wantCode)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr lacks %q", tt.want)
			}
		})
	}
}

func TestToken(t *testing.T) {
	r := runCLI(t, t.Context(), "", map[string]string{"JWT_SECRET": "s3cret"},
		"token", "--sub", "bob", "--perms", "READ_EXPORTS", "--ttl", "5m")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	v, err := auth.NewHS256Verifier([]byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(strings.TrimSpace(r.stdout))
	if err != nil || p.Subject != "bob" || p.Has(auth.PermWriteExports) || !p.Has(auth.PermReadExports) {
		t.Errorf("token principal %+v, %v", p, err)
	}
	if r := runCLI(t, t.Context(), "", nil, "token", "--ttl", "0s"); r.code != exitUsage {
		t.Errorf("zero ttl: exit %d, want %d", r.code, exitUsage)
	}
}

func TestPollingRidesOutAnAPIRestart(t *testing.T) {
	f := newFakeAPI(t)
	f.mux.HandleFunc("GET /api/v1/exports/"+jobID, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, update("", "running", "writing", 1, 2, nil))
	})
	f.mux.HandleFunc("GET /api/v1/exports/ws", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	})
	var mu sync.Mutex
	polls := 0
	f.mux.HandleFunc("GET /api/v1/exports/progress/"+jobID, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		polls++
		n := polls
		mu.Unlock()
		switch {
		case n <= 3:
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
		case n == 4:
			writeJSON(w, http.StatusOK, update("", "running", "writing", 1, 2, nil))
		default:
			writeJSON(w, http.StatusOK, update("", "cancelled", "done", 1, 2, nil))
		}
	})
	// download waits for the job; it ends cancelled, so there is nothing to download.
	r := runCLI(t, t.Context(), f.srv.URL, nil, "download", jobID, "--out", t.TempDir())
	if r.code != exitFailure || !strings.Contains(r.stderr, "was cancelled") {
		t.Errorf("exit %d, stderr %q: want 1 and the job's end", r.code, r.stderr)
	}
	if f.requested("GET /api/v1/exports/download/" + jobID) {
		t.Error("downloaded the file of a cancelled job")
	}
}

func TestDownloadIntoADirectory(t *testing.T) {
	f := newFakeAPI(t)
	f.mux.HandleFunc("GET /api/v1/exports/"+jobID, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, completedMsg())
	})
	f.mux.HandleFunc("GET /api/v1/exports/download/"+jobID, serveFile(csvData, sha(csvData)))
	dir := t.TempDir()
	r := runCLI(t, t.Context(), f.srv.URL, nil, "download", jobID, "--out", dir)
	want := filepath.Join(dir, "products.csv")
	if r.code != 0 || r.stdout != want+"\n" {
		t.Fatalf("exit %d, stdout %q; want 0 and %s", r.code, r.stdout, want)
	}
	if got, err := os.ReadFile(want); err != nil || !bytes.Equal(got, csvData) {
		t.Errorf("file = %q, %v", got, err)
	}
	// --out - writes the checked bytes to stdout, and nothing else.
	r = runCLI(t, t.Context(), f.srv.URL, nil, "download", jobID, "--out", "-")
	if r.code != 0 || r.stdout != string(csvData) {
		t.Errorf("--out -: exit %d, stdout %q", r.code, r.stdout)
	}
}
