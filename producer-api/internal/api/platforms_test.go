package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
	"github.com/productsmanager/exportplatform/pkg/platformstore"
	"github.com/productsmanager/exportplatform/pkg/schedstore"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
)

// platformEnv is the API with the real platforms' and schedules' repositories on a throwaway
// database, and a fake jobs' repository that keeps the requests it is given.
func platformEnv(t *testing.T) (*env, *fakeJobs) {
	t.Helper()
	pool := pgdbtest.NewDatabase(t, "apiplatforms")
	if err := jobstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	jobs := newFakeJobs()
	return newEnv(t, jobs, func(d *api.Deps) {
		d.Schedules, d.Platforms = schedstore.New(pool), platformstore.New(pool)
		d.Now = func() time.Time { return time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC) }
	}), jobs
}

type platformView struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	Type          string          `json:"type"`
	DefaultConfig json.RawMessage `json:"default_config"`
	Destination   struct {
		Type string `json:"type"`
	} `json:"destination"`
	ScheduleIDs []string `json:"schedule_ids"`
	Owner       string   `json:"owner"`
	Version     int64    `json:"version"`
}

func (r response) platform(t *testing.T, status int) platformView {
	t.Helper()
	var p platformView
	if r.status != status || json.Unmarshal(r.body, &p) != nil {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return p
}

// TestPlatformsAPI: create, read, list, update and delete, each for its owner only (another
// user gets 404 and an empty list); names unique per owner; a platform a schedule uses is a
// 409 naming it; every bad input a 400 naming its field.
func TestPlatformsAPI(t *testing.T) {
	t.Parallel()
	e, _ := platformEnv(t)
	alice := token(t, "alice", auth.PermReadExports, auth.PermWriteExports)
	bob := token(t, "bob", auth.PermReadExports, auth.PermWriteExports)
	body := map[string]any{"name": "Google Shopping FR", "type": "google_shopping",
		"default_config": map[string]any{"compression": "gzip", "filters": map[string]any{"brand": "Acme"}}}
	p := e.do(t, http.MethodPost, "/api/v1/exports/platforms", alice, mustJSON(t, body)).platform(t, http.StatusCreated)
	if p.Owner != "alice" || p.Type != "google_shopping" || p.Destination.Type != "storage" || p.ScheduleIDs == nil || p.Version != 1 {
		t.Errorf("created %+v", p)
	}
	if got := e.do(t, http.MethodGet, "/api/v1/exports/platforms/"+p.ID, alice, nil).platform(t, http.StatusOK); got.Name != p.Name {
		t.Errorf("get %+v", got)
	}
	e.do(t, http.MethodGet, "/api/v1/exports/platforms/"+p.ID, bob, nil).checkError(t, http.StatusNotFound, "not_found", "")
	e.do(t, http.MethodDelete, "/api/v1/exports/platforms/"+p.ID, bob, nil).checkError(t, http.StatusNotFound, "not_found", "")
	if r := e.do(t, http.MethodGet, "/api/v1/exports/platforms", bob, nil); !strings.Contains(string(r.body), `"items":[]`) {
		t.Errorf("bob's list: %s", r.body)
	}
	e.do(t, http.MethodPost, "/api/v1/exports/platforms", alice, mustJSON(t, body)).checkError(t, http.StatusConflict, "name_taken", "name")
	e.do(t, http.MethodPost, "/api/v1/exports/platforms", bob, mustJSON(t, body)).platform(t, http.StatusCreated)

	body["name"] = "Google Shopping BE"
	if got := e.do(t, http.MethodPut, "/api/v1/exports/platforms/"+p.ID, alice, mustJSON(t, body)).platform(t, http.StatusOK); got.Name != "Google Shopping BE" || got.Version != 2 {
		t.Errorf("updated %+v", got)
	}

	// A schedule tied to it, without entity or format of its own (the platform gives them).
	sched := `{"name": "nightly feed", "cron_expression": "0 2 * * *", "platform_id": "` + p.ID + `", "export_config": {}}`
	r := e.do(t, http.MethodPost, "/api/v1/exports/schedules", alice, []byte(sched))
	var s struct{ ID string }
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &s) != nil {
		t.Fatalf("schedule on a platform: %d %s", r.status, r.body)
	}
	e.do(t, http.MethodPost, "/api/v1/exports/schedules", bob, []byte(sched)).checkError(t, http.StatusBadRequest, "invalid_argument", "platform_id")
	if got := e.do(t, http.MethodGet, "/api/v1/exports/platforms/"+p.ID, alice, nil).platform(t, http.StatusOK); !reflect.DeepEqual(got.ScheduleIDs, []string{s.ID}) {
		t.Errorf("schedule_ids %v", got.ScheduleIDs)
	}
	r = e.do(t, http.MethodDelete, "/api/v1/exports/platforms/"+p.ID, alice, nil)
	r.checkError(t, http.StatusConflict, "platform_in_use", "")
	if !strings.Contains(string(r.body), s.ID) {
		t.Errorf("the 409 does not name the schedule: %s", r.body)
	}
	// A second schedule names product fields; a change to the suppliers would make its runs
	// refused: a 409 naming it, and the platform stays as it was.
	sched2 := `{"name": "prices", "cron_expression": "0 3 * * *", "platform_id": "` + p.ID + `", "export_config": {"fields": ["sku", "price"]}}`
	var s2 struct{ ID string }
	if r := e.do(t, http.MethodPost, "/api/v1/exports/schedules", alice, []byte(sched2)); r.status != http.StatusCreated || json.Unmarshal(r.body, &s2) != nil {
		t.Fatalf("second schedule: %d %s", r.status, r.body)
	}
	suppliers := map[string]any{"name": "Google Shopping BE", "type": "custom", "default_config": map[string]any{"entity": "suppliers", "format": "csv"}}
	r = e.do(t, http.MethodPut, "/api/v1/exports/platforms/"+p.ID, alice, mustJSON(t, suppliers))
	r.checkError(t, http.StatusConflict, "breaks_schedule", "default_config.fields")
	if !strings.Contains(string(r.body), s2.ID) || strings.Contains(string(r.body), s.ID) {
		t.Errorf("the 409 does not name the second schedule alone: %s", r.body)
	}
	if got := e.do(t, http.MethodGet, "/api/v1/exports/platforms/"+p.ID, alice, nil).platform(t, http.StatusOK); got.Type != "google_shopping" || got.Version != 2 {
		t.Errorf("a refused change was saved: %+v", got)
	}
	if r := e.do(t, http.MethodDelete, "/api/v1/exports/schedules/"+s2.ID, alice, nil); r.status != http.StatusNoContent {
		t.Fatalf("schedule delete %d", r.status)
	}
	// The first schedule exports the suppliers happily: the change is taken.
	if got := e.do(t, http.MethodPut, "/api/v1/exports/platforms/"+p.ID, alice, mustJSON(t, suppliers)).platform(t, http.StatusOK); got.Version != 3 {
		t.Errorf("the change once nothing breaks: %+v", got)
	}
	if r := e.do(t, http.MethodDelete, "/api/v1/exports/schedules/"+s.ID, alice, nil); r.status != http.StatusNoContent {
		t.Fatalf("schedule delete %d", r.status)
	}
	if r := e.do(t, http.MethodDelete, "/api/v1/exports/platforms/"+p.ID, alice, nil); r.status != http.StatusNoContent {
		t.Fatalf("platform delete %d %s", r.status, r.body)
	}

	for _, c := range []struct {
		body  string
		field string
	}{
		{`{"type": "custom", "default_config": {"entity": "products", "format": "csv"}}`, "name"},
		{`{"name": "x", "type": "ebay"}`, "type"},
		{`{"name": "x", "type": "custom", "default_config": {"format": "csv"}}`, "default_config.entity"},
		{`{"name": "x", "type": "google_shopping", "default_config": {"colour": "red"}}`, "default_config.colour"},
		{`{"name": "x", "type": "google_shopping", "default_config": {"headers": {"colour": "couleur"}}}`, "default_config.headers.colour"},
		{`{"name": "x", "type": "google_shopping", "default_config": {"compression": "rar"}}`, "default_config.compression"},
		{`{"name": "x", "type": "google_shopping", "destination": {"type": "sftp", "password": "hunter2"}}`, "destination.password"},
		{`{"name": "x", "type": "google_shopping", "destination": {"type": "s3", "endpoint": "s3.example", "bucket": "bkt", "access_key_ref": "AKIA", "secret_key_ref": "env:S"}}`, "destination.access_key_ref"},
		{`{"name": "x", "type": "google_shopping", "owner": "mallory", "id": "x"}`, ""}, // read-only keys ignored: created
	} {
		r := e.do(t, http.MethodPost, "/api/v1/exports/platforms", alice, []byte(c.body))
		if c.field == "" {
			if r.status != http.StatusCreated || !strings.Contains(string(r.body), `"owner":"alice"`) {
				t.Errorf("%s: %d %s", c.body, r.status, r.body)
			}
			continue
		}
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s, want a 400 naming %s", c.body, r.status, r.body, c.field)
		}
	}
}

