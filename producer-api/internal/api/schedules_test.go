package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
	"github.com/productsmanager/exportplatform/pkg/schedstore"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
)

// scheduleEnv is the API with the real schedules' repository on a throwaway database, and a
// clock the test sets.
func scheduleEnv(t *testing.T, now time.Time) *env {
	t.Helper()
	pool := pgdbtest.NewDatabase(t, "apischedules")
	if err := jobstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return newEnv(t, newFakeJobs(), func(d *api.Deps) {
		d.Schedules = schedstore.New(pool)
		d.Now = func() time.Time { return now }
	})
}

const nightly = `{"name": "Nightly active products", "schedule_type": "cron", "cron_expression": "0 2 * * *",
	"timezone": "Europe/Paris", "export_config": {"entity": "products", "format": "csv", "fields": ["sku", "name"],
	"filters": {"status": "active"}}}`

func TestScheduleBadInputs(t *testing.T) {
	t.Parallel()
	e := scheduleEnv(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	w := token(t, "alice", auth.PermReadExports, auth.PermWriteExports)
	base := map[string]any{}
	if err := json.Unmarshal([]byte(nightly), &base); err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) []byte {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	cfg := func(k string, v any) map[string]any {
		c := map[string]any{"entity": "products", "format": "csv"}
		c[k] = v
		return c
	}
	tests := []struct {
		name  string
		body  []byte
		field string
	}{
		{"no name", with("name", ""), "name"},
		{"name too long", with("name", strings.Repeat("n", 201)), "name"},
		{"unknown type", with("schedule_type", "weekly"), "schedule_type"},
		{"bad cron", with("cron_expression", "61 * * * *"), "cron_expression"},
		{"six fields", with("cron_expression", "0 0 2 * * *"), "cron_expression"},
		{"TZ prefix", with("cron_expression", "TZ=Europe/Paris 0 2 * * *"), "cron_expression"},
		{"CRON_TZ empty (robfig panics)", with("cron_expression", "CRON_TZ="), "cron_expression"},
		{"TZ empty (robfig panics)", with("cron_expression", "TZ="), "cron_expression"},
		{"@every", with("cron_expression", "@every 5m"), "cron_expression"},
		{"never fires", with("cron_expression", "0 0 30 2 *"), "cron_expression"},
		{"interval on a cron", with("interval_minutes", 5), "interval_minutes"},
		{"interval zero", []byte(`{"name": "x", "schedule_type": "interval", "interval_minutes": 0, "export_config": {"entity": "products", "format": "csv"}}`), "interval_minutes"},
		{"interval too long", []byte(`{"name": "x", "schedule_type": "interval", "interval_minutes": 525601, "export_config": {"entity": "products", "format": "csv"}}`), "interval_minutes"},
		{"interval not a number", []byte(`{"name": "x", "schedule_type": "interval", "interval_minutes": "5", "export_config": {"entity": "products", "format": "csv"}}`), "interval_minutes"},
		{"interval huge", []byte(`{"name": "x", "schedule_type": "interval", "interval_minutes": 1e30, "export_config": {"entity": "products", "format": "csv"}}`), "interval_minutes"},
		{"unknown zone", with("timezone", "Mars/Olympus"), "timezone"},
		{"Local zone", with("timezone", "Local"), "timezone"},
		{"max_retries", with("max_retries", 11), "max_retries"},
		{"negative retries", with("max_retries", -1), "max_retries"},
		{"retry delay", with("retry_delay_seconds", 86401), "retry_delay_seconds"},
		{"misfire policy", with("misfire_policy", "catch_all"), "misfire_policy"},
		{"overlap policy", with("overlap_policy", "parallel"), "overlap_policy"},
		{"no export_config", with("export_config", nil), "export_config"},
		{"unknown entity", with("export_config", map[string]any{"entity": "orders", "format": "csv"}), "export_config.entity"},
		{"unknown format", with("export_config", map[string]any{"entity": "products", "format": "pdf"}), "export_config.format"},
		{"unknown field", with("export_config", cfg("fields", []string{"sku", "colour"})), "export_config.fields"},
		{"unknown filter", with("export_config", cfg("filters", map[string]any{"colour": "red"})), "export_config.filters.colour"},
		{"bad filter value", with("export_config", cfg("filters", map[string]any{"price_min": "cheap"})), "export_config.filters.price_min"},
		{"option of another format", with("export_config", cfg("options", map[string]any{"sheets": []string{"products"}})), "export_config.options.sheets"},
		{"unknown key in export_config", with("export_config", cfg("colour", "red")), "export_config.colour"},
		{"platform", with("platform_id", "google"), "platform_id"},
		{"unknown key", with("colour", "red"), "colour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := e.do(t, http.MethodPost, "/api/v1/exports/schedules", w, tt.body)
			code := "invalid_argument"
			if r.json(t)["error"].(map[string]any)["code"] == "invalid_body" {
				code = "invalid_body"
			}
			r.checkError(t, http.StatusBadRequest, code, tt.field)
		})
	}
	if r := e.do(t, http.MethodGet, "/api/v1/exports/schedules", w, nil); r.status != http.StatusOK || !strings.Contains(string(r.body), `"items":[]`) {
		t.Fatalf("a refused schedule was stored: %d %s", r.status, r.body)
	}
}

