package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
)

func TestAuthentication(t *testing.T) {
	t.Parallel()
	otherSecret, err := auth.Mint([]byte("another-secret"), auth.Principal{Subject: "mallory",
		Permissions: []string{auth.PermReadExports, auth.PermWriteExports}}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expired, err := auth.Mint([]byte(testSecret), auth.Principal{Subject: "alice",
		Permissions: []string{auth.PermReadExports, auth.PermWriteExports}}, time.Hour, time.Now().Add(-3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	read := token(t, "alice", auth.PermReadExports)
	write := token(t, "alice", auth.PermWriteExports)
	jobID := uuid.Must(uuid.NewV7()).String()

	tests := []struct {
		name       string
		method     string
		path       string
		header     string // the whole Authorization header; "" sends none
		wantStatus int
		wantCode   string
	}{
		{"list without token", "GET", "/api/v1/exports", "", 401, auth.CodeUnauthenticated},
		{"get without token", "GET", "/api/v1/exports/" + jobID, "", 401, auth.CodeUnauthenticated},
		{"download without token", "GET", "/api/v1/exports/download/" + jobID, "", 401, auth.CodeUnauthenticated},
		{"create without token", "POST", "/api/v1/exports/csv/products", "", 401, auth.CodeUnauthenticated},
		{"websocket without token", "GET", "/api/v1/exports/ws", "", 401, auth.CodeUnauthenticated},
		{"garbage token", "GET", "/api/v1/exports", "Bearer not.a.jwt", 401, auth.CodeUnauthenticated},
		{"basic scheme", "GET", "/api/v1/exports", "Basic YWxpY2U6cHc=", 401, auth.CodeUnauthenticated},
		{"token of another secret", "GET", "/api/v1/exports", "Bearer " + otherSecret, 401, auth.CodeUnauthenticated},
		{"expired token", "POST", "/api/v1/exports/create", "Bearer " + expired, 401, auth.CodeUnauthenticated},
		{"create with READ only", "POST", "/api/v1/exports/csv/products", "Bearer " + read, 403, auth.CodePermissionDenied},
		{"create from body with READ only", "POST", "/api/v1/exports/create", "Bearer " + read, 403, auth.CodePermissionDenied},
		{"list with WRITE only", "GET", "/api/v1/exports", "Bearer " + write, 403, auth.CodePermissionDenied},
		{"progress with WRITE only", "GET", "/api/v1/exports/progress/" + jobID, "Bearer " + write, 403, auth.CodePermissionDenied},
		{"download with WRITE only", "GET", "/api/v1/exports/download/" + jobID, "Bearer " + write, 403, auth.CodePermissionDenied},
		{"websocket with WRITE only", "GET", "/api/v1/exports/ws", "Bearer " + write, 403, auth.CodePermissionDenied},
		{"fields without token", "GET", "/api/v1/exports/fields/products", "", 401, auth.CodeUnauthenticated},
		{"fields with WRITE only", "GET", "/api/v1/exports/fields/products", "Bearer " + write, 403, auth.CodePermissionDenied},
		{"stream without token", "GET", "/api/v1/exports/stream/csv/products", "", 401, auth.CodeUnauthenticated},
		{"stream with WRITE only", "GET", "/api/v1/exports/stream/csv/products", "Bearer " + write, 403, auth.CodePermissionDenied},
		{"unknown format without token", "POST", "/api/v1/exports/pdf/products", "", 401, auth.CodeUnauthenticated},
	}
	jobs := newFakeJobs()
	e := newEnv(t, jobs)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), tt.method, e.srv.URL+tt.path, strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			r := response{status: resp.StatusCode, header: resp.Header, body: b.Bytes()}
			r.checkError(t, tt.wantStatus, tt.wantCode, "")
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Cleanup(func() {
		if got := jobs.createdRequests(); len(got) != 0 {
			t.Errorf("jobs created by refused requests: %+v", got)
		}
	})
}

func TestCreateFromPath(t *testing.T) {
	t.Parallel()
	jobs := newFakeJobs()
	e := newEnv(t, jobs)
	body := `{"fields": ["sku", "name", "price"], "exclude_fields": ["price"],
		"filters": {"status": "active", "category_id": [3, 7], "price_min": 10, "search": "cable"},
		"options": {"delimiter": ";", "decimal": ",", "line_ending": "crlf", "bom": true, "formula_escape": "false"},
		"platform_id": null, "file_name": "catalog.csv"}`
	before := time.Now().UTC().Add(-time.Second)
	r := e.do(t, "POST", "/api/v1/exports/csv/products", token(t, "alice", auth.PermWriteExports), []byte(body))
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	m := r.json(t)
	id, _ := m["job_id"].(string)
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("job_id %q is not a uuid", m["job_id"])
	}
	if m["task_id"] != id || m["status"] != "queued" {
		t.Errorf("task_id %v, job_id %v, status %v", m["task_id"], id, m["status"])
	}
	wantLinks := map[string]any{
		"self":     "/api/v1/exports/" + id,
		"progress": "/api/v1/exports/progress/" + id,
		"download": "/api/v1/exports/download/" + id,
	}
	if !reflect.DeepEqual(m["links"], wantLinks) {
		t.Errorf("links = %v, want %v", m["links"], wantLinks)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/exports/"+id {
		t.Errorf("Location = %q", loc)
	}

	got := jobs.createdRequests()
	if len(got) != 1 {
		t.Fatalf("Create called %d times", len(got))
	}
	req := got[0]
	var wantFilters, wantOptions map[string]any
	json.Unmarshal([]byte(`{"status": "active", "category_id": [3, 7], "price_min": 10, "search": "cable"}`), &wantFilters)
	json.Unmarshal([]byte(`{"delimiter": ";", "decimal": ",", "line_ending": "crlf", "bom": true, "formula_escape": "false"}`), &wantOptions)
	switch {
	case req.JobID != id:
		t.Errorf("Create got job id %s, answered %s", req.JobID, id)
	case req.Entity != "products" || req.Format != "csv":
		t.Errorf("entity %q format %q, want products csv", req.Entity, req.Format)
	case req.RequestedBy != "alice" || req.RequesterName != "Alice Liddell":
		t.Errorf("requested_by %q (%q), want the token's sub alice", req.RequestedBy, req.RequesterName)
	case !reflect.DeepEqual(req.Fields, []string{"sku", "name", "price"}) || !reflect.DeepEqual(req.ExcludeFields, []string{"price"}):
		t.Errorf("fields %v exclude %v", req.Fields, req.ExcludeFields)
	case !sameJSON(req.Filters, wantFilters):
		t.Errorf("filters %v, want %v", req.Filters, wantFilters)
	case !reflect.DeepEqual(req.Options, wantOptions):
		t.Errorf("options %v, want %v", req.Options, wantOptions)
	case req.FileName != "catalog.csv" || req.PlatformID != nil || req.ScheduleID != nil:
		t.Errorf("file %q platform %v schedule %v", req.FileName, req.PlatformID, req.ScheduleID)
	case req.RequestedAt.Before(before) || req.RequestedAt.After(time.Now().Add(time.Second)):
		t.Errorf("requested_at %v is not now", req.RequestedAt)
	}
	if n := e.notified.Load(); n != 1 {
		t.Errorf("Notify called %d times, want 1 (wakes the outbox relay)", n)
	}
	job, ok := m["job"].(map[string]any)
	if !ok || job["id"] != id || job["requested_by"] != "alice" {
		t.Errorf("job in the answer = %v", m["job"])
	}

	// An empty body is a request for the defaults; the default file name follows the entity.
	r = e.do(t, "POST", "/api/v1/exports/csv/suppliers", token(t, "bob", auth.PermWriteExports), nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("empty body: status %d: %s", r.status, r.body)
	}
	got = jobs.createdRequests()
	if len(got) != 2 || got[1].Entity != "suppliers" || got[1].RequestedBy != "bob" || got[1].FileName != "suppliers.csv" {
		t.Errorf("empty body created %+v", got[1:])
	}
}

func TestCreateFromBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantCode   string
		wantField  string
		wantEntity string
	}{
		{name: "entity and format in the body", body: `{"entity": "suppliers", "format": "csv", "fields": ["code"]}`,
			wantStatus: 202, wantEntity: "suppliers"},
		{name: "missing entity", body: `{"format": "csv"}`, wantStatus: 400, wantCode: "invalid_argument", wantField: "entity"},
		{name: "missing format", body: `{"entity": "products"}`, wantStatus: 400, wantCode: "invalid_argument", wantField: "format"},
		{name: "empty object", body: `{}`, wantStatus: 400, wantCode: "invalid_argument", wantField: "entity"},
		{name: "no body", body: ``, wantStatus: 400, wantCode: "invalid_body"},
		{name: "unknown entity", body: `{"entity": "orders", "format": "csv"}`, wantStatus: 400, wantCode: "invalid_argument", wantField: "entity"},
		{name: "unknown format", body: `{"entity": "products", "format": "pdf"}`, wantStatus: 400, wantCode: "invalid_argument", wantField: "format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			jobs := newFakeJobs()
			e := newEnv(t, jobs)
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			r := e.do(t, "POST", "/api/v1/exports/create", token(t, "alice", auth.PermWriteExports), body)
			created := jobs.createdRequests()
			if tt.wantStatus != http.StatusAccepted {
				r.checkError(t, tt.wantStatus, tt.wantCode, tt.wantField)
				if len(created) != 0 {
					t.Errorf("a refused request created %+v", created)
				}
				return
			}
			if r.status != tt.wantStatus {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			m := r.json(t)
			if len(created) != 1 || created[0].Entity != tt.wantEntity || created[0].Format != "csv" ||
				m["job_id"] != created[0].JobID || m["task_id"] != created[0].JobID {
				t.Errorf("created %+v, answered %s", created, r.body)
			}
		})
	}
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		path       string // after /api/v1/exports/
		body       string
		wantStatus int
		wantCode   string
		wantField  string
	}{
		{"unknown field", "csv/products", `{"fields": ["sku", "colour"]}`, 400, "invalid_argument", "fields"},
		{"repeated field", "csv/products", `{"fields": ["sku", "sku"]}`, 400, "invalid_argument", "fields"},
		{"unknown excluded field", "csv/products", `{"exclude_fields": ["colour"]}`, 400, "invalid_argument", "exclude_fields"},
		{"unknown filter", "csv/products", `{"filters": {"x": 1}}`, 400, "invalid_argument", "filters.x"},
		{"supplier filter on products", "csv/products", `{"filters": {"country": "FR"}}`, 400, "invalid_argument", "filters.country"},
		{"bad filter value", "csv/products", `{"filters": {"price_min": "cheap"}}`, 400, "invalid_argument", "filters.price_min"},
		{"bad status filter", "csv/products", `{"filters": {"status": "deleted"}}`, 400, "invalid_argument", "filters.status"},
		{"bad delimiter", "csv/products", `{"options": {"delimiter": "::"}}`, 400, "invalid_argument", "options.delimiter"},
		{"unknown option", "csv/products", `{"options": {"colour": "red"}}`, 400, "invalid_argument", "options.colour"},
		{"bad bom", "csv/products", `{"options": {"bom": "yes"}}`, 400, "invalid_argument", "options.bom"},
		{"decimal equals delimiter", "csv/products", `{"options": {"decimal": ",", "delimiter": ","}}`, 400, "invalid_argument", "options.decimal"},
		{"file name path traversal", "csv/products", `{"file_name": "../x.csv"}`, 400, "invalid_argument", "file_name"},
		{"platform id", "csv/products", `{"platform_id": "shopify-fr"}`, 400, "invalid_argument", "platform_id"},
		{"unknown JSON key", "csv/products", `{"fields": ["sku"], "colour": "red"}`, 400, "invalid_body", "colour"},
		{"wrong JSON type", "csv/products", `{"fields": "sku"}`, 400, "invalid_body", "fields"},
		{"malformed JSON", "csv/products", `{"fields": [}`, 400, "invalid_body", ""},
		{"truncated JSON", "csv/products", `{"fields": ["sku"`, 400, "invalid_body", ""},
		{"data after the object", "csv/products", `{} {}`, 400, "invalid_body", ""},
		{"body over the limit", "csv/products", `{"file_name": "` + strings.Repeat("a", maxBodySize) + `"}`, 413, "body_too_large", ""},
		{"unknown format", "pdf/products", `{}`, 400, "invalid_argument", "format"},
		{"body names another entity", "csv/products", `{"entity": "suppliers"}`, 400, "invalid_argument", "entity"},
		{"body names another format", "csv/products", `{"format": "json", "fields": ["sku"]}`, 400, "invalid_argument", "format"},
		{"unknown entity", "csv/orders", `{}`, 400, "invalid_argument", "entity"},
		{"unknown JSON key on create", "create", `{"entity": "products", "format": "csv", "colour": 1}`, 400, "invalid_body", "colour"},
		{"unknown filter on create", "create", `{"entity": "suppliers", "format": "csv", "filters": {"brand": "Acme"}}`, 400, "invalid_argument", "filters.brand"},
	}
	jobs := newFakeJobs()
	e := newEnv(t, jobs)
	tok := token(t, "alice", auth.PermWriteExports)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := e.do(t, "POST", "/api/v1/exports/"+tt.path, tok, []byte(tt.body))
			r.checkError(t, tt.wantStatus, tt.wantCode, tt.wantField)
		})
	}
	t.Cleanup(func() {
		if got := jobs.createdRequests(); len(got) != 0 {
			t.Errorf("invalid requests created jobs: %+v", got)
		}
		if n := e.notified.Load(); n != 0 {
			t.Errorf("Notify called %d times for invalid requests", n)
		}
	})
}