// TestRequestOverPlatform: an export request naming a platform runs with the platform's
// defaults (its template's columns and titles, its own filters and compression) under the
// request's own keys, and the job records the merged configuration and the platform.
func TestRequestOverPlatform(t *testing.T) {
	t.Parallel()
	e, jobs := platformEnv(t)
	alice := token(t, "alice", auth.PermReadExports, auth.PermWriteExports)
	p := e.do(t, http.MethodPost, "/api/v1/exports/platforms", alice, mustJSON(t, map[string]any{
		"name": "Google", "type": "google_shopping",
		"default_config": map[string]any{"compression": "gzip", "filters": map[string]any{"brand": "Acme"}, "headers": map[string]string{"name": "title_fr"}},
	})).platform(t, http.StatusCreated)
	r := e.do(t, http.MethodPost, "/api/v1/exports/create", alice, mustJSON(t, map[string]any{
		"platform_id": p.ID, "fields": []string{"sku", "name", "price"}, "filters": map[string]any{"brand": nil, "price_max": 50},
	}))
	if r.status != http.StatusAccepted {
		t.Fatalf("request over a platform: %d %s", r.status, r.body)
	}
	got := jobs.created[len(jobs.created)-1]
	if got.Entity != "products" || got.Format != "csv" || got.Compression != "gzip" || got.FileName != "products.csv.gz" ||
		!reflect.DeepEqual(got.Fields, []string{"sku", "name", "price"}) ||
		!reflect.DeepEqual(got.Headers, map[string]string{"sku": "id", "name": "title_fr", "ean": "gtin", "stock": "quantity", "category_path": "product_type"}) ||
		got.Options["delimiter"] != "tab" || got.Filters["status"] != "active" || got.Filters["brand"] != nil || got.Filters["price_max"] == nil ||
		got.PlatformID == nil || *got.PlatformID != p.ID {
		t.Errorf("merged request %+v", got)
	}
	// Another user's platform is unknown to the caller.
	bob := token(t, "bob", auth.PermReadExports, auth.PermWriteExports)
	e.do(t, http.MethodPost, "/api/v1/exports/create", bob, mustJSON(t, map[string]any{"platform_id": p.ID})).
		checkError(t, http.StatusBadRequest, "invalid_argument", "platform_id")
	// A request's own webhook is checked like a platform's and recorded on the job.
	e.do(t, http.MethodPost, "/api/v1/exports/csv/products", alice, mustJSON(t, map[string]any{
		"webhook": map[string]any{"url": "ftp://x", "secret_ref": "env:S"}})).checkError(t, http.StatusBadRequest, "invalid_argument", "webhook.url")
	if r := e.do(t, http.MethodPost, "/api/v1/exports/csv/products", alice, mustJSON(t, map[string]any{
		"webhook": map[string]any{"url": "https://erp.example/hook", "secret_ref": "env:S", "events": []string{"completed"}}})); r.status != http.StatusAccepted {
		t.Fatalf("request with its own webhook: %d %s", r.status, r.body)
	}
	if got := jobs.created[len(jobs.created)-1]; got.Webhook == nil || got.Webhook.URL != "https://erp.example/hook" {
		t.Errorf("the job's webhook %+v", got.Webhook)
	}
	// Titles of columns a request leaves out do no harm; a title on no field is a 400.
	if r := e.do(t, http.MethodPost, "/api/v1/exports/csv/products", alice, mustJSON(t, map[string]any{"platform_id": p.ID, "fields": []string{"sku"}})); r.status != http.StatusAccepted {
		t.Errorf("fewer columns than the platform titles: %d %s", r.status, r.body)
	}
	e.do(t, http.MethodPost, "/api/v1/exports/csv/products", alice, mustJSON(t, map[string]any{"platform_id": p.ID, "headers": map[string]string{"colour": "c"}})).
		checkError(t, http.StatusBadRequest, "invalid_argument", "headers.colour")
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