func TestScheduleLifecycle(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC) // the day before Paris springs forward
	e := scheduleEnv(t, now)
	w := token(t, "alice", auth.PermReadExports, auth.PermWriteExports)
	ro := token(t, "rita", auth.PermReadExports, auth.PermManageExports) // reads alice's schedule
	if r := e.do(t, http.MethodPost, "/api/v1/exports/schedules", ro, []byte(nightly)); r.status != http.StatusForbidden {
		t.Fatalf("create with READ_EXPORTS only = %d", r.status)
	}
	r := e.do(t, http.MethodPost, "/api/v1/exports/schedules", w, []byte(nightly))
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	var s struct {
		ID            string     `json:"id"`
		Enabled       bool       `json:"enabled"`
		NextRunAt     *time.Time `json:"next_run_at"`
		Owner         string     `json:"owner"`
		MisfirePolicy string     `json:"misfire_policy"`
		OverlapPolicy string     `json:"overlap_policy"`
		Stats         struct {
			Runs int `json:"runs"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatal(err)
	}
	// 02:00 does not exist in Paris on 2026-03-29: the first instant after the gap, 03:00 CEST.
	if !s.Enabled || s.Owner != "alice" || s.MisfirePolicy != "run_once" || s.OverlapPolicy != "skip" ||
		s.NextRunAt == nil || !s.NextRunAt.Equal(time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)) {
		t.Fatalf("created = %s", r.body)
	}
	path := "/api/v1/exports/schedules/" + s.ID
	r = e.do(t, http.MethodGet, path+"/next?count=3", ro, nil)
	var next struct {
		Runs []struct {
			At    time.Time `json:"at"`
			Local string    `json:"local"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(r.body, &next); err != nil || len(next.Runs) != 3 {
		t.Fatalf("next = %d %s", r.status, r.body)
	}
	if next.Runs[0].Local != "2026-03-29T03:00:00+02:00" || next.Runs[1].Local != "2026-03-30T02:00:00+02:00" {
		t.Fatalf("next local times = %s", r.body)
	}
	for _, q := range []string{"?count=0", "?count=1001", "?count=x", "?cnt=3"} {
		e.do(t, http.MethodGet, path+"/next"+q, ro, nil).checkError(t, http.StatusBadRequest, "invalid_argument", strings.Split(strings.TrimPrefix(q, "?"), "=")[0])
	}
	// GET, change, PUT back: the read-only keys are accepted.
	r = e.do(t, http.MethodGet, path, ro, nil)
	m := r.json(t)
	m["cron_expression"] = "30 6 * * 1-5"
	m["misfire_policy"] = "skip"
	body, _ := json.Marshal(m)
	r = e.do(t, http.MethodPut, path, w, body)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"cron_expression":"30 6 * * 1-5"`) ||
		!strings.Contains(string(r.body), `"next_run_at":"2026-03-30T04:30:00Z"`) {
		t.Fatalf("put = %d %s", r.status, r.body)
	}
	m["id"] = "00000000-0000-0000-0000-000000000000"
	body, _ = json.Marshal(m)
	e.do(t, http.MethodPut, path, w, body).checkError(t, http.StatusBadRequest, "invalid_argument", "id")
	// Toggle off and on.
	r = e.do(t, http.MethodPost, path+"/toggle", w, nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"enabled":false`) || !strings.Contains(string(r.body), `"next_run_at":null`) {
		t.Fatalf("toggle off = %d %s", r.status, r.body)
	}
	r = e.do(t, http.MethodPost, path+"/toggle", w, []byte(`{"enabled": false}`))
	if !strings.Contains(string(r.body), `"enabled":false`) {
		t.Fatalf("toggle to false again flipped it: %s", r.body)
	}
	// Run now: a job of the schedule, owned by its owner, even while disabled.
	r = e.do(t, http.MethodPost, path+"/run", w, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("run now = %d %s", r.status, r.body)
	}
	job := r.json(t)["job"].(map[string]any)
	if job["schedule_id"] != s.ID || job["requested_by"] != "alice" || job["scheduled_for"] == nil {
		t.Fatalf("run-now job = %v", job)
	}
	r = e.do(t, http.MethodGet, path+"/runs", ro, nil)
	var runs struct {
		Items []struct {
			Trigger string   `json:"trigger"`
			Status  string   `json:"status"`
			JobIDs  []string `json:"job_ids"`
		} `json:"items"`
	}
	if err := json.Unmarshal(r.body, &runs); err != nil || len(runs.Items) != 1 || runs.Items[0].Trigger != "manual" ||
		runs.Items[0].JobIDs[0] != job["id"] {
		t.Fatalf("runs = %d %s", r.status, r.body)
	}
	e.do(t, http.MethodGet, path+"/runs?status=bogus", ro, nil).checkError(t, http.StatusBadRequest, "invalid_argument", "status")
	e.do(t, http.MethodGet, path+"/runs?cursor=bogus", ro, nil).checkError(t, http.StatusBadRequest, "invalid_argument", "cursor")
	r = e.do(t, http.MethodGet, path, ro, nil)
	if !strings.Contains(string(r.body), `"runs":1`) {
		t.Fatalf("stats after run now: %s", r.body)
	}
	// Lists and filters.
	if r = e.do(t, http.MethodGet, "/api/v1/exports/schedules?enabled=true", ro, nil); !strings.Contains(string(r.body), `"items":[]`) {
		t.Fatalf("enabled=true lists a disabled schedule: %s", r.body)
	}
	if r = e.do(t, http.MethodGet, "/api/v1/exports/schedules?enabled=false&limit=1", ro, nil); !strings.Contains(string(r.body), s.ID) {
		t.Fatalf("enabled=false = %s", r.body)
	}
	e.do(t, http.MethodGet, "/api/v1/exports/schedules?enabled=maybe", ro, nil).checkError(t, http.StatusBadRequest, "invalid_argument", "enabled")
	e.do(t, http.MethodGet, "/api/v1/exports/schedules?colour=red", ro, nil).checkError(t, http.StatusBadRequest, "invalid_argument", "colour")
	e.do(t, http.MethodGet, "/api/v1/exports/schedules?owner=%00", ro, nil).checkError(t, http.StatusBadRequest, "invalid_argument", "owner")
	e.do(t, http.MethodGet, "/api/v1/exports/schedules?platform_id=%ff", ro, nil).checkError(t, http.StatusBadRequest, "invalid_argument", "platform_id")
	// Delete.
	if r = e.do(t, http.MethodDelete, path, w, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete = %d %s", r.status, r.body)
	}
	for _, p := range []string{path, path + "/next", path + "/runs"} {
		e.do(t, http.MethodGet, p, ro, nil).checkError(t, http.StatusNotFound, "not_found", "")
	}
	e.do(t, http.MethodPost, path+"/run", w, nil).checkError(t, http.StatusNotFound, "not_found", "")
	e.do(t, http.MethodGet, "/api/v1/exports/schedules/not-a-uuid", ro, nil).checkError(t, http.StatusNotFound, "not_found", "")
}

