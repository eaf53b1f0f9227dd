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
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
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
		edit      func(*jobstore.Job)
		wantRows  int
		wantCols  []string
		delimiter rune
		// check inspects the parsed records (header first).
		check func(t *testing.T, recs [][]string)
	}{
		{
			name: "defaults", edit: func(*jobstore.Job) {}, wantRows: catalogRows, wantCols: defaultProductColumns, delimiter: ',',
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
			edit: func(j *jobstore.Job) {
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
			job, lease := newJob(t, 2)
			tt.edit(&job)
			e.runner(t, db, store).Run(t.Context(), job, lease)

			published, sent, topics := e.pub.snapshot()
			if len(published) != 2 {
				t.Fatalf("published %#v, want Started then Completed", published)
			}
			started, ok1 := published[0].(events.ExportStarted)
			completed, ok2 := published[1].(events.ExportCompleted)
			if !ok1 || !ok2 {
				t.Fatalf("published %T then %T, want Started then Completed", published[0], published[1])
			}
			if started.JobID != job.ID || started.RowsTotal != int64(tt.wantRows) || started.Attempt != 2 ||
				started.Worker != "worker-1" || started.Entity != "products" || started.Format != "csv" {
				t.Errorf("started = %+v, want rows_total %d", started, tt.wantRows)
			}
			for _, topic := range topics {
				if topic != events.TopicEvents {
					t.Errorf("event sent to %s", topic)
				}
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
			if completed.Object != want {
				t.Errorf("completed object = %+v\nwant               %+v", completed.Object, want)
			}
			if info.ContentType != want.ContentType {
				t.Errorf("stored content type %q", info.ContentType)
			}
			if completed.JobID != job.ID || completed.Rows != int64(tt.wantRows) || completed.RequestedBy != "alice" ||
				completed.FinishedAt.Before(completed.StartedAt) || completed.StartedAt.IsZero() {
				t.Errorf("completed = %+v", completed)
			}

			releases, applied, _ := e.leases.snapshot()
			if len(applied) != 1 || !reflect.DeepEqual(applied[0], events.Event(completed)) {
				t.Errorf("applied %+v, want the ExportCompleted", applied)
			}
			if len(releases) != 0 {
				t.Errorf("a completed job released its lease: %+v", releases)
			}
			if len(sent) == 0 {
				t.Error("no progress was sent")
			} else if last, ok := sent[len(sent)-1].(events.ExportProgress); !ok || last.RowsDone != int64(tt.wantRows) ||
				last.RowsTotal != int64(tt.wantRows) || last.Progress >= 100 || last.Attempt != 2 || last.BytesWritten != int64(len(data)) {
				t.Errorf("last progress = %+v", sent[len(sent)-1])
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
		edit func(*jobstore.Job)
	}{
		{"unknown field", func(j *jobstore.Job) { j.Fields = []string{"sku", "colour"} }},
		{"unknown filter", func(j *jobstore.Job) { j.Filters = map[string]any{"colour": "red"} }},
		{"bad option", func(j *jobstore.Job) { j.Options = map[string]any{"delimiter": "::"} }},
		{"path as file name", func(j *jobstore.Job) { j.FileName = "../x.csv" }},
		{"unknown entity", func(j *jobstore.Job) { j.Entity = "orders" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv()
			store := objectstore.NewMemory()
			job, lease := newJob(t, 1) // the first attempt: a permanent failure is not retried
			tt.edit(&job)
			e.runner(t, db, store).Run(t.Context(), job, lease)

			published, _, _ := e.pub.snapshot()
			if len(published) != 1 {
				t.Fatalf("published %#v, want one ExportFailed", published)
			}
			failed, ok := published[0].(events.ExportFailed)
			if !ok || failed.JobID != job.ID || failed.Code != "invalid_request" || failed.Message == "" ||
				failed.Attempt != 1 || failed.RequestedBy != "alice" || failed.FailedAt.IsZero() {
				t.Errorf("published %+v, want ExportFailed invalid_request", published[0])
			}
			releases, applied, _ := e.leases.snapshot()
			if len(applied) != 1 || applied[0] != events.Event(failed) {
				t.Errorf("applied %+v, want the ExportFailed", applied)
			}
			if len(releases) != 0 {
				t.Errorf("released %+v: a permanent failure must not be retried", releases)
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
	e.leases.renewErr = jobstore.ErrLeaseLost
	store := newGatedStore() // the upload never progresses on its own
	job, lease := newJob(t, 1)
	done := runAsync(t.Context(), e.runner(t, db, store), job, lease)
	waitDone(t, done, "its lease was lost")

	published, _, _ := e.pub.snapshot()
	for _, ev := range published {
		if _, ok := ev.(events.ExportStarted); !ok {
			t.Errorf("published %T after losing the lease", ev)
		}
	}
	releases, applied, renewals := e.leases.snapshot()
	if renewals == 0 {
		t.Error("the lease was never renewed")
	}
	if len(releases) != 0 || len(applied) != 0 {
		t.Errorf("released %+v, applied %+v: the new owner's lease must be left alone", releases, applied)
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
	job, lease := newJob(t, 1)
	done := runAsync(t.Context(), e.runner(t, db, store), job, lease)
	waitClosed(t, store.entered, "the upload to start")
	// The upload is stuck; the heartbeat keeps the lease (a renewal every LeaseTTL/3).
	for range 3 {
		waitClosed(t, e.leases.renewedCh, "a lease renewal")
	}
	close(store.gate)
	waitDone(t, done, "the upload was let through")
	if got := publishedOf[events.ExportCompleted](e.pub); len(got) != 1 {
		t.Errorf("completed events %+v, want one: renewals must not disturb the job", got)
	}
}

func TestRunUploadFails(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	tests := []struct {
		name       string
		attempt    int
		wantFailed bool
		wantMsg    string
	}{
		{name: "first attempt is given back", attempt: 1},
		{name: "attempt before the last is given back", attempt: 2},
		{name: "last attempt fails the job", attempt: 3, wantFailed: true, wantMsg: "while storing the file"},
		// Attempts 1 to 3 ended without a word (their workers killed): the 4th is not run.
		{name: "beyond the last attempt fails the job unrun", attempt: 4, wantFailed: true, wantMsg: "started 3 times and never finished"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv() // MaxAttempts 3
			store := failingStore{objectstore.NewMemory()}
			job, lease := newJob(t, tt.attempt)
			e.runner(t, db, store).Run(t.Context(), job, lease)

			failed := publishedOf[events.ExportFailed](e.pub)
			releases, applied, _ := e.leases.snapshot()
			if completed := publishedOf[events.ExportCompleted](e.pub); len(completed) != 0 {
				t.Fatalf("completed %+v although the upload failed", completed)
			}
			if tt.wantFailed {
				if len(failed) != 1 || failed[0].Code != "export_failed" || failed[0].Attempt != tt.attempt ||
					!strings.Contains(failed[0].Message, tt.wantMsg) || strings.Contains(failed[0].Message, "connection reset") {
					t.Errorf("failed events %+v, want one export_failed naming the failed step, not its internals", failed)
				}
				if len(applied) != 1 || applied[0] != events.Event(failed[0]) {
					t.Errorf("applied %+v", applied)
				}
				if len(releases) != 0 {
					t.Errorf("released %+v", releases)
				}
			} else {
				if len(failed) != 0 || len(applied) != 0 {
					t.Errorf("failed %+v, applied %+v: the job must be retried, not failed", failed, applied)
				}
				if len(releases) != 1 || releases[0] != lease {
					t.Errorf("released %+v, want the lease %+v given back", releases, lease)
				}
			}
			if keys, _ := store.List(t.Context(), ""); len(keys) != 0 {
				t.Errorf("stored %q", keys)
			}
		})
	}
}

func TestRunShutdownGivesTheLeaseBack(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	e := newEnv()
	e.cfg.MaxAttempts = 1 // even on the last attempt, a shutdown is not a failure
	store := newGatedStore()
	job, lease := newJob(t, 1)
	ctx, shutdown := context.WithCancel(t.Context())
	done := runAsync(ctx, e.runner(t, db, store), job, lease)
	waitClosed(t, store.entered, "the upload to start")
	shutdown()
	waitDone(t, done, "shutdown")

	if got := publishedOf[events.ExportFailed](e.pub); len(got) != 0 {
		t.Errorf("shutdown published %+v", got)
	}
	if got := publishedOf[events.ExportCompleted](e.pub); len(got) != 0 {
		t.Errorf("shutdown published %+v", got)
	}
	releases, applied, _ := e.leases.snapshot()
	if len(releases) != 1 || releases[0] != lease {
		t.Errorf("released %+v, want %+v", releases, lease)
	}
	if len(applied) != 0 {
		t.Errorf("applied %+v", applied)
	}
	if keys, _ := store.List(t.Context(), ""); len(keys) != 0 {
		t.Errorf("stored %q after an aborted upload", keys)
	}
}

// flakyCompletion fails the first publishes of ExportCompleted, as Kafka would while away.
type flakyCompletion struct {
	*fakePublisher
	failures int
}

func (p *flakyCompletion) Publish(ctx context.Context, topic string, evs ...events.Event) error {
	p.mu.Lock()
	if _, ok := evs[0].(events.ExportCompleted); ok && p.failures > 0 {
		p.failures--
		p.mu.Unlock()
		return errors.New("kafka: not enough replicas")
	}
	p.mu.Unlock()
	return p.fakePublisher.Publish(ctx, topic, evs...)
}

func TestRunRetriesCompletion(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	e := newEnv()
	pub := &flakyCompletion{fakePublisher: e.pub, failures: 1}
	store := objectstore.NewMemory()
	job, lease := newJob(t, 1)
	r := newRunnerWith(t, e, db, store, pub)
	r.Run(t.Context(), job, lease)

	completed := publishedOf[events.ExportCompleted](e.pub)
	releases, applied, renewals := e.leases.snapshot()
	if len(completed) != 1 || len(applied) != 1 || !reflect.DeepEqual(applied[0], events.Event(completed[0])) {
		t.Fatalf("completed %+v, applied %+v: ExportCompleted must be retried until acknowledged, then applied", completed, applied)
	}
	if renewals == 0 {
		t.Error("the lease was not renewed while retrying the completion")
	}
	if len(releases) != 0 {
		t.Errorf("released %+v", releases)
	}
	if keys, _ := store.List(t.Context(), ""); len(keys) != 1 {
		t.Errorf("stored %q", keys)
	}
}

func TestRunOnSmallCatalogReportsProgressAndCount(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	e := newEnv()
	job, lease := newJob(t, 1)
	job.Filters = map[string]any{"search": "SKU-0000"} // SKU-00001 .. SKU-00009
	e.runner(t, db, objectstore.NewMemory()).Run(t.Context(), job, lease)
	started := publishedOf[events.ExportStarted](e.pub)
	completed := publishedOf[events.ExportCompleted](e.pub)
	if len(started) != 1 || started[0].RowsTotal != 9 || len(completed) != 1 || completed[0].Rows != 9 {
		t.Errorf("started %+v completed %+v, want 9 rows", started, completed)
	}
	if want := fmt.Sprintf("products/%s/1/catalog.csv", job.ID); len(completed) == 1 && completed[0].Object.Key != want {
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
// just after the file was stored (the seal refused) stops the job promptly and leaves no file;
// the runner neither fails nor gives back the job, whose ExportCancelled the canceller wrote.
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
				e.cfg.CancelPoll = time.Hour // the cancel lands between the upload and the seal
			}
			store, inPhase, release := tt.start()
			job, lease := newJob(t, 1)
			done := runAsync(t.Context(), e.runner(t, db, store), job, lease)
			waitClosed(t, inPhase, "the job to reach its phase")
			e.leases.cancel()
			release()
			waitDone(t, done, "the cancel")

			if keys, _ := store.(interface {
				List(context.Context, string) ([]string, error)
			}).List(t.Context(), ""); len(keys) != 0 {
				t.Errorf("a cancelled job left %q in the bucket", keys)
			}
			if c := publishedOf[events.ExportCompleted](e.pub); len(c) != 0 {
				t.Errorf("a cancelled job published %+v", c)
			}
			releases, applied, _ := e.leases.snapshot()
			if f := publishedOf[events.ExportFailed](e.pub); len(f) != 0 || len(applied) != 0 || len(releases) != 0 {
				t.Errorf("failed %+v, applied %+v, released %+v: a cancelled job is neither failed nor retried", f, applied, releases)
			}
			_, sent, _ := e.pub.snapshot()
			uploading := false
			for _, ev := range sent {
				if p, ok := ev.(events.ExportProgress); ok && p.Phase == events.PhaseUploading {
					uploading = true
				}
			}
			if want := tt.phase != "writing"; uploading != want {
				t.Errorf("an uploading progress report was sent: %v, want %v", uploading, want)
			}
		})
	}
}

// TestRunLeaseLostAtTheSeal: an attempt whose lease went to another attempt while it stored its
// file announces nothing and removes its file (its own key: the other attempt's is untouched).
func TestRunLeaseLostAtTheSeal(t *testing.T) {
	t.Parallel()
	db := newCatalog(t)
	e := newEnv() // LeaseTTL 10s: no renewal during this short job; the seal is the first check
	e.leases.renewErr = jobstore.ErrLeaseLost
	store := objectstore.NewMemory()
	job, lease := newJob(t, 1)
	other := fmt.Sprintf("products/%s/2/%s", job.ID, job.FileName)
	if _, err := store.Put(t.Context(), other, strings.NewReader("attempt 2"), "text/csv"); err != nil {
		t.Fatal(err)
	}
	e.runner(t, db, store).Run(t.Context(), job, lease)
	if c := publishedOf[events.ExportCompleted](e.pub); len(c) != 0 {
		t.Errorf("published %+v without the lease", c)
	}
	if keys, _ := store.List(t.Context(), ""); !slices.Equal(keys, []string{other}) {
		t.Errorf("bucket holds %q, want only the other attempt's %s", keys, other)
	}
}
