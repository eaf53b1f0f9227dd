package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"
)

// exportSpec is one export job to measure: POST /api/v1/exports/{format}/products with body.
type exportSpec struct {
	name   string // prefix of the figures
	format string
	body   map[string]any
	noRSS  bool // the stack's exporter does not run it: no memory figure
}

// progressView is GET /api/v1/exports/progress/{task_id}.
type progressView struct {
	Status    string          `json:"status"`
	Progress  float64         `json:"progress"`
	RowsDone  int64           `json:"rows_done"`
	RowsTotal int64           `json:"rows_total"`
	Error     json.RawMessage `json:"error"`
}

// jobView is the part of a job the bench reads.
type jobView struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	RowsDone   int64      `json:"rows_done"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	File       *struct {
		SizeBytes int64 `json:"size_bytes"`
	} `json:"file"`
}

// apiError renders a CONTRACT error body, or the raw body when it is not one.
func apiError(status int, body []byte) error {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		msg := fmt.Sprintf("HTTP %d %s: %s", status, e.Error.Code, e.Error.Message)
		if e.Error.Field != "" {
			msg += " (field " + e.Error.Field + ")"
		}
		return errors.New(msg)
	}
	return fmt.Errorf("HTTP %d: %s", status, bytes.TrimSpace(truncate(body, 300)))
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return append(b[:n:n], "…"...)
	}
	return b
}

// call does one API request with the token and decodes a JSON answer into out (when not nil);
// an answer other than want is an error.
func (b *bench) call(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.cfg.apiURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %w", method, path, apiError(resp.StatusCode, raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decoding %q: %w", method, path, truncate(raw, 200), err)
		}
	}
	return nil
}

// othersRunning counts jobs queued or running that are not ours: they share the exporter and
// the database with the measurement.
func (b *bench) othersRunning(ctx context.Context, ours string) int {
	n := 0
	for _, st := range []string{"running", "queued"} {
		var list struct {
			Items []jobView `json:"items"`
		}
		if err := b.call(ctx, http.MethodGet, "/api/v1/exports?limit=500&status="+st, nil, http.StatusOK, &list); err != nil {
			b.logf("listing %s jobs: %v", st, err)
			continue
		}
		for _, j := range list.Items {
			if j.ID != ours {
				n++
			}
		}
	}
	return n
}

// exportResult is what one measured export gave.
type exportResult struct {
	rows    int64
	seconds float64
	rss     rssResult
	rssOK   bool
}

// benchExport measures one export job and prints its figures; false when it did not complete.
func (b *bench) benchExport(ctx context.Context, spec exportSpec) (exportResult, bool) {
	var res exportResult
	if n := b.othersRunning(ctx, ""); n > 0 {
		b.logf("%s: WARNING: %d other job(s) queued or running: they share the exporter (figures disturbed, queue wait counted)", spec.name, n)
	}
	pid, err := b.servicePID("exporter")
	var mon *rssMonitor
	switch {
	case spec.noRSS:
	case err != nil:
		b.logf("%s: exporter peak RSS not measured: %v", spec.name, err)
	default:
		mon = startRSS(pid, b.cfg.sample)
	}
	stopRSS := func() {
		if mon != nil {
			res.rss, res.rssOK = mon.Stop(), true
			mon = nil
		}
	}
	defer stopRSS()

	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	body := spec.body
	if body == nil {
		body = map[string]any{}
	}
	path := "/api/v1/exports/" + spec.format + "/products"
	t0 := time.Now()
	var created struct {
		TaskID string `json:"task_id"`
	}
	if err := b.call(ctx, http.MethodPost, path, body, http.StatusAccepted, &created); err != nil {
		b.fail(spec.name, err.Error())
		return res, false
	}
	if created.TaskID == "" {
		b.fail(spec.name, "POST "+path+": no task_id in the answer")
		return res, false
	}
	b.logf("%s: job %s posted", spec.name, created.TaskID)

	p, err := b.waitJob(ctx, spec.name, created.TaskID)
	elapsed := time.Since(t0)
	stopRSS()
	if err != nil {
		b.fail(spec.name, err.Error())
		b.abandon(ctx, created.TaskID)
		return res, false
	}
	res.rows = p.RowsDone
	if res.rows == 0 {
		res.rows = p.RowsTotal
	}
	res.seconds = elapsed.Seconds()

	var job jobView
	if err := b.call(ctx, http.MethodGet, "/api/v1/exports/"+created.TaskID, nil, http.StatusOK, &job); err != nil {
		b.logf("%s: reading the job: %v", spec.name, err)
	}
	b.emit(spec.name+"_rows", float64(res.rows), "rows", 0)
	b.emit(spec.name+"_rows_per_s", float64(res.rows)/res.seconds, "rows/s", 0)
	b.emit(spec.name+"_seconds", res.seconds, "s", 2)
	if job.File != nil {
		b.emit(spec.name+"_file_bytes", float64(job.File.SizeBytes), "bytes", 0)
	} else {
		b.logf("%s: the job carries no file size", spec.name)
	}
	if res.rssOK {
		b.emit(spec.name+"_exporter_peak_rss_mib", res.rss.peakMiB(), "MiB", 1)
		b.emit(spec.name+"_exporter_temp_disk_mib", float64(res.rss.tmpBytes)/(1<<20), "MiB", 1)
		b.logf("%s: exporter pid %d: %s", spec.name, pid, res.rss)
	}
	if job.StartedAt != nil && job.FinishedAt != nil {
		srv := job.FinishedAt.Sub(*job.StartedAt)
		b.logf("%s: server side started→finished %.2fs (%.0f rows/s); client side POST→completed %.2fs",
			spec.name, srv.Seconds(), float64(res.rows)/srv.Seconds(), res.seconds)
	}
	if n := b.othersRunning(ctx, created.TaskID); n > 0 {
		b.logf("%s: WARNING: %d other job(s) queued or running at the end", spec.name, n)
	}
	if !b.cfg.keep {
		b.remove(ctx, created.TaskID)
	}
	return res, true
}

// waitJob polls the job's progress every cfg.poll until it ends.
func (b *bench) waitJob(ctx context.Context, name, id string) (progressView, error) {
	t := time.NewTicker(b.cfg.poll)
	defer t.Stop()
	lastLog := time.Now()
	for {
		var p progressView
		if err := b.call(ctx, http.MethodGet, "/api/v1/exports/progress/"+id, nil, http.StatusOK, &p); err != nil {
			if ctx.Err() != nil {
				return p, fmt.Errorf("job %s not finished after %s (last: %s %d/%d rows)", id, b.cfg.timeout, p.Status, p.RowsDone, p.RowsTotal)
			}
			return p, err
		}
		switch p.Status {
		case "completed":
			return p, nil
		case "failed", "cancelled", "expired":
			msg := strings.TrimSpace(string(p.Error))
			if msg == "" || msg == "null" {
				msg = "(no error given)"
			}
			return p, fmt.Errorf("job %s %s: %s", id, p.Status, msg)
		}
		if time.Since(lastLog) >= 5*time.Second {
			b.logf("%s: %s %d/%d rows (%.0f%%)", name, p.Status, p.RowsDone, p.RowsTotal, p.Progress)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return p, fmt.Errorf("job %s not finished after %s (last: %s %d/%d rows)", id, b.cfg.timeout, p.Status, p.RowsDone, p.RowsTotal)
		case <-t.C:
		}
	}
}

// abandon cancels a job that the bench gave up on, so it does not keep loading the exporter
// during the next measurement (best effort: cancel may not exist yet).
func (b *bench) abandon(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := b.call(ctx, http.MethodPost, "/api/v1/exports/"+id+"/cancel", nil, http.StatusOK, nil); err != nil {
		b.logf("cancelling job %s: %v", id, err)
	}
}

// remove deletes a measured job and its file (best effort), so repeated runs do not fill S3.
func (b *bench) remove(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := b.call(ctx, http.MethodDelete, "/api/v1/exports/"+id, nil, http.StatusNoContent, nil); err != nil {
		b.logf("deleting job %s (its file stays in S3; -keep silences this): %v", id, err)
	}
}

// bench100k measures the export of about 100,000 products in one format on a warm exporter
// (warmUp; its 100k peak RSS is what the 1M peak is compared with): price_max at the
// percentile that selects 100,000 rows (deterministic for a given catalog).
func (b *bench) bench100k(ctx context.Context, name, format string, body map[string]any) {
	conn, err := b.catalogConn(ctx)
	if err != nil {
		b.fail(name, err.Error())
		return
	}
	frac := min(1, 100000/float64(b.count))
	var priceMax string
	var want int64
	err = conn.QueryRow(ctx, `SELECT percentile_disc($1::float8) WITHIN GROUP (ORDER BY price)::text FROM products`, frac).Scan(&priceMax)
	if err == nil {
		err = conn.QueryRow(ctx, `SELECT count(*) FROM products WHERE price <= $1::numeric`, priceMax).Scan(&want)
	}
	_ = conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		b.fail(name, fmt.Sprintf("choosing the price_max filter: %v", err))
		return
	}
	b.logf("%s: filter price_max=%s selects %d products", name, priceMax, want)
	body = maps.Clone(body)
	if body == nil {
		body = map[string]any{}
	}
	body["filters"] = map[string]any{"price_max": json.Number(priceMax)}
	b.warmUp(ctx, name, body)
	b.benchExport(ctx, exportSpec{name: name, format: format, body: body})
}

// warmUp runs unmeasured exports of body in each measured format (CSV, JSON Lines, XLSX) on an
// exporter process that has run none under this bench: the 100k peak the issue compares with
// is a warm exporter's (its pools, connections and heap grown by earlier jobs of any format,
// as the 1M runs that follow find it), not the first job's of a fresh process.
func (b *bench) warmUp(ctx context.Context, name string, body map[string]any) {
	pid, err := b.servicePID("exporter")
	if err != nil || pid == b.warmPID {
		return
	}
	for _, f := range []struct {
		format string
		opts   map[string]any
	}{{"csv", nil}, {"json", map[string]any{"lines": true}}, {"excel", nil}} {
		req := maps.Clone(body)
		if f.opts != nil {
			req["options"] = f.opts
		} else {
			delete(req, "options")
		}
		var created struct {
			TaskID string `json:"task_id"`
		}
		if err := b.call(ctx, http.MethodPost, "/api/v1/exports/"+f.format+"/products", req, http.StatusAccepted, &created); err != nil {
			b.logf("%s: warm-up export: %v", name, err)
			return
		}
		if _, err := b.waitJob(ctx, name+" warm-up", created.TaskID); err != nil {
			b.logf("%s: warm-up export: %v", name, err)
			return
		}
		b.remove(ctx, created.TaskID)
	}
	b.warmPID = pid
	b.logf("%s: exporter pid %d warmed up by an unmeasured 100k export in each format", name, pid)
}