func TestSchedulePreview(t *testing.T) {
	t.Parallel()
	e := scheduleEnv(t, time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC))
	ro := token(t, "rita", auth.PermReadExports)
	r := e.do(t, http.MethodPost, "/api/v1/exports/schedules/preview", ro, []byte(`{"cron_expression": "30 2 * * *", "count": 2}`))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"local":"2026-10-25T02:30:00+02:00"`) ||
		!strings.Contains(string(r.body), `"local":"2026-10-26T02:30:00+01:00"`) {
		t.Fatalf("preview = %d %s", r.status, r.body)
	}
	r = e.do(t, http.MethodPost, "/api/v1/exports/schedules/preview", ro, []byte(`{"schedule_type": "interval", "interval_minutes": 90}`))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"at":"2026-10-24T13:30:00Z"`) {
		t.Fatalf("interval preview = %d %s", r.status, r.body)
	}
	for body, field := range map[string]string{
		`{"cron_expression": "0 0 30 2 *"}`:                    "cron_expression",
		`{"cron_expression": "* * * * *", "timezone": "Mars"}`: "timezone",
		`{"cron_expression": "* * * * *", "count": 1001}`:      "count",
		`{}`: "schedule_type",
	} {
		e.do(t, http.MethodPost, "/api/v1/exports/schedules/preview", ro, []byte(body)).checkError(t, http.StatusBadRequest, "invalid_argument", field)
	}
}