// TestCreateFormats: each format pkg/export writes is accepted, on both create forms; one it
// does not write yet is a 400 naming the format. A body may repeat the path's format and entity.
func TestCreateFormats(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"csv", "excel", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			jobs := newFakeJobs()
			e := newEnv(t, jobs)
			tok := token(t, "alice", auth.PermWriteExports)
			byPath := e.do(t, "POST", "/api/v1/exports/"+format+"/products", tok, []byte(`{"entity": "products", "format": "`+format+`"}`))
			byBody := e.do(t, "POST", "/api/v1/exports/create", tok, []byte(`{"entity": "products", "format": "`+format+`"}`))
			if byPath.status != 202 || byBody.status != 202 {
				t.Fatalf("statuses %d, %d: %s %s", byPath.status, byBody.status, byPath.body, byBody.body)
			}
			for _, req := range jobs.createdRequests() {
				if req.Format != format || req.Entity != "products" {
					t.Errorf("created %s %s, want %s products", req.Format, req.Entity, format)
				}
			}
		})
	}
}

func sampleJob(status jobstore.Status) jobstore.Job {
	id := uuid.Must(uuid.NewV7()).String()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	total := int64(200)
	j := jobstore.Job{
		ID: id, TaskID: id, Entity: "products", Format: "csv", Status: status, Progress: 42.5,
		RowsDone: 85, RowsTotal: &total, BytesWritten: 4096, Fields: []string{"sku"}, ExcludeFields: []string{},
		Filters: map[string]any{"brand": "Acme"}, Options: map[string]any{}, FileName: "products.csv",
		RequestedBy: "alice", CreatedAt: now, UpdatedAt: now.Add(time.Minute),
	}
	return j
}

