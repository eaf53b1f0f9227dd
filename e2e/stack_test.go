package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
)

// stack describes the local stack under test, from the same settings the services read.
type stack struct {
	api       string
	ws        string
	secret    string
	catalogDB string
	exportsDB string
	brokers   string
	root      string
}

func getStack(t *testing.T) stack {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	s := stack{
		api:       "http://" + env("API_ADDR", "127.0.0.1:8080"),
		secret:    env("JWT_SECRET", "local-dev-secret"),
		catalogDB: env("CATALOG_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/products_manager?sslmode=disable"),
		exportsDB: env("EXPORTS_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/exports?sslmode=disable"),
		brokers:   env("KAFKA_BROKERS", "127.0.0.1:9092"),
		root:      root,
	}
	s.ws = "ws" + strings.TrimPrefix(s.api, "http") + "/api/v1/exports/ws"
	resp, err := http.Get(s.api + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the local stack is not up (run make up): %v", err)
	}
	resp.Body.Close()
	return s
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (s stack) token(t *testing.T, sub string, perms ...string) string {
	t.Helper()
	tok, err := auth.Mint([]byte(s.secret), auth.Principal{Subject: sub, Name: "E2E " + sub, Permissions: perms}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s stack) writer(t *testing.T) string {
	return s.token(t, "e2e-writer", auth.PermReadExports, auth.PermWriteExports)
}

// do sends a request and returns the status and body.
func (s stack) do(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	code, _, out := s.doHeader(t, method, path, token, body)
	return code, out
}

// doHeader is do that also returns the response headers.
func (s stack) doHeader(t *testing.T, method, path, token string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.api+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, out
}

// seed regenerates the catalog with n products through the project's seed tool.
func (s stack) seed(t *testing.T, n int) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(filepath.Join(s.root, ".stack/bin/seed"), "-products", fmt.Sprint(n), "-database-url", s.catalogDB)
	seeded = 0
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("seeding %d products: %v\n%s", n, err, out)
	}
	seeded = n
	t.Logf("seeded %d products in %s", n, time.Since(start).Round(time.Millisecond))
}

// seeded is the product count this test process last seeded (0: none yet, or unknown).
var seeded int

// seedOnce is seed for tests that only read the catalog: the seed being deterministic for a
// given n, a catalog this process already seeded with n products is reused as it is.
func (s stack) seedOnce(t *testing.T, n int) {
	t.Helper()
	if seeded != n {
		s.seed(t, n)
	}
}

func (s stack) countProducts(t *testing.T) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.catalogDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type acceptedJob struct {
	TaskID string `json:"task_id"`
	JobID  string `json:"job_id"`
	Status string `json:"status"`
	Links  struct {
		Self, Progress, Download string
	} `json:"links"`
}

func (s stack) requestCSV(t *testing.T, token string) acceptedJob {
	t.Helper()
	return s.requestExport(t, token, "csv", "products", map[string]any{})
}

// requestExport POSTs an export request body to /api/v1/exports/{format}/{entity} and checks
// the 202.
func (s stack) requestExport(t *testing.T, token, format, entity string, req any) acceptedJob {
	t.Helper()
	code, body := s.do(t, http.MethodPost, "/api/v1/exports/"+format+"/"+entity, token, req)
	if code != http.StatusAccepted {
		t.Fatalf("POST %s/%s = %d %s", format, entity, code, body)
	}
	var a acceptedJob
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	if a.TaskID == "" || a.TaskID != a.JobID || a.Status != "queued" {
		t.Fatalf("unexpected 202 body: %s", body)
	}
	return a
}

type progress struct {
	TaskID    string          `json:"task_id"`
	Status    string          `json:"status"`
	Progress  float64         `json:"progress"`
	RowsDone  int64           `json:"rows_done"`
	RowsTotal *int64          `json:"rows_total"`
	Error     json.RawMessage `json:"error"`
}

// waitStatus polls the progress endpoint until the job reaches want (or a terminal state).
func (s stack) waitStatus(t *testing.T, id, want string, timeout time.Duration) progress {
	t.Helper()
	tok := s.token(t, "e2e-writer", auth.PermReadExports)
	deadline := time.Now().Add(timeout)
	var p progress
	for time.Now().Before(deadline) {
		code, body := s.do(t, http.MethodGet, "/api/v1/exports/progress/"+id, tok, nil)
		if code != http.StatusOK {
			t.Fatalf("progress = %d %s", code, body)
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Status == want {
			return p
		}
		if p.Status == "failed" || p.Status == "cancelled" || p.Status == "expired" {
			t.Fatalf("job %s ended %s, want %s: %s", id, p.Status, want, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("job %s still %s after %s, want %s", id, p.Status, timeout, want)
	return p
}

func (s stack) download(t *testing.T, id string) []byte {
	t.Helper()
	code, body := s.do(t, http.MethodGet, "/api/v1/exports/download/"+id, s.token(t, "e2e-writer", auth.PermReadExports), nil)
	if code != http.StatusOK {
		t.Fatalf("download = %d %.300s", code, body)
	}
	return body
}

// checkCSV parses a downloaded products CSV with an independent reader and returns its data
// rows, failing on a missing BOM, a wrong header or a malformed record.
func checkCSV(t *testing.T, data []byte) [][]string {
	t.Helper()
	if !bytes.HasPrefix(data, []byte("\xEF\xBB\xBF")) {
		t.Fatalf("file does not start with a UTF-8 BOM: %q", data[:min(len(data), 16)])
	}
	r := csv.NewReader(bytes.NewReader(data[3:]))
	r.ReuseRecord = false
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("file is not valid CSV: %v", err)
	}
	if len(recs) == 0 || recs[0][0] != "id" || recs[0][1] != "sku" || recs[0][2] != "name" {
		t.Fatalf("unexpected header %v", recs[0])
	}
	return recs[1:]
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// findCompleted reads exports.events from the start with read_committed, as a downstream
// system would, until it finds the ExportCompleted of job.
func (s stack) findCompleted(t *testing.T, job string, timeout time.Duration) events.ExportCompleted {
	t.Helper()
	ev, err := events.Decode[events.ExportCompleted](s.findEvent(t, job, events.TypeCompleted, timeout))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// dialWS opens the progress WebSocket through the API with a token.
func (s stack) dialWS(t *testing.T, token string) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	c, resp, err := websocket.DefaultDialer.Dial(s.ws, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dialing %s: %v (HTTP %d)", s.ws, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// stackCmd runs dev/stack.sh with args.
func (s stack) stackCmd(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(s.root, "dev/stack.sh")}, args...)...)
	cmd.Dir = s.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dev/stack.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("dev/stack.sh %s:\n%s", strings.Join(args, " "), out)
}
