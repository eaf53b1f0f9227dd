package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// jobRow is the part of a job row the lifecycle tests watch.
type jobRow struct {
	status, phase string
	attempt       int
	rowsDone      int64
}

func (s stack) exportsConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), s.exportsDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func readJobRow(t *testing.T, conn *pgx.Conn, id string) jobRow {
	t.Helper()
	var r jobRow
	if err := conn.QueryRow(context.Background(), `SELECT status, phase, attempt, rows_done FROM jobs WHERE id = $1`, id).
		Scan(&r.status, &r.phase, &r.attempt, &r.rowsDone); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitRow polls the job row every 2ms until ok holds (the phases of a small export are short).
func waitRow(t *testing.T, conn *pgx.Conn, id, what string, timeout time.Duration, ok func(jobRow) bool) jobRow {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := readJobRow(t, conn, id)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s never %s: last %+v", id, what, r)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// bucket lists what the S3 bucket holds under prefix: objects and unfinished multipart
// uploads (.stack/bin/s3ls, with the stack's S3 settings).
func (s stack) bucket(t *testing.T, prefix string) (objects, uploads []string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(s.root, ".stack/bin/s3ls"), "-prefix", prefix).Output()
	if err != nil {
		t.Fatalf("s3ls %s: %v", prefix, err)
	}
	var l struct{ Objects, Uploads []string }
	if err := json.Unmarshal(out, &l); err != nil {
		t.Fatalf("s3ls output %q: %v", out, err)
	}
	return l.Objects, l.Uploads
}

func (s stack) assertNothingStored(t *testing.T, id string) {
	t.Helper()
	objects, uploads := s.bucket(t, "products/"+id+"/")
	if len(objects)+len(uploads) != 0 {
		t.Errorf("job %s left objects %q and unfinished uploads %q in the bucket", id, objects, uploads)
	}
}

// waitLog waits until the log of an exporter (.stack/logs/NAME.log) has a line with all of
// parts, and returns when it was seen.
func (s stack) waitLog(t *testing.T, name string, timeout time.Duration, parts ...string) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		data, err := os.ReadFile(filepath.Join(s.root, ".stack/logs", name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return time.Now()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s.log has no line with %q after %s", name, parts, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// activeCatalogQueries counts the queries running on products other than conn's own.
func activeCatalogQueries(t *testing.T, conn *pgx.Conn, like string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE $1`, like).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// catalogQueriesGone waits (up to 5 s) until no active catalog query matches like: a query
// cancel reaches PostgreSQL on a connection of its own, so the backend may still be winding
// down when the exporter has already logged its stop. It returns how many remain.
func catalogQueriesGone(t *testing.T, conn *pgx.Conn, like string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := activeCatalogQueries(t, conn, like)
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s stack) cancel(t *testing.T, id string) (int, []byte) {
	t.Helper()
	return s.do(t, http.MethodPost, "/api/v1/exports/"+id+"/cancel", s.writer(t), nil)
}

func (s stack) mustCancel(t *testing.T, id string) time.Time {
	t.Helper()
	code, body := s.cancel(t, id)
	if code != http.StatusOK || !strings.Contains(string(body), `"status":"cancelled"`) {
		t.Fatalf("cancel %s = %d %s", id, code, body)
	}
	return time.Now()
}

// eventsFromStart is a client reading exports.events from the start, read_committed, as a
// downstream system does.
func (s stack) eventsFromStart(t *testing.T) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(s.brokers, ",")...), kgo.ConsumeTopics(events.TopicEvents),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// findEvent reads exports.events from the start until it finds an event of type typ for job.
func (s stack) findEvent(t *testing.T, job string, typ events.Type, timeout time.Duration) events.Envelope {
	t.Helper()
	cl := s.eventsFromStart(t)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no %s for job %s on %s within %s", typ, job, events.TopicEvents, timeout)
		}
		var found *events.Envelope
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != job || found != nil {
				return
			}
			if env, err := parseRecord(r); err == nil && env.Type == typ {
				found = &env
			}
		})
		if found != nil {
			return *found
		}
	}
}

// countEvents reads exports.events from the start (read_committed) until no record came for
// settle, and counts the events of type typ keyed by job: after findEvent saw the first, it
// tells whether there was a second.
func (s stack) countEvents(t *testing.T, job string, typ events.Type, settle time.Duration) int {
	t.Helper()
	cl := s.eventsFromStart(t)
	defer cl.Close()
	n, total := 0, 0
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		ctx, cancel := context.WithTimeout(context.Background(), settle)
		fs := cl.PollFetches(ctx)
		cancel()
		got := 0
		fs.EachRecord(func(r *kgo.Record) {
			got++
			if string(r.Key) != job {
				return
			}
			if env, err := parseRecord(r); err == nil && env.Type == typ {
				n++
			}
		})
		if total += got; got == 0 && total > 0 {
			return n
		}
	}
	t.Fatalf("%s did not go quiet within 2 minutes", events.TopicEvents)
	return 0
}

// TestCancelAtEachPhase: a cancelled job ends cancelled whatever it was doing: queued (it never
// starts), counting (its count query is cancelled), writing (its query and its upload are
// stopped), uploading (the upload is aborted); it leaves nothing in the bucket, and a second
// cancel is a 409.
func TestCancelAtEachPhase(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, 200000)
	conn := s.exportsConn(t)
	catalog := s.catalogConn(t)
	ctx := context.Background()

	t.Run("queued", func(t *testing.T) {
		s.stackCmd(t, "stop", "exporter")
		restarted := false
		t.Cleanup(func() {
			if !restarted {
				s.stackCmd(t, "start", "exporter")
			}
		})
		job := s.requestCSV(t, s.writer(t))
		if r := readJobRow(t, conn, job.JobID); r.phase != "queued" {
			t.Fatalf("with no exporter the job is %+v, want queued", r)
		}
		s.mustCancel(t, job.JobID)
		s.stackCmd(t, "start", "exporter")
		restarted = true
		// The exporter reads the job's ExportRequested and does not start it.
		s.waitLog(t, "exporter", time.Minute, "not claimable", job.JobID)
		if r := readJobRow(t, conn, job.JobID); r.status != "cancelled" || r.attempt != 0 {
			t.Errorf("after the exporter saw it, the job is %+v; want cancelled and never claimed", r)
		}
		s.assertNothingStored(t, job.JobID)
	})

	t.Run("counting", func(t *testing.T) {
		// An exclusive lock on products holds the job in its count.
		tx, err := catalog.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `LOCK TABLE products IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		job := s.requestCSV(t, s.writer(t))
		waitRow(t, conn, job.JobID, "counting", time.Minute, func(r jobRow) bool { return r.phase == "counting" })
		other := s.catalogConn(t)
		deadline := time.Now().Add(time.Minute)
		for activeCatalogQueries(t, other, "%count(*)%FROM products%") == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the job's count query never showed in pg_stat_activity")
			}
			time.Sleep(5 * time.Millisecond)
		}
		at := s.mustCancel(t, job.JobID)
		stopped := s.waitLog(t, "exporter", time.Minute, "export cancelled; stopped", job.JobID)
		t.Logf("counting: the exporter stopped %s after the cancel", stopped.Sub(at).Round(time.Millisecond))
		// Still under the lock: the count was cancelled, not left waiting for it.
		if n := catalogQueriesGone(t, other, "%count(*)%FROM products%"); n != 0 {
			t.Errorf("%d count queries still wait on the catalog after the cancel", n)
		}
		tx.Rollback(ctx)
		s.assertNothingStored(t, job.JobID)
	})

	t.Run("writing", func(t *testing.T) {
		// JSON with relations: a few seconds of rows on 200,000 products.
		job := s.requestExport(t, s.writer(t), "json", "products", map[string]any{"options": map[string]any{"include_relations": true}})
		r := waitRow(t, conn, job.JobID, "writing rows", time.Minute, func(r jobRow) bool {
			return r.phase == "writing" && r.rowsDone > 0 || r.status != "queued" && r.status != "running"
		})
		if r.status != "running" {
			t.Fatalf("the job ended %s before it could be cancelled", r.status)
		}
		at := s.mustCancel(t, job.JobID)
		stopped := s.waitLog(t, "exporter", time.Minute, "export cancelled; stopped", job.JobID)
		t.Logf("writing: cancelled at %d rows; the exporter stopped %s after the cancel", r.rowsDone, stopped.Sub(at).Round(time.Millisecond))
		if n := catalogQueriesGone(t, catalog, "%FROM products%"); n != 0 {
			t.Errorf("%d queries of the cancelled job still run on the catalog", n)
		}
		s.assertNothingStored(t, job.JobID)
		if r := readJobRow(t, conn, job.JobID); r.status != "cancelled" || r.phase != "done" {
			t.Errorf("job row after the cancel: %+v", r)
		}
		// Downstream systems learn it from Kafka, with who cancelled.
		ev, err := events.Decode[events.ExportCancelled](s.findEvent(t, job.JobID, events.TypeCancelled, time.Minute))
		if err != nil || ev.CancelledBy == "" || ev.CancelledAt.IsZero() {
			t.Errorf("ExportCancelled on the bus = %+v, %v", ev, err)
		}
		// Cancelling what is cancelled is a 409 naming its state.
		if code, body := s.cancel(t, job.JobID); code != http.StatusConflict || !strings.Contains(string(body), "already_finished") {
			t.Errorf("second cancel = %d %s, want 409 already_finished", code, body)
		}
	})

	t.Run("uploading", func(t *testing.T) {
		// A second exporter whose one part holds the whole file: the upload happens after the
		// last row, in the uploading phase. The stack's exporter steps aside.
		s.stackCmd(t, "stop", "exporter")
		t.Cleanup(func() { s.stackCmd(t, "start", "exporter") })
		s.startExporterEnv(t, "e2e-uploader", "127.0.0.1:18083", "EXPORTER_PART_SIZE_MIB=512", "EXPORTER_CANCEL_POLL=10ms")
		job := s.requestExport(t, s.writer(t), "json", "products", map[string]any{"options": map[string]any{"include_relations": true}})
		r := waitRow(t, conn, job.JobID, "uploading", 2*time.Minute, func(r jobRow) bool {
			return r.phase == "uploading" || r.status != "queued" && r.status != "running"
		})
		if r.status != "running" {
			t.Fatalf("the job ended %s before its upload could be cancelled", r.status)
		}
		at := s.mustCancel(t, job.JobID)
		stopped := s.waitLog(t, "e2e-e2e-uploader", time.Minute, "export cancelled; stopped", job.JobID)
		t.Logf("uploading: the exporter stopped %s after the cancel", stopped.Sub(at).Round(time.Millisecond))
		s.assertNothingStored(t, job.JobID)
	})
}

