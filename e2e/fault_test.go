package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// startExporter runs a second exporter process beside the stack's, with its own id and port.
func (s stack) startExporter(t *testing.T, id, addr string) *exec.Cmd {
	t.Helper()
	return s.startExporterEnv(t, id, addr)
}

// startExporterEnv is startExporter with extra settings (NAME=value); it logs to
// .stack/logs/e2e-ID.log.
func (s stack) startExporterEnv(t *testing.T, id, addr string, env ...string) *exec.Cmd {
	t.Helper()
	return s.startService(t, "exporter", id, addr, append([]string{"EXPORTER_ADDR=" + addr, "EXPORTER_ID=" + id}, env...)...)
}

// startService runs another process of a stack service (.stack/bin/NAME) with the stack's
// settings plus env, logging to .stack/logs/e2e-ID.log, and returns once it answers /readyz
// on addr; the test's cleanup stops it (SIGTERM, then SIGKILL after 20 s).
func (s stack) startService(t *testing.T, name, id, addr string, env ...string) *exec.Cmd {
	t.Helper()
	logf, err := os.Create(filepath.Join(s.root, ".stack/logs/e2e-"+id+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(s.root, ".stack/bin", name))
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("second %s not ready: %v (see .stack/logs/e2e-%s.log)", name, err, id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type leaseState struct {
	owner    string
	attempt  int
	rowsDone int64
	status   string
}

func (s stack) lease(t *testing.T, conn *pgx.Conn, id string) leaseState {
	t.Helper()
	var l leaseState
	var owner *string
	err := conn.QueryRow(context.Background(), `SELECT lease_owner, attempt, rows_done, status FROM jobs WHERE id = $1`, id).
		Scan(&owner, &l.attempt, &l.rowsDone, &l.status)
	if err != nil {
		t.Fatal(err)
	}
	if owner != nil {
		l.owner = *owner
	}
	return l
}

func (s stack) pidFile(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.root, ".stack/pids", name+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestExporterKilledMidJob: with two exporters, kill -9 the one running a job mid-way; the
// other takes the job over once the lease expires and the job completes with a whole file.
func TestExporterKilledMidJob(t *testing.T) {
	s := getStack(t)
	s.seed(t, 200000)
	want := s.countProducts(t)
	second := s.startExporter(t, "e2e-second", "127.0.0.1:18082")
	stackPID := s.pidFile(t, "exporter")

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.exportsDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	job := s.requestCSV(t, s.writer(t))
	var l leaseState
	deadline := time.Now().Add(time.Minute)
	for {
		l = s.lease(t, conn, job.JobID)
		if l.owner != "" && l.rowsDone > 0 && l.status == "running" {
			break
		}
		if l.status == "completed" || time.Now().After(deadline) {
			t.Fatalf("never caught the job mid-way: %+v", l)
		}
		time.Sleep(5 * time.Millisecond)
	}
	victim := stackPID
	if l.owner == "e2e-second" {
		victim = second.Process.Pid
	} else {
		// The stack's exporter is restarted for the tests that follow.
		t.Cleanup(func() { s.stackCmd(t, "start", "exporter") })
	}
	if !strings.HasSuffix(l.owner, fmt.Sprintf("-%d", victim)) && l.owner != "e2e-second" {
		t.Fatalf("lease owner %q is neither exporter (stack pid %d)", l.owner, stackPID)
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed -9 exporter %s (pid %d) at %d rows", l.owner, victim, l.rowsDone)

	s.waitStatus(t, job.JobID, "completed", 3*time.Minute)
	after := s.lease(t, conn, job.JobID)
	if after.attempt < 2 {
		t.Errorf("job completed in attempt %d; expected a second attempt after the kill", after.attempt)
	}
	data := s.download(t, job.JobID)
	rows := checkCSV(t, data)
	if int64(len(rows)) != want {
		t.Fatalf("download has %d rows, catalog has %d", len(rows), want)
	}
	ev := s.findCompleted(t, job.JobID, time.Minute)
	if ev.Object.SHA256 != sha(data) {
		t.Errorf("ExportCompleted sha256 %s, download %s", ev.Object.SHA256, sha(data))
	}
}

// TestKafkaDownRequestNotLost: a request accepted while Kafka is down waits in the outbox and
// completes once Kafka is back.
func TestKafkaDownRequestNotLost(t *testing.T) {
	s := getStack(t)
	s.seed(t, 10000)
	s.stackCmd(t, "stop", "kafka")
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			s.stackCmd(t, "start", "kafka")
		}
	})
	job := s.requestCSV(t, s.writer(t))
	p := s.waitStatus(t, job.JobID, "queued", 5*time.Second)
	if p.Status != "queued" {
		t.Fatalf("job %s while Kafka is down", p.Status)
	}
	s.stackCmd(t, "start", "kafka")
	restarted = true
	s.waitStatus(t, job.JobID, "completed", 3*time.Minute)
	rows := checkCSV(t, s.download(t, job.JobID))
	if want := s.countProducts(t); int64(len(rows)) != want {
		t.Errorf("download has %d rows, catalog has %d", len(rows), want)
	}
}