func TestGetJobAndProgress(t *testing.T) {
	t.Parallel()
	running := sampleJob(jobstore.StatusRunning)
	failed := sampleJob(jobstore.StatusFailed)
	failed.Error = &jobstore.JobError{Code: "export_failed", Message: "catalog unreachable"}
	e := newEnv(t, newFakeJobs(running, failed))
	tok := token(t, "alice", auth.PermReadExports)

	r := e.do(t, "GET", "/api/v1/exports/"+running.ID, tok, nil)
	if r.status != 200 {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	var back jobstore.Job
	if err := json.Unmarshal(r.body, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != running.ID || back.TaskID != running.ID || back.Status != jobstore.StatusRunning || *back.RowsTotal != 200 ||
		back.Filters["brand"] != "Acme" || back.RequestedBy != "alice" {
		t.Errorf("job = %+v", back)
	}

	r = e.do(t, "GET", "/api/v1/exports/progress/"+running.ID, tok, nil)
	if r.status != 200 {
		t.Fatalf("progress: %d %s", r.status, r.body)
	}
	m := r.json(t)
	want := map[string]any{
		"task_id": running.ID, "status": "running", "progress": 42.5, "rows_done": 85.0, "rows_total": 200.0,
		"updated_at": "2026-03-01T10:01:00Z", "error": nil,
	}
	for k, v := range want {
		got, ok := m[k]
		if !ok {
			t.Errorf("progress has no %q: %s", k, r.body)
		} else if !reflect.DeepEqual(got, v) {
			t.Errorf("progress %s = %v, want %v", k, got, v)
		}
	}

	r = e.do(t, "GET", "/api/v1/exports/progress/"+failed.ID, tok, nil)
	m = r.json(t)
	if errObj, _ := m["error"].(map[string]any); m["status"] != "failed" || errObj["code"] != "export_failed" || errObj["message"] != "catalog unreachable" {
		t.Errorf("failed job progress = %s", r.body)
	}

	for _, path := range []string{
		"/api/v1/exports/" + uuid.NewString(),
		"/api/v1/exports/progress/" + uuid.NewString(),
		"/api/v1/exports/download/" + uuid.NewString(),
		"/api/v1/exports/not-a-uuid",
	} {
		e.do(t, "GET", path, tok, nil).checkError(t, 404, "not_found", "")
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		query      string
		wantStatus int
		wantField  string
		wantFilter jobstore.ListFilter
	}{
		{name: "defaults", query: "", wantStatus: 200, wantFilter: jobstore.ListFilter{RequestedBy: "alice", Limit: 50}},
		{name: "all parameters", query: "?status=running&limit=500&cursor=abc", wantStatus: 200,
			wantFilter: jobstore.ListFilter{Status: jobstore.StatusRunning, RequestedBy: "alice", Limit: 500, Cursor: "abc"}},
		{name: "limit 1", query: "?limit=1", wantStatus: 200, wantFilter: jobstore.ListFilter{RequestedBy: "alice", Limit: 1}},
		{name: "limit 0", query: "?limit=0", wantStatus: 400, wantField: "limit"},
		{name: "limit 501", query: "?limit=501", wantStatus: 400, wantField: "limit"},
		{name: "limit negative", query: "?limit=-3", wantStatus: 400, wantField: "limit"},
		{name: "limit not a number", query: "?limit=ten", wantStatus: 400, wantField: "limit"},
		{name: "unknown status", query: "?status=done", wantStatus: 400, wantField: "status"},
		{name: "bad cursor", query: "?cursor=bogus", wantStatus: 400, wantField: "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			jobs := newFakeJobs()
			jobs.listJobs = []jobstore.Job{sampleJob(jobstore.StatusQueued), sampleJob(jobstore.StatusCompleted)}
			jobs.listNext = "next-page"
			e := newEnv(t, jobs)
			r := e.do(t, "GET", "/api/v1/exports"+tt.query, token(t, "alice", auth.PermReadExports), nil)
			calls := jobs.listCalls()
			if tt.wantStatus != 200 {
				r.checkError(t, tt.wantStatus, "invalid_argument", tt.wantField)
				if tt.wantField != "cursor" && len(calls) != 0 {
					t.Errorf("store listed with an invalid request: %+v", calls)
				}
				return
			}
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if len(calls) != 1 || calls[0] != tt.wantFilter {
				t.Errorf("List called with %+v, want %+v", calls, tt.wantFilter)
			}
			var page struct {
				Items      []jobstore.Job `json:"items"`
				NextCursor *string        `json:"next_cursor"`
			}
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != 2 || page.Items[0].ID != jobs.listJobs[0].ID || page.NextCursor == nil || *page.NextCursor != "next-page" {
				t.Errorf("page = %s", r.body)
			}
		})
	}

	// An empty store lists [] (not null) and an empty cursor.
	e := newEnv(t, newFakeJobs())
	r := e.do(t, "GET", "/api/v1/exports", token(t, "alice", auth.PermReadExports), nil)
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"next_cursor":""`)) {
		t.Errorf("empty list: %d %s", r.status, r.body)
	}
}

func TestDownload(t *testing.T) {
	t.Parallel()
	content := []byte("\uFEFFsku,name\nSKU-1,\"Câble \"\"Ultra\"\", 2m\"\n")
	sum := sha256.Sum256(content)
	withFile := func(status jobstore.Status, name string) jobstore.Job {
		j := sampleJob(status)
		j.FileName = name
		if status == jobstore.StatusCompleted || status == jobstore.StatusExpired {
			j.File = &events.Object{Bucket: "exports", Key: "products/" + j.ID + "/" + name, SizeBytes: int64(len(content)),
				SHA256: hex.EncodeToString(sum[:]), ContentType: "text/csv; charset=utf-8", FileName: name}
		}
		return j
	}
	queued := withFile(jobstore.StatusQueued, "products.csv")
	running := withFile(jobstore.StatusRunning, "products.csv")
	failed := withFile(jobstore.StatusFailed, "products.csv")
	expired := withFile(jobstore.StatusExpired, "products.csv")
	completed := withFile(jobstore.StatusCompleted, "catalogue été.csv")
	missing := withFile(jobstore.StatusCompleted, "products.csv")
	e := newEnv(t, newFakeJobs(queued, running, failed, expired, completed, missing))
	if _, err := e.objects.Put(t.Context(), completed.File.Key, bytes.NewReader(content), completed.File.ContentType); err != nil {
		t.Fatal(err)
	}
	tok := token(t, "alice", auth.PermReadExports)

	tests := []struct {
		name       string
		job        jobstore.Job
		wantStatus int
		wantCode   string
	}{
		{"queued", queued, 409, "not_ready"},
		{"running", running, 409, "not_ready"},
		{"failed", failed, 409, "not_ready"},
		{"expired", expired, 410, "expired"},
		{"completed without its object", missing, 410, "file_missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := e.do(t, "GET", "/api/v1/exports/download/"+tt.job.ID, tok, nil)
			r.checkError(t, tt.wantStatus, tt.wantCode, "")
		})
	}

	t.Run("completed", func(t *testing.T) {
		t.Parallel()
		r := e.do(t, "GET", "/api/v1/exports/download/"+completed.ID, tok, nil)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if !bytes.Equal(r.body, content) {
			t.Errorf("body = %q, want %q", r.body, content)
		}
		if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Errorf("Content-Type = %q", ct)
		}
		if cl := r.header.Get("Content-Length"); cl != fmt.Sprint(len(content)) {
			t.Errorf("Content-Length = %q, want %d", cl, len(content))
		}
		if got := r.header.Get("X-Content-SHA256"); got != hex.EncodeToString(sum[:]) {
			t.Errorf("X-Content-SHA256 = %q", got)
		}
		if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
		}
		disp, params, err := mime.ParseMediaType(r.header.Get("Content-Disposition"))
		if err != nil || disp != "attachment" || params["filename"] != "catalogue été.csv" {
			t.Errorf("Content-Disposition = %q (%v): %q %v", r.header.Get("Content-Disposition"), err, disp, params)
		}
	})
}

func TestUnknownRoutesAndOps(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs())
	tok := token(t, "alice", auth.PermReadExports, auth.PermWriteExports)

	e.do(t, "GET", "/nope", tok, nil).checkError(t, 404, "not_found", "")
	e.do(t, "GET", "/api/v1/exports/a/b/c", tok, nil).checkError(t, 404, "not_found", "")
	e.do(t, "GET", "/api/v2/exports", tok, nil).checkError(t, 404, "not_found", "")
	e.do(t, "DELETE", "/api/v1/exports/create", tok, nil).checkError(t, 405, "method_not_allowed", "")

	if r := e.do(t, "GET", "/healthz", "", nil); r.status != 200 || r.json(t)["status"] != "ok" {
		t.Errorf("/healthz: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/", "", nil); r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("/: %d %s", r.status, r.header.Get("Content-Type"))
	}
	r := e.do(t, "GET", "/metrics", "", nil)
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	// The requests above were counted by route template, method and code.
	for _, want := range []string{
		`http_requests_total{code="404",method="GET",route="unmatched"} 3`,
		`http_requests_total{code="200",method="GET",route="/healthz"} 1`,
		`http_request_duration_seconds_count{method="GET",route="/healthz"} 1`,
	} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(r.body, "http_"))
		}
	}
	// A job request is counted by its route template, never by its id.
	id := uuid.NewString()
	e.do(t, "GET", "/api/v1/exports/"+id, tok, nil)
	r = e.do(t, "GET", "/metrics", "", nil)
	if !bytes.Contains(r.body, []byte(`http_requests_total{code="404",method="GET",route="/api/v1/exports/{id}"} 1`)) ||
		bytes.Contains(r.body, []byte(id)) {
		t.Errorf("/metrics after a job request:\n%s", grepLines(r.body, "http_requests_total"))
	}
}

func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestAcceptedJobIsCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs())
	if r := e.do(t, "POST", "/api/v1/exports/csv/products", token(t, "alice", auth.PermWriteExports), []byte(`{}`)); r.status != 202 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r := e.do(t, "GET", "/metrics", "", nil)
	if !bytes.Contains(r.body, []byte(`export_jobs_requested_total{entity="products",format="csv"} 1`)) {
		t.Errorf("/metrics:\n%s", grepLines(r.body, "export_jobs"))
	}
}

func TestInternalErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	completed := sampleJob(jobstore.StatusCompleted)
	completed.File = &events.Object{Key: "products/x.csv", ContentType: "text/csv", FileName: "x.csv"}
	tests := []struct {
		name   string
		method string
		path   string
		setup  func(*fakeJobs)
		opts   []envOpt
	}{
		{name: "create", method: "POST", path: "/api/v1/exports/csv/products", setup: func(f *fakeJobs) { f.createErr = errRevealing }},
		{name: "get", method: "GET", path: "/api/v1/exports/" + completed.ID, setup: func(f *fakeJobs) { f.getErr = errRevealing }},
		{name: "progress", method: "GET", path: "/api/v1/exports/progress/" + completed.ID, setup: func(f *fakeJobs) { f.getErr = errRevealing }},
		{name: "list", method: "GET", path: "/api/v1/exports", setup: func(f *fakeJobs) { f.listErr = errRevealing }},
		{name: "download", method: "GET", path: "/api/v1/exports/download/" + completed.ID, setup: func(*fakeJobs) {},
			opts: []envOpt{func(d *api.Deps) { d.Objects = failingStore{Store: d.Objects, err: errRevealing} }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			jobs := newFakeJobs(completed)
			tt.setup(jobs)
			e := newEnv(t, jobs, tt.opts...)
			var body []byte
			if tt.method == "POST" {
				body = []byte(`{}`)
			}
			r := e.do(t, tt.method, tt.path, token(t, "alice", auth.PermReadExports, auth.PermWriteExports), body)
			r.checkError(t, 500, "internal", "")
			for _, secret := range []string{"hunter2", "10.0.0.7", "password"} {
				if bytes.Contains(r.body, []byte(secret)) {
					t.Errorf("500 body leaks %q: %s", secret, r.body)
				}
			}
			if tt.name == "create" && e.notified.Load() != 0 {
				t.Error("Notify called although the job was not recorded")
			}
		})
	}
}

// TestCreateStoresParsedFilters: the poison request of issue 10 (600 KB of U+2028 padding
// around a number) is accepted as the number it means: the job records the parsed filter, so
// its ExportRequested stays small. A request whose event would still be too large is refused
// with 413 before anything is stored.
func TestCreateStoresParsedFilters(t *testing.T) {
	t.Parallel()
	jobs := newFakeJobs()
	e := newEnv(t, jobs)
	pad := strings.Repeat("\u2028", 500) // the test server takes 4 KiB bodies
	body := []byte(`{"filters": {"price_min": "` + pad + `5` + pad + `", "status": "active", "include_subcategories": "true"}}`)
	r := e.do(t, "POST", "/api/v1/exports/csv/products", token(t, "alice", auth.PermWriteExports), body)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d: %.200s", r.status, r.body)
	}
	created := jobs.createdRequests()
	if len(created) != 1 {
		t.Fatalf("created %d", len(created))
	}
	f := created[0].Filters
	if f["price_min"] != 5.0 || f["status"] != "active" || f["include_subcategories"] != true {
		t.Errorf("stored filters %#v, want the parsed values", f)
	}
	env, err := events.Wrap(created[0])
	if err != nil || len(env.Data) > 512 {
		t.Errorf("the request's event is %d bytes (%v)", len(env.Data), err)
	}

	jobs.createErr = fmt.Errorf("inserting: %w", jobstore.ErrEventTooLarge)
	r = e.do(t, "POST", "/api/v1/exports/csv/products", token(t, "alice", auth.PermWriteExports), nil)
	r.checkError(t, http.StatusRequestEntityTooLarge, "request_too_large", "")
}

// sameJSON compares two values as their JSON: what a job stores and shows.
func sameJSON(a, b any) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
}