// TestDeleteRemovesTheFile: DELETE removes a completed job's file and hides the job, and
// cancels a running one.
func TestDeleteRemovesTheFile(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, 200000)
	conn := s.exportsConn(t)
	job := s.requestExport(t, s.writer(t), "csv", "products", map[string]any{"filters": map[string]any{"price_max": 5}})
	s.waitStatus(t, job.JobID, "completed", 2*time.Minute)
	if objects, _ := s.bucket(t, "products/"+job.JobID+"/"); len(objects) != 1 {
		t.Fatalf("the completed job's file is not in the bucket: %q", objects)
	}
	if code, body := s.do(t, http.MethodDelete, "/api/v1/exports/"+job.JobID, s.writer(t), nil); code != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", code, body)
	}
	s.assertNothingStored(t, job.JobID)
	if code, _ := s.do(t, http.MethodGet, "/api/v1/exports/"+job.JobID, s.reader(t), nil); code != http.StatusNotFound {
		t.Errorf("GET of a deleted job = %d, want 404", code)
	}
	if code, _ := s.do(t, http.MethodGet, "/api/v1/exports/download/"+job.JobID, s.reader(t), nil); code != http.StatusNotFound {
		t.Errorf("download of a deleted job = %d, want 404", code)
	}
	_, body := s.do(t, http.MethodGet, "/api/v1/exports?limit=500", s.reader(t), nil)
	if strings.Contains(string(body), job.JobID) {
		t.Error("the job list still shows the deleted job")
	}

	running := s.requestExport(t, s.writer(t), "json", "products", map[string]any{"options": map[string]any{"include_relations": true}})
	waitRow(t, conn, running.JobID, "writing rows", time.Minute, func(r jobRow) bool { return r.rowsDone > 0 || r.status != "running" && r.status != "queued" })
	if code, body := s.do(t, http.MethodDelete, "/api/v1/exports/"+running.JobID, s.writer(t), nil); code != http.StatusNoContent {
		t.Fatalf("DELETE of a running job = %d %s", code, body)
	}
	s.waitLog(t, "exporter", time.Minute, "export cancelled; stopped", running.JobID)
	s.assertNothingStored(t, running.JobID)
	if r := readJobRow(t, conn, running.JobID); r.status != "cancelled" {
		t.Errorf("the deleted running job ended %s, want cancelled", r.status)
	}
}
