package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"testing"
	"time"
)

type platformView struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	ScheduleIDs []string `json:"schedule_ids"`
}

// createPlatform POSTs a platform as the e2e writer and returns it.
func (s stack) createPlatform(t *testing.T, body map[string]any) platformView {
	t.Helper()
	code, b := s.do(t, http.MethodPost, "/api/v1/exports/platforms", s.writer(t), body)
	var p platformView
	if code != http.StatusCreated || json.Unmarshal(b, &p) != nil {
		t.Fatalf("POST platform = %d %s", code, b)
	}
	t.Cleanup(func() { s.do(t, http.MethodDelete, "/api/v1/exports/platforms/"+p.ID, s.writer(t), nil) })
	return p
}

// TestTemplatePlatformExport: a Google Shopping platform gives the channel's columns, titles,
// tab separator and active-only filter; its own defaults (gzip) and the request's keys merge
// over them; a schedule tied to it runs with the merged configuration; a platform in use
// cannot be deleted.
func TestTemplatePlatformExport(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, formatsCatalog)
	p := s.createPlatform(t, map[string]any{"name": unique("Google FR"), "type": "google_shopping",
		"default_config": map[string]any{"compression": "gzip", "headers": map[string]string{"name": "title_fr"}}})

	a := s.requestExport(t, s.writer(t), "csv", "products", map[string]any{"platform_id": p.ID, "filters": map[string]any{"price_max": 20}})
	s.waitStatus(t, a.JobID, "completed", time.Minute)
	gz := s.download(t, a.JobID)
	cmd := exec.Command("gzip", "-dc")
	cmd.Stdin = bytes.NewReader(gz)
	plain, err := cmd.Output()
	if err != nil {
		t.Fatalf("gzip -dc: %v", err)
	}
	r := csv.NewReader(bytes.NewReader(plain))
	r.Comma = '\t'
	header, err := r.Read()
	want := []string{"id", "title_fr", "description", "brand", "gtin", "price", "currency", "quantity", "product_type"}
	if err != nil || !slices.Equal(header, want) {
		t.Fatalf("header %q %v, want %q", header, err, want)
	}
	n := 0
	for {
		if _, err := r.Read(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
	}
	conn := s.catalogConn(t)
	if w := sqlOne[int64](t, conn, `SELECT count(*) FROM products WHERE status = 'active' AND price <= 20`); int64(n) != w {
		t.Errorf("%d rows, SQL counts %d active products at most 20", n, w)
	}
	var job struct {
		PlatformID  *string           `json:"platform_id"`
		Headers     map[string]string `json:"headers"`
		Compression string            `json:"compression"`
		Filters     map[string]any    `json:"filters"`
	}
	_, b := s.do(t, http.MethodGet, "/api/v1/exports/"+a.JobID, s.writer(t), nil)
	if json.Unmarshal(b, &job) != nil || job.PlatformID == nil || *job.PlatformID != p.ID || job.Compression != "gzip" ||
		job.Headers["ean"] != "gtin" || job.Filters["status"] != "active" {
		t.Errorf("the job does not record the merged configuration: %s", b)
	}

	// A schedule tied to the platform, run now.
	code, b := s.do(t, http.MethodPost, "/api/v1/exports/schedules", s.writer(t), map[string]any{
		"name": unique("feed"), "cron_expression": "0 3 * * *", "platform_id": p.ID, "enabled": false,
		"export_config": map[string]any{"fields": []string{"sku", "price"}, "compression": "zip"}})
	var sc struct{ ID string }
	if code != http.StatusCreated || json.Unmarshal(b, &sc) != nil {
		t.Fatalf("schedule: %d %s", code, b)
	}
	defer s.do(t, http.MethodDelete, "/api/v1/exports/schedules/"+sc.ID, s.writer(t), nil)
	code, b = s.do(t, http.MethodPost, "/api/v1/exports/schedules/"+sc.ID+"/run", s.writer(t), nil)
	var run acceptedJob
	if code != http.StatusAccepted || json.Unmarshal(b, &run) != nil {
		t.Fatalf("run now: %d %s", code, b)
	}
	s.waitStatus(t, run.JobID, "completed", time.Minute)
	if j := s.job(t, run.JobID); j.File == nil || j.File.FileName != "products.zip" || j.File.ContentType != "application/zip" {
		t.Errorf("scheduled job's file %+v", j.File)
	}
	if code, b := s.do(t, http.MethodDelete, "/api/v1/exports/platforms/"+p.ID, s.writer(t), nil); code != http.StatusConflict || !bytes.Contains(b, []byte(sc.ID)) {
		t.Errorf("deleting a used platform: %d %s", code, b)
	}
}
