package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// rangeRow is a job_ranges row as the tests read it.
type rangeRow struct {
	seq, tries int
	status     string
	owner      string
	rows       int64
}

func (s stack) ranges(t *testing.T, conn *pgx.Conn, jobID string) []rangeRow {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT seq, tries, status, coalesce(lease_owner, ''), rows_done
		FROM job_ranges WHERE job_id = $1 AND attempt = (SELECT attempt FROM jobs WHERE id = $1) ORDER BY seq`, jobID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rangeRow, error) {
		var x rangeRow
		return x, r.Scan(&x.seq, &x.tries, &x.status, &x.owner, &x.rows)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// groupOfTwo stops the stack's exporter and starts two that split exports of more than
// rangeRows rows; the stack's exporter comes back at the end.
func (s stack) groupOfTwo(t *testing.T, rangeRows int) (a, b string) {
	t.Helper()
	s.stackCmd(t, "stop", "exporter")
	t.Cleanup(func() { s.stackCmd(t, "start", "exporter") })
	env := []string{fmt.Sprintf("EXPORTER_CHUNK_ROWS=%d", rangeRows), "EXPORTER_CONCURRENCY=1", "EXPORTER_LEASE_TTL=3s",
		"EXPORTER_RESCUE_INTERVAL=100ms"}
	s.startExporterEnv(t, "e2e-range-a", "127.0.0.1:18092", env...)
	s.startExporterEnv(t, "e2e-range-b", "127.0.0.1:18093", env...)
	return "e2e-range-a", "e2e-range-b"
}

// TestExportAcrossTheGroup: a 120,000-row CSV export over two exporters that split exports of
// more than 25,000 rows is written as 5 ranges, by both, and its file is byte for byte the
// export written in one piece (the stream endpoint's, which TestStreamAndStoredAreByteIdentical
// shows equal to a stored file); JSON Lines too.
func TestExportAcrossTheGroup(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, 120000)
	a, b := s.groupOfTwo(t, 25000)
	conn, err := pgx.Connect(context.Background(), s.exportsDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	for _, c := range []struct {
		format, stream string
		body           map[string]any
	}{
		{"csv", "", map[string]any{}},
		{"json", "lines=true", map[string]any{"options": map[string]any{"lines": true}}},
	} {
		_, whole := s.stream(t, c.format, "products", c.stream)
		job := s.requestExport(t, s.writer(t), c.format, "products", c.body)
		s.waitStatus(t, job.JobID, "completed", 3*time.Minute)
		data := s.download(t, job.JobID)
		if !bytes.Equal(data, whole) {
			t.Fatalf("%s: the file written in ranges (%d bytes) differs from the export in one piece (%d bytes)", c.format, len(data), len(whole))
		}
		rs := s.ranges(t, conn, job.JobID)
		writers := map[string]int{}
		var rows int64
		for _, r := range rs {
			writers[r.owner]++
			rows += r.rows
			if r.status != "done" || r.tries != 1 {
				t.Errorf("%s range %d: %+v", c.format, r.seq, r)
			}
		}
		if len(rs) != 5 || rows != 120000 {
			t.Errorf("%s: %d ranges of %d rows in all, want 5 of 120,000", c.format, len(rs), rows)
		}
		if writers[a] == 0 || writers[b] == 0 {
			t.Errorf("%s: ranges written by %v, want both exporters", c.format, writers)
		}
		ev := s.findCompleted(t, job.JobID, time.Minute)
		if ev.Object.SHA256 != sha(data) || ev.Object.SizeBytes != int64(len(data)) {
			t.Errorf("%s: ExportCompleted announces %s (%d bytes), the file is %s (%d bytes)", c.format, ev.Object.SHA256, ev.Object.SizeBytes, sha(data), len(data))
		}
	}
}

// TestExportAcrossTheGroupSnapshotAndKill: while a split export of 300,000 rows runs, rows are updated,
// deleted and inserted, and the exporter writing a range is killed (kill -9). The range is
// written again, alone, by the other exporter, and the file is the catalog as it was when
// the export began, byte for byte: no row twice, none missing, none changed.
func TestExportAcrossTheGroupSnapshotAndKill(t *testing.T) {
	s := getStack(t)
	s.seed(t, 300000) // this test changes the catalog
	t.Cleanup(func() { seeded = 0 })
	s.stackCmd(t, "stop", "exporter")
	t.Cleanup(func() { s.stackCmd(t, "start", "exporter") })
	// Ranges of 100,000 rows take a second or more: the kill lands mid-range.
	env := []string{"EXPORTER_CHUNK_ROWS=100000", "EXPORTER_CONCURRENCY=1", "EXPORTER_LEASE_TTL=3s",
		"EXPORTER_RESCUE_INTERVAL=100ms"}
	procs := map[string]*exec.Cmd{
		"e2e-range-a": s.startExporterEnv(t, "e2e-range-a", "127.0.0.1:18092", env...),
		"e2e-range-b": s.startExporterEnv(t, "e2e-range-b", "127.0.0.1:18093", env...),
	}
	ctx := context.Background()
	exports, err := pgx.Connect(ctx, s.exportsDB)
	if err != nil {
		t.Fatal(err)
	}
	defer exports.Close(ctx)
	catalogConn, err := pgx.Connect(ctx, s.catalogDB)
	if err != nil {
		t.Fatal(err)
	}
	defer catalogConn.Close(ctx)

	_, before := s.stream(t, "csv", "products", "")
	job := s.requestCSV(t, s.writer(t))

	// The coordinator holds the snapshot: the victim is the other exporter, caught writing a
	// range; then the catalog changes.
	deadline := time.Now().Add(time.Minute)
	var victim rangeRow
	var coordinator string
	for victim.owner == "" {
		coordinator = s.lease(t, exports, job.JobID).owner
		for _, r := range s.ranges(t, exports, job.JobID) {
			if r.status == "running" && coordinator != "" && r.owner != coordinator {
				victim = r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saw the other exporter than %q writing a range: %+v", coordinator, s.ranges(t, exports, job.JobID))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := catalogConn.Exec(ctx, `
		UPDATE products SET name = 'changed during the export' WHERE id % 997 = 0;
		DELETE FROM products WHERE id IN (1, 60000, 119999);
		INSERT INTO products (sku, name, price) VALUES ('E2E-NEW-1', 'inserted during the export', 1)`); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(procs[victim.owner].Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed -9 %s writing range %d (coordinator %s)", victim.owner, victim.seq, coordinator)
	for _, r := range s.ranges(t, exports, job.JobID) {
		if r.seq == victim.seq && r.status != "running" {
			t.Fatalf("range %d was %s when its writer was killed: the test shows nothing", r.seq, r.status)
		}
	}

	s.waitStatus(t, job.JobID, "completed", 3*time.Minute)
	data := s.download(t, job.JobID)
	if !bytes.Equal(data, before) {
		t.Fatalf("the file (%d bytes) is not the catalog as it was when the export began (%d bytes)", len(data), len(before))
	}
	if strings.Contains(string(data), "during the export") {
		t.Error("the file holds a change made after the export began")
	}
	for _, r := range s.ranges(t, exports, job.JobID) {
		want := 1
		if r.seq == victim.seq {
			want = 2
		}
		if r.status != "done" || r.tries != want {
			t.Errorf("range %d: %+v, want done after %d tries", r.seq, r, want)
		}
		if r.seq == victim.seq && r.owner != coordinator {
			t.Errorf("range %d written again by %q, want %s", r.seq, r.owner, coordinator)
		}
	}
	if after := s.lease(t, exports, job.JobID); after.attempt != 1 {
		t.Errorf("the job took %d attempts: the kill of a range's writer cost more than its range", after.attempt)
	}
}
