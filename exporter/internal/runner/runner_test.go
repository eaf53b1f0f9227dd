package runner_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
)

var defaultProductColumns = []string{"id", "sku", "name", "description", "brand", "ean", "price", "currency",
	"stock", "status", "category_id", "category_name", "supplier_id", "supplier_name", "created_at", "updated_at"}

func TestRunCompletes(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	tests := []struct {
		name      string
		edit      func(*events.ExportRequested)
		wantRows  int
		wantCols  []string
		delimiter rune
		// check inspects the parsed records (header first).
		check func(t *testing.T, recs [][]string)
	}{
		{
			name: "defaults", edit: func(*events.ExportRequested) {}, wantRows: catalogRows, wantCols: defaultProductColumns, delimiter: ',',
			check: func(t *testing.T, recs [][]string) {
				// SKU-00001: formula-looking name and supplier name are escaped, the path keeps its quotes.
				row := recs[1]
				if row[1] != "SKU-00001" || row[2] != `'=HYPERLINK("http://x")` || row[13] != `'=cmd|' /C calc'!A0` ||
					row[11] != `Audio; "Hi-Fi"` || row[6] != "1.25" {
					t.Errorf("row 1 = %q", row)
				}
				if row := recs[2]; row[2] != "two\nlines" || row[4] != "Acme" {
					t.Errorf("row 2 = %q", row)
				}
				if row := recs[3]; row[3] != "'-50% promo;\ttab" || row[2] != "Casque 🎧 sans fil" {
					t.Errorf("row 3 = %q", row)
				}
				// SKU-00005: no category (NULL is an empty cell); SKU-00007: no primary supplier.
				if row := recs[5]; row[10] != "" || row[11] != "" {
					t.Errorf("row 5 = %q", row)
				}
				if row := recs[7]; row[2] != "cr\nlf" || row[12] != "" || row[13] != "" {
					t.Errorf("row 7 = %q", row)
				}
			},
		},
		{
			name: "fields, filters and options",
			edit: func(j *events.ExportRequested) {
				j.Fields = []string{"sku", "price", "name", "weight_grams", "attributes"}
				j.Filters = map[string]any{"status": "active", "brand": "Beta|Pipe"}
				j.Options = map[string]any{"delimiter": ";", "decimal": ",", "line_ending": "crlf", "formula_escape": false}
				j.FileName = "active (beta).csv"
			},
			// active: i % 3 == 0; Beta|Pipe: i odd, so i ≡ 3 (mod 6).
			wantRows: catalogRows / 6, wantCols: []string{"sku", "price", "name", "weight_grams", "attributes"}, delimiter: ';',
			check: func(t *testing.T, recs [][]string) {
				want := []string{"SKU-00003", "3,75", "Casque 🎧 sans fil", "300", `{"n": 3, "q": "a \"quoted\", value"}`}
				if !slices.Equal(recs[1], want) {
					t.Errorf("row 1 = %q, want %q", recs[1], want)
				}
				if recs[2][0] != "SKU-00009" || recs[2][2] != "=HYPERLINK(\"http://x\")" || recs[2][3] != "100" {
					t.Errorf("row 2 = %q (formula_escape off)", recs[2])
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv()
			store := objectstore.NewMemory()
			job, lease := e.newJob(t, 2, tt.edit)
			e.runner(t, db, store).Run(t.Context(), job, lease)

			evs := e.jobs.eventsOf(t, job.ID)
			started := eventsOfType[events.ExportStarted](evs)
			completed := eventsOfType[events.ExportCompleted](evs)
			if len(started) != 1 || len(completed) != 1 {
				t.Fatalf("events %#v, want one Started and one Completed", evs)
			}
			if _, ok := evs[len(evs)-1].(events.ExportCompleted); !ok {
				t.Errorf("the last event is %T, want the ExportCompleted", evs[len(evs)-1])
			}
			if s := started[0]; s.JobID != job.ID || s.RowsTotal != int64(tt.wantRows) || s.Attempt != 2 ||
				s.Worker != "worker-1" || s.Entity != "products" || s.Format != "csv" {
				t.Errorf("started = %+v, want rows_total %d", s, tt.wantRows)
			}

			key := fmt.Sprintf("products/%s/%d/%s", job.ID, lease.Attempt, job.FileName)
			keys, _ := store.List(t.Context(), "")
			if !slices.Equal(keys, []string{key}) {
				t.Fatalf("stored keys %q, want [%s]", keys, key)
			}
			body, info, err := store.Get(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(body)
			body.Close()
			sum := sha256.Sum256(data)
			want := events.Object{Bucket: "exports", Key: key, SizeBytes: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
				ContentType: "text/csv; charset=utf-8", FileName: job.FileName}
			c := completed[0]
			if c.Object != want {
				t.Errorf("completed object = %+v\nwant               %+v", c.Object, want)
			}
			if info.ContentType != want.ContentType {
				t.Errorf("stored content type %q", info.ContentType)
			}
			if c.JobID != job.ID || c.Rows != int64(tt.wantRows) || c.RequestedBy != "alice" ||
				c.FinishedAt.Before(c.StartedAt) || c.StartedAt.IsZero() || c.ExpiresAt == nil {
				t.Errorf("completed = %+v", c)
			}
			done := e.get(t, job.ID)
			if done.Status != jobstore.StatusCompleted || done.File == nil || *done.File != want || done.LeaseOwner != nil || done.Charged != 1 {
				t.Errorf("job after the run: %+v", done)
			}
			progress := eventsOfType[events.ExportProgress](evs)
			if len(progress) == 0 {
				t.Error("no progress was reported")
			} else if last := progress[len(progress)-1]; last.RowsDone != int64(tt.wantRows) || last.Phase != events.PhaseUploading ||
				last.RowsTotal != int64(tt.wantRows) || last.Progress >= 100 || last.Attempt != 2 || last.BytesWritten != int64(len(data)) {
				t.Errorf("last progress = %+v", last)
			}

			// The file: a BOM, then CSV that a standard reader parses into header + rows.
			if !bytes.HasPrefix(data, []byte("\uFEFF")) {
				t.Fatalf("no BOM: %q", data[:min(len(data), 20)])
			}
			r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\uFEFF"))))
			r.Comma = tt.delimiter
			recs, err := r.ReadAll()
			if err != nil {
				t.Fatalf("stored CSV does not parse: %v", err)
			}
			if len(recs) != tt.wantRows+1 || !slices.Equal(recs[0], tt.wantCols) {
				t.Fatalf("%d records, header %q; want %d rows, header %q", len(recs), recs[0], tt.wantRows, tt.wantCols)
			}
			tt.check(t, recs)
		})
	}
}

func TestRunInvalidRequestFails(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	tests := []struct {
		name string
		edit func(*events.ExportRequested)
	}{
		{"unknown field", func(j *events.ExportRequested) { j.Fields = []string{"sku", "colour"} }},
		{"unknown filter", func(j *events.ExportRequested) { j.Filters = map[string]any{"colour": "red"} }},
		{"bad option", func(j *events.ExportRequested) { j.Options = map[string]any{"delimiter": "::"} }},
		{"path as file name", func(j *events.ExportRequested) { j.FileName = "../x.csv" }},
		{"unknown entity", func(j *events.ExportRequested) { j.Entity = "orders" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv()
			store := objectstore.NewMemory()
			job, lease := e.newJob(t, 1, tt.edit) // the first attempt: a permanent failure is not retried
			e.runner(t, db, store).Run(t.Context(), job, lease)

			failed := eventsOfType[events.ExportFailed](e.jobs.eventsOf(t, job.ID))
			if len(failed) != 1 {
				t.Fatalf("failed events %#v, want one ExportFailed", failed)
			}
			if f := failed[0]; f.JobID != job.ID || f.Code != "invalid_request" || f.Message == "" ||
				f.Attempt != 1 || f.RequestedBy != "alice" || f.FailedAt.IsZero() {
				t.Errorf("ExportFailed %+v, want invalid_request", f)
			}
			if j := e.get(t, job.ID); j.Status != jobstore.StatusFailed || j.Error == nil || j.Error.Code != "invalid_request" {
				t.Errorf("job %s %+v", j.Status, j.Error)
			}
			if n := e.jobs.calls("release"); n != 0 {
				t.Errorf("released %d times: a permanent failure must not be retried", n)
			}
			if keys, _ := store.List(t.Context(), ""); len(keys) != 0 {
				t.Errorf("stored %q", keys)
			}
		})
	}
}

func TestRunLeaseLost(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	e := newEnv()
	e.cfg.LeaseTTL = 30 * time.Millisecond // renewed every 10 ms
	e.jobs.failNext("renew", -1, job.ErrLeaseLost)
	store := newGatedStore() // the upload never progresses on its own
	j, lease := e.newJob(t, 1, nil)
	done := runAsync(t.Context(), e.runner(t, db, store), j, lease)
	waitDone(t, done, "its lease was lost")

	if n := e.jobs.calls("renew"); n == 0 {
		t.Error("the lease was never renewed")
	}
	for _, name := range []string{"release", "fail", "complete"} {
		if n := e.jobs.calls(name); n != 0 {
			t.Errorf("%s sent %d times: the new owner's job must be left alone", name, n)
		}
	}
	if keys, _ := store.List(t.Context(), ""); len(keys) != 0 {
		t.Errorf("stored %q after losing the lease", keys)
	}
}

func TestRunRenewsTheLease(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	e := newEnv()
	e.cfg.LeaseTTL = 30 * time.Millisecond
	store := newGatedStore()
	j, lease := e.newJob(t, 1, nil)
	done := runAsync(t.Context(), e.runner(t, db, store), j, lease)
	waitClosed(t, store.entered, "the upload to start")
	// The upload is stuck; the heartbeat keeps the lease (a renewal every LeaseTTL/3).
	for range 3 {
		waitClosed(t, e.jobs.renewedCh, "a lease renewal")
	}
	close(store.gate)
	waitDone(t, done, "the upload was let through")
	if got := e.get(t, j.ID); got.Status != jobstore.StatusCompleted {
		t.Errorf("job %s: renewals must not disturb the job", got.Status)
	}
}

// TestRunUploadFails: a failed attempt is handed back charged, with its real error; once the
// attempts are spent, the next claim fails the job with that error (not "workers stopped").
func TestRunUploadFails(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	e := newEnv()
	store := failingStore{objectstore.NewMemory()}
	j, lease := e.newJob(t, 1, nil)
	e.runner(t, db, store).Run(t.Context(), j, lease)

	got := e.get(t, j.ID)
	if got.Status != jobstore.StatusQueued || got.LeaseOwner != nil || got.Charged != 1 || got.LastError == nil ||
		!strings.Contains(got.LastError.Message, "while storing the file") || strings.Contains(got.LastError.Message, "connection reset") {
		t.Fatalf("after a failed upload: %s charged %d last error %+v; want queued, charged, with the failed step (not its internals)",
			got.Status, got.Charged, got.LastError)
	}
	if evs := e.jobs.eventsOf(t, j.ID); len(eventsOfType[events.ExportFailed](evs)) != 0 || len(eventsOfType[events.ExportCompleted](evs)) != 0 {
		t.Errorf("events %+v: a failed attempt is retried, not announced", evs)
	}
	// Attempts spent: the next claim fails the job with the real error.
	if _, _, err := e.jobs.Claim(t.Context(), j.ID, jobstore.ClaimOptions{Owner: "w2", TTL: time.Minute, MaxAttempts: 1}); !errors.Is(err, jobstore.ErrNotClaimed) {
		t.Fatalf("claim past the last attempt: %v", err)
	}
	failed := e.get(t, j.ID)
	if failed.Status != jobstore.StatusFailed || !strings.Contains(failed.Error.Message, "while storing the file") {
		t.Errorf("exhausted job: %s %+v", failed.Status, failed.Error)
	}
	if keys, _ := store.List(t.Context(), ""); len(keys) != 0 {
		t.Errorf("stored %q", keys)
	}
}

// TestRunUploadStalls: storage that stops reading fails the attempt after UploadStall, with a
// message saying so, instead of holding the job for ever.
func TestRunUploadStalls(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	e := newEnv()
	e.cfg.UploadStall = 200 * time.Millisecond
	store := newGatedStore() // reads nothing until its context ends
	j, lease := e.newJob(t, 1, nil)
	done := runAsync(t.Context(), e.runner(t, db, store), j, lease)
	waitDone(t, done, "the upload stalled")
	got := e.get(t, j.ID)
	if got.Status != jobstore.StatusQueued || got.LastError == nil || !strings.Contains(got.LastError.Message, "stopped accepting data") {
		t.Errorf("after a stalled upload: %s %+v", got.Status, got.LastError)
	}
	if keys, _ := store.List(t.Context(), ""); len(keys) != 0 {
		t.Errorf("stored %q", keys)
	}
}

// TestRunShutdownHandsOver: a shutdown hands the job back refunded: it costs no attempt.
func TestRunShutdownHandsOver(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	e := newEnv()
	store := newGatedStore()
	j, lease := e.newJob(t, 1, nil)
	ctx, shutdown := context.WithCancel(t.Context())
	done := runAsync(ctx, e.runner(t, db, store), j, lease)
	waitClosed(t, store.entered, "the upload to start")
	shutdown()
	waitDone(t, done, "shutdown")

	got := e.get(t, j.ID)
	if got.Status != jobstore.StatusQueued || got.Charged != 0 || got.LeaseOwner != nil || got.LastError != nil {
		t.Errorf("after a shutdown: %s charged %d owner %v error %+v; want queued, refunded", got.Status, got.Charged, got.LeaseOwner, got.LastError)
	}
	if evs := e.jobs.eventsOf(t, j.ID); len(eventsOfType[events.ExportFailed](evs))+len(eventsOfType[events.ExportCompleted](evs)) != 0 {
		t.Errorf("shutdown announced %+v", evs)
	}
	if keys, _ := store.List(t.Context(), ""); len(keys) != 0 {
		t.Errorf("stored %q after an aborted upload", keys)
	}
}

// TestRunRetriesCompletion: the database away when the completion is recorded: the runner
// retries (keeping its lease) until it is recorded, with its ExportCompleted, once.
func TestRunRetriesCompletion(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	e := newEnv()
	e.cfg.LeaseTTL = 300 * time.Millisecond // renewed every 100 ms, while the completion waits
	e.jobs.failNext("complete", 2, errors.New("connection refused"))
	store := objectstore.NewMemory()
	j, lease := e.newJob(t, 1, nil)
	e.runner(t, db, store).Run(t.Context(), j, lease)

	completed := eventsOfType[events.ExportCompleted](e.jobs.eventsOf(t, j.ID))
	if len(completed) != 1 || e.jobs.calls("complete") != 3 {
		t.Fatalf("completed %+v after %d tries: the completion must be retried until recorded", completed, e.jobs.calls("complete"))
	}
	if e.jobs.calls("renew") == 0 {
		t.Error("the lease was not renewed while retrying the completion")
	}
	if keys, _ := store.List(t.Context(), ""); len(keys) != 1 || keys[0] != completed[0].Object.Key {
		t.Errorf("stored %q", keys)
	}
}

func TestRunOnSmallCatalogReportsProgressAndCount(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	e := newEnv()
	j, lease := e.newJob(t, 1, func(r *events.ExportRequested) {
		r.Filters = map[string]any{"search": "SKU-0000"} // SKU-00001 .. SKU-00009
	})
	e.runner(t, db, objectstore.NewMemory()).Run(t.Context(), j, lease)
	evs := e.jobs.eventsOf(t, j.ID)
	started := eventsOfType[events.ExportStarted](evs)
	completed := eventsOfType[events.ExportCompleted](evs)
	if len(started) != 1 || started[0].RowsTotal != 9 || len(completed) != 1 || completed[0].Rows != 9 {
		t.Errorf("started %+v completed %+v, want 9 rows", started, completed)
	}
	if want := fmt.Sprintf("products/%s/1/catalog.csv", j.ID); len(completed) == 1 && completed[0].Object.Key != want {
		t.Errorf("key %q, want %q", completed[0].Object.Key, want)
	}
}

// uploadingStore reads the whole file, then holds the upload's completion until its context
// ends or gate is closed: the "uploading" phase.
type uploadingStore struct {
	*objectstore.Memory
	gate, read chan struct{}
}

func (s uploadingStore) Put(ctx context.Context, key string, r io.Reader, contentType string) (objectstore.Info, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return objectstore.Info{}, err
	}
	close(s.read)
	select {
	case <-s.gate:
	case <-ctx.Done():
		return objectstore.Info{}, context.Cause(ctx) // the multipart upload is aborted
	}
	return s.Memory.Put(ctx, key, bytes.NewReader(data), contentType)
}

// TestRunCancelled: a cancel seen while the rows are written, while the upload completes, or
// just after the file was stored (the completion refused) stops the job promptly and leaves no
// file; the runner neither fails nor gives back the job, whose ExportCancelled the canceller
// wrote.
func TestRunCancelled(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	tests := []struct {
		name string
		// start returns the store and a channel closed once the job is in the phase to cancel
		// in; release lets a stalled store go on after the cancel.
		start func() (store objectstore.Store, inPhase <-chan struct{}, release func())
		phase string
	}{
		{name: "writing", phase: "writing", start: func() (objectstore.Store, <-chan struct{}, func()) {
			s := newGatedStore() // the upload reads nothing: the writer blocks mid-rows
			return s, s.entered, func() {}
		}},
		{name: "uploading", phase: "uploading", start: func() (objectstore.Store, <-chan struct{}, func()) {
			s := uploadingStore{objectstore.NewMemory(), make(chan struct{}), make(chan struct{})}
			return s, s.read, func() {}
		}},
		{name: "stored before the cancel was seen", start: func() (objectstore.Store, <-chan struct{}, func()) {
			s := uploadingStore{objectstore.NewMemory(), make(chan struct{}), make(chan struct{})}
			return s, s.read, func() { close(s.gate) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv()
			e.cfg.CancelPoll = 10 * time.Millisecond
			if tt.phase == "" {
				e.cfg.CancelPoll = time.Hour // the cancel lands between the upload and the completion
			}
			store, inPhase, release := tt.start()
			j, lease := e.newJob(t, 1, nil)
			done := runAsync(t.Context(), e.runner(t, db, store), j, lease)
			waitClosed(t, inPhase, "the job to reach its phase")
			if _, err := e.jobs.Cancel(t.Context(), j.ID, "bob"); err != nil {
				t.Fatal(err)
			}
			release()
			waitDone(t, done, "the cancel")

			if keys, _ := store.(interface {
				List(context.Context, string) ([]string, error)
			}).List(t.Context(), ""); len(keys) != 0 {
				t.Errorf("a cancelled job left %q in the bucket", keys)
			}
			evs := e.jobs.eventsOf(t, j.ID)
			if c, f := eventsOfType[events.ExportCompleted](evs), eventsOfType[events.ExportFailed](evs); len(c)+len(f) != 0 {
				t.Errorf("a cancelled job announced %+v %+v", c, f)
			}
			if _, ok := evs[len(evs)-1].(events.ExportCancelled); !ok {
				t.Errorf("the last event is %T, want the ExportCancelled (nothing after the terminal event)", evs[len(evs)-1])
			}
			if n := e.jobs.calls("release") + e.jobs.calls("fail"); n != 0 {
				t.Errorf("%d releases or failures: a cancelled job is neither failed nor retried", n)
			}
			uploading := false
			for _, p := range eventsOfType[events.ExportProgress](evs) {
				if p.Phase == events.PhaseUploading {
					uploading = true
				}
			}
			if want := tt.phase != "writing"; uploading != want {
				t.Errorf("an uploading progress report was recorded: %v, want %v", uploading, want)
			}
		})
	}
}

// TestRunLeaseLostAtTheCompletion: an attempt whose lease went to another attempt while it
// stored its file announces nothing and removes its file (its own key: the other attempt's is
// untouched).
func TestRunLeaseLostAtTheCompletion(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	e := newEnv() // LeaseTTL 10s: no renewal during this short job
	e.jobs.failNext("complete", -1, job.ErrLeaseLost)
	store := objectstore.NewMemory()
	j, lease := e.newJob(t, 1, nil)
	other := fmt.Sprintf("products/%s/2/%s", j.ID, j.FileName)
	if _, err := store.Put(t.Context(), other, strings.NewReader("attempt 2"), "text/csv"); err != nil {
		t.Fatal(err)
	}
	e.runner(t, db, store).Run(t.Context(), j, lease)
	if c := eventsOfType[events.ExportCompleted](e.jobs.eventsOf(t, j.ID)); len(c) != 0 {
		t.Errorf("announced %+v without the lease", c)
	}
	if keys, _ := store.List(t.Context(), ""); !slices.Equal(keys, []string{other}) {
		t.Errorf("bucket holds %q, want only the other attempt's %s", keys, other)
	}
}
