package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// TestAuth: no token is 401, a reader cannot POST (403), and errors have the contract's shape.
func TestAuth(t *testing.T) {
	s := getStack(t)
	code, body := s.do(t, http.MethodGet, "/api/v1/exports", "", nil)
	if code != http.StatusUnauthorized {
		t.Fatalf("GET without token = %d, want 401", code)
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("401 body is not the JSON error shape: %s", body)
	}
	code, _ = s.do(t, http.MethodGet, "/api/v1/exports", "not-a-jwt", nil)
	if code != http.StatusUnauthorized {
		t.Errorf("GET with a garbage token = %d, want 401", code)
	}
	reader := s.token(t, "e2e-writer", auth.PermReadExports) // the writer's own jobs, read only
	code, body = s.do(t, http.MethodPost, "/api/v1/exports/csv/products", reader, map[string]any{})
	if code != http.StatusForbidden {
		t.Fatalf("POST with READ_EXPORTS only = %d %s, want 403", code, body)
	}
	if code, _ := s.do(t, http.MethodGet, "/api/v1/exports", reader, nil); code != http.StatusOK {
		t.Errorf("GET with READ_EXPORTS = %d, want 200", code)
	}
	writerOnly := s.token(t, "e2e-w", auth.PermWriteExports)
	if code, _ := s.do(t, http.MethodGet, "/api/v1/exports", writerOnly, nil); code != http.StatusForbidden {
		t.Errorf("GET with WRITE_EXPORTS only = %d, want 403", code)
	}
}

// TestBadRequests: bad input is a 400 naming the culprit, and nothing is queued.
func TestBadRequests(t *testing.T) {
	s := getStack(t)
	tok := s.writer(t)
	tests := []struct {
		name, path string
		body       any
		field      string
	}{
		{"unknown entity", "/api/v1/exports/csv/widgets", map[string]any{}, "entity"},
		{"unknown format", "/api/v1/exports/pdf/products", map[string]any{}, "format"},
		{"unknown field", "/api/v1/exports/csv/products", map[string]any{"fields": []string{"sku", "colour"}}, "fields"},
		{"unknown filter", "/api/v1/exports/csv/products", map[string]any{"filters": map[string]any{"colour": "red"}}, "filters.colour"},
		{"bad price", "/api/v1/exports/csv/products", map[string]any{"filters": map[string]any{"price_min": "cheap"}}, "filters.price_min"},
		{"bad date", "/api/v1/exports/csv/products", map[string]any{"filters": map[string]any{"updated_since": "yesterday"}}, "filters.updated_since"},
		{"unknown option", "/api/v1/exports/csv/products", map[string]any{"options": map[string]any{"zip": true}}, "options.zip"},
		{"bad delimiter", "/api/v1/exports/csv/products", map[string]any{"options": map[string]any{"delimiter": "x"}}, "options.delimiter"},
		{"unknown key", "/api/v1/exports/csv/products", map[string]any{"colour": 1}, "colour"},
		{"create without entity", "/api/v1/exports/create", map[string]any{"format": "csv"}, "entity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := s.do(t, http.MethodPost, tt.path, tok, tt.body)
			if code != http.StatusBadRequest {
				t.Fatalf("= %d %s, want 400", code, body)
			}
			var e struct {
				Error struct{ Code, Message, Field string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Error.Field != tt.field || e.Error.Message == "" {
				t.Errorf("error = %+v, want field %q", e.Error, tt.field)
			}
		})
	}
	if code, _ := s.do(t, http.MethodGet, "/api/v1/exports/progress/00000000-0000-0000-0000-000000000000", tok, nil); code != http.StatusNotFound {
		t.Errorf("progress of an unknown job = %d, want 404", code)
	}
	if code, _ := s.do(t, http.MethodGet, "/api/v1/exports?limit=9999", tok, nil); code != http.StatusBadRequest {
		t.Errorf("limit=9999 = %d, want 400", code)
	}
}

// TestCSVExportEndToEnd is the walking skeleton: a WebSocket client watches a CSV export of
// 10,000 products from POST to completed; the integrator's progress endpoint agrees; the
// download is a complete CSV; a downstream consumer finds ExportCompleted with the file's hash.
func TestCSVExportEndToEnd(t *testing.T) {
	s := getStack(t)
	s.seed(t, 10000)
	want := s.countProducts(t)
	tok := s.writer(t)

	ws := s.dialWS(t, tok)
	if err := ws.WriteJSON(map[string]any{"type": "subscribe", "all": true}); err != nil {
		t.Fatal(err)
	}
	job := s.requestCSV(t, tok)
	t.Logf("job %s queued", job.JobID)

	type msg struct {
		Type     string  `json:"type"`
		TaskID   string  `json:"task_id"`
		Status   string  `json:"status"`
		RowsDone int64   `json:"rows_done"`
		Progress float64 `json:"progress"`
		Job      struct {
			ID string `json:"id"`
		} `json:"job"`
	}
	var sawBefore, completed bool
	deadline := time.Now().Add(2 * time.Minute)
	for !completed {
		ws.SetReadDeadline(deadline)
		var m msg
		if err := readPush(ws, &m); err != nil {
			t.Fatalf("reading WebSocket (saw progress before: %v): %v", sawBefore, err)
		}
		switch {
		case m.Type == "snapshot" && m.Job.ID == job.JobID, m.Type == "progress" && m.TaskID == job.JobID:
			sawBefore = true
		case m.Type == "completed" && m.TaskID == job.JobID:
			completed = true
			if m.Progress != 100 {
				t.Errorf("completed message progress = %v", m.Progress)
			}
		case m.Type == "failed" && m.TaskID == job.JobID:
			t.Fatalf("job failed: %+v", m)
		}
	}
	if !sawBefore {
		t.Error("the WebSocket client saw completed without a snapshot or progress first")
	}

	p := s.waitStatus(t, job.JobID, "completed", 30*time.Second)
	if p.RowsTotal == nil || *p.RowsTotal != want || p.RowsDone != want || p.Progress != 100 {
		t.Errorf("progress endpoint = %+v, want rows_total %d", p, want)
	}

	data := s.download(t, job.JobID)
	rows := checkCSV(t, data)
	if int64(len(rows)) != want {
		t.Errorf("download has %d rows, catalog has %d", len(rows), want)
	}

	ev := s.findCompleted(t, job.JobID, time.Minute)
	if ev.Object.SHA256 != sha(data) {
		t.Errorf("ExportCompleted sha256 %s, downloaded bytes hash to %s", ev.Object.SHA256, sha(data))
	}
	if ev.Rows != want || ev.Object.SizeBytes != int64(len(data)) || ev.RequestedBy != "e2e-writer" {
		t.Errorf("ExportCompleted = %+v", ev)
	}

	// The job as the list and the job endpoint show it.
	code, body := s.do(t, http.MethodGet, "/api/v1/exports/"+job.JobID, tok, nil)
	var j struct {
		Status string `json:"status"`
		File   struct {
			SHA256 string `json:"sha256"`
		} `json:"file"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &j) != nil || j.Status != "completed" || j.File.SHA256 != sha(data) {
		t.Errorf("GET job = %d %s", code, body)
	}
	code, body = s.do(t, http.MethodGet, "/api/v1/exports?status=completed&limit=5", tok, nil)
	var list struct {
		Items []struct{ ID string } `json:"items"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Items) == 0 || list.Items[0].ID != job.JobID {
		t.Errorf("list newest first should start with the job: %d %.300s", code, body)
	}
}
