package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The CLI tests build exportctl and run it as a person would, against the running stack, with
// no token given (it mints one from JWT_SECRET) and no terminal (progress comes as lines).

// cliResult is what one exportctl run left.
type cliResult struct {
	code           int
	stdout, stderr string
}

// buildCLI builds exportctl into a temporary directory and returns its path.
func (s stack) buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "exportctl")
	cmd := exec.Command("go", "build", "-o", bin, "./exportctl")
	cmd.Dir = s.root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building exportctl: %v\n%s", err, out)
	}
	return bin
}

// cliCommand is exportctl with args, talking to the stack, NO_COLOR set, no token given.
func (s stack) cliCommand(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	// USER names the token's subject: the e2e writer, whose jobs the helpers read (ownership).
	cmd.Env = append(withoutEnv(os.Environ(), "EXPORT_TOKEN", "EXPORT_API_URL", "JWT_SECRET", "NO_COLOR", "USER"),
		"EXPORT_API_URL="+s.api, "JWT_SECRET="+s.secret, "NO_COLOR=1", "USER=e2e-writer")
	return cmd
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// runCLI runs exportctl to the end (at most two minutes) and returns its exit code and output,
// which must hold no escape sequence (NO_COLOR, no terminal).
func (s stack) runCLI(t *testing.T, bin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := s.cliCommand(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running exportctl %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("exportctl %s → exit %d\nstdout: %.2000s\nstderr: %.2000s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	if strings.ContainsRune(r.stdout+r.stderr, '\x1b') {
		t.Errorf("exportctl %s: output holds an escape sequence with NO_COLOR=1", strings.Join(args, " "))
	}
	return r
}

var requestedRE = regexp.MustCompile(`export ([0-9a-f-]{36}) requested`)

// requestedID is the job id exportctl export reports on stderr.
func requestedID(t *testing.T, stderr string) string {
	t.Helper()
	m := requestedRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no job id in stderr %q", stderr)
	}
	return m[1]
}

// csvRows parses a CSV file (with or without a BOM) and returns its header and data rows.
func csvRows(t *testing.T, data []byte) ([]string, [][]string) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))))
	recs, err := r.ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("file is not CSV with a header: %v", err)
	}
	return recs[0], recs[1:]
}

func TestCLIExportListDownloadDelete(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, 200000)
	bin := s.buildCLI(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "catalog.csv")

	r := s.runCLI(t, bin, "export", "products", "--format", "csv", "--fields", "sku,name,price",
		"--filter", "status=active", "--out", out)
	if r.code != 0 {
		t.Fatalf("export: exit %d, want 0", r.code)
	}
	if r.stdout != out+"\n" {
		t.Errorf("export: stdout = %q, want the path alone", r.stdout)
	}
	id := requestedID(t, r.stderr)
	if strings.Contains(r.stderr, "polling") {
		t.Errorf("export: the progress WebSocket was not used")
	}
	if !strings.Contains(r.stderr, "export "+id+": completed 100%") {
		t.Errorf("export: stderr has no completed progress line")
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	header, rows := csvRows(t, data)
	if strings.Join(header, ",") != "sku,name,price" {
		t.Errorf("header = %v, want sku,name,price", header)
	}
	want := sqlOne[int64](t, s.catalogConn(t), "SELECT count(*) FROM products WHERE status = 'active'")
	if int64(len(rows)) != want {
		t.Errorf("file holds %d rows, the catalog %d active products (rerun if it was reseeded meanwhile)", len(rows), want)
	}
	if j := s.job(t, id); j.Status != "completed" || j.File == nil || j.File.SHA256 != sha(data) {
		t.Errorf("job %s = %+v; file sha256 %s", id, j, sha(data))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("leftovers beside the file: %v", entries)
	}

	t.Run("jobs lists it", func(t *testing.T) {
		r := s.runCLI(t, bin, "jobs", "--entity", "products", "--format", "csv", "--status", "completed", "--limit", "500", "--all")
		if r.code != 0 {
			t.Fatalf("jobs: exit %d", r.code)
		}
		lines := strings.Split(r.stdout, "\n")
		if !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "STATUS") {
			t.Errorf("jobs: no table header: %q", lines[0])
		}
		var row string
		for _, l := range lines {
			if strings.HasPrefix(l, id+" ") {
				row = l
			}
		}
		if row == "" || !strings.Contains(row, "completed") || !strings.Contains(row, "products.csv") {
			t.Errorf("jobs: row of %s = %q", id, row)
		}
		r = s.runCLI(t, bin, "jobs", "--json", "--limit", "5")
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &page) != nil || len(page.Items) == 0 {
			t.Errorf("jobs --json: exit %d, stdout not a page of jobs", r.code)
		}
	})

	t.Run("jobs -o json", func(t *testing.T) {
		// One JSON document, the API's own page and job, field names as CONTRACT §4 gives them.
		type fileJSON struct {
			FileName string `json:"file_name"`
			SHA256   string `json:"sha256"`
		}
		type jobJSON struct {
			ID        string    `json:"id"`
			TaskID    string    `json:"task_id"`
			Entity    string    `json:"entity"`
			Format    string    `json:"format"`
			Status    string    `json:"status"`
			Progress  *float64  `json:"progress"`
			RowsDone  *int64    `json:"rows_done"`
			CreatedAt string    `json:"created_at"`
			File      *fileJSON `json:"file"`
		}
		check := func(what string, j jobJSON) {
			t.Helper()
			if j.ID != id || j.TaskID != id || j.Entity != "products" || j.Format != "csv" || j.Status != "completed" ||
				j.Progress == nil || *j.Progress != 100 || j.RowsDone == nil || j.CreatedAt == "" ||
				j.File == nil || j.File.SHA256 != sha(data) || j.File.FileName == "" {
				t.Errorf("%s: job %+v (file %+v), want the completed job %s with its file", what, j, j.File, id)
			}
		}
		r := s.runCLI(t, bin, "jobs", "-o", "json", "--entity", "products", "--format", "csv", "--status", "completed", "--limit", "500")
		var page struct {
			Items      []jobJSON `json:"items"`
			NextCursor *string   `json:"next_cursor"`
		}
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		if err := dec.Decode(&page); err != nil || dec.More() || r.code != 0 {
			t.Fatalf("jobs -o json: exit %d, not one JSON document: %v", r.code, err)
		}
		i := slices.IndexFunc(page.Items, func(j jobJSON) bool { return j.ID == id })
		if i < 0 {
			t.Fatalf("jobs -o json: %d jobs, none is %s", len(page.Items), id)
		}
		check("jobs -o json", page.Items[i])

		r = s.runCLI(t, bin, "jobs", "get", id, "--output", "json")
		var one jobJSON
		dec = json.NewDecoder(strings.NewReader(r.stdout))
		if err := dec.Decode(&one); err != nil || dec.More() || r.code != 0 {
			t.Fatalf("jobs get -o json: exit %d, not one JSON document: %v", r.code, err)
		}
		check("jobs get --output json", one)
	})

	t.Run("download again, then delete", func(t *testing.T) {
		again := filepath.Join(dir, "again.csv")
		r := s.runCLI(t, bin, "download", id, "--out", again)
		if r.code != 0 {
			t.Fatalf("download: exit %d", r.code)
		}
		if got, err := os.ReadFile(again); err != nil || !bytes.Equal(got, data) {
			t.Errorf("downloaded again: %d bytes, %v; want the same %d bytes", len(got), err, len(data))
		}
		if r := s.runCLI(t, bin, "delete", id); r.code != 0 {
			t.Fatalf("delete: exit %d", r.code)
		}
		r = s.runCLI(t, bin, "download", id, "--out", filepath.Join(dir, "gone.csv"))
		if r.code == 0 || !strings.Contains(r.stderr, "404") {
			t.Errorf("download of a deleted job: exit %d, stderr %q; want a 404 failure", r.code, r.stderr)
		}
	})

	t.Run("API errors", func(t *testing.T) {
		r := s.runCLI(t, bin, "export", "products", "--filter", "colour=red")
		if r.code != 1 || !strings.Contains(r.stderr, "colour") || !strings.Contains(r.stderr, "400") || r.stdout != "" {
			t.Errorf("unknown filter: exit %d, stderr %q; want 1 and the API's message", r.code, r.stderr)
		}
		r = s.runCLI(t, bin, "jobs", "--token", "not-a-token")
		if r.code != 1 || !strings.Contains(r.stderr, "401") {
			t.Errorf("bad token: exit %d, stderr %q; want 1 and a 401", r.code, r.stderr)
		}
	})
}

func TestCLICancel(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, 200000) // an excel export of it takes seconds
	bin := s.buildCLI(t)

	t.Run("detach then cancel", func(t *testing.T) {
		r := s.runCLI(t, bin, "export", "products", "--format", "excel", "--detach")
		id := strings.TrimSpace(r.stdout)
		if r.code != 0 || len(id) != 36 {
			t.Fatalf("export --detach: exit %d, stdout %q; want 0 and a job id", r.code, r.stdout)
		}
		if r := s.runCLI(t, bin, "cancel", id); r.code != 0 || !strings.Contains(r.stdout, "cancelled") {
			t.Fatalf("cancel: exit %d", r.code)
		}
		s.waitStatus(t, id, "cancelled", 30*time.Second)
		r = s.runCLI(t, bin, "cancel", id)
		if r.code == 0 || !strings.Contains(r.stderr, "already") || r.stdout != "" {
			t.Errorf("second cancel: exit %d, stderr %q; want a failure saying it already ended", r.code, r.stderr)
		}
		if r := s.runCLI(t, bin, "cancel", "01a00000-0000-7000-8000-000000000000"); r.code == 0 || !strings.Contains(r.stderr, "404") {
			t.Errorf("cancel of an unknown job: exit %d; want a 404 failure", r.code)
		}
	})

	t.Run("interrupt cancels", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "big.xlsx")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := s.cliCommand(ctx, bin, "export", "products", "--format", "excel", "--out", out)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Read stderr as it comes; interrupt once the job runs.
		var mu sync.Mutex
		var seen strings.Builder
		progressed := make(chan struct{})
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			sc := bufio.NewScanner(stderr)
			once := sync.Once{}
			for sc.Scan() {
				mu.Lock()
				seen.WriteString(sc.Text() + "\n")
				mu.Unlock()
				if l := sc.Text(); strings.HasPrefix(l, "export ") && (strings.Contains(l, ": counting") || strings.Contains(l, ": writing")) {
					once.Do(func() { close(progressed) })
				}
			}
			_, _ = io.Copy(io.Discard, stderr)
		}()
		select {
		case <-progressed:
		case <-time.After(30 * time.Second):
			t.Fatal("the export did not start within 30s")
		}
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		<-readDone
		err = cmd.Wait()
		mu.Lock()
		log := seen.String()
		mu.Unlock()
		t.Logf("stderr:\n%s", log)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("interrupted export: %v, want exit status 130", err)
		}
		id := requestedID(t, log)
		s.waitStatus(t, id, "cancelled", 30*time.Second)
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("an interrupted export left %s: %v", out, err)
		}
		if stdout.Len() != 0 || strings.ContainsRune(log, '\x1b') {
			t.Errorf("stdout %q; escape in stderr: %v", stdout.String(), strings.ContainsRune(log, '\x1b'))
		}
	})
}

// TestCLIPlatforms: exportctl creates a template platform delivering to the stack's SFTP
// server, tests it, exports with --platform (the file has the channel's titles and reached the
// server), lists it and deletes it; a test of an unreachable destination exits 1 naming it.
func TestCLIPlatforms(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, formatsCatalog)
	bin := s.buildCLI(t)
	dir := unique("e2e-cli")
	dest, err := json.Marshal(s.sftpDestination(t, dir, filepath.Join(s.root, ".stack/sftp/id_ed25519")))
	if err != nil {
		t.Fatal(err)
	}
	name := unique("CLI Google")
	r := s.runCLI(t, bin, "platforms", "create", name, "--type", "google_shopping", "--header", "name=titre",
		"--destination-json", string(dest))
	if r.code != 0 {
		t.Fatalf("platforms create: %d %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	defer s.runCLI(t, bin, "platforms", "delete", id)
	if r := s.runCLI(t, bin, "platforms", "test", id); r.code != 0 || !strings.Contains(r.stdout, "remove") {
		t.Errorf("platforms test: %d %s %s", r.code, r.stdout, r.stderr)
	}
	out := filepath.Join(t.TempDir(), "feed.csv")
	r = s.runCLI(t, bin, "export", "--platform", id, "--out", out)
	if r.code != 0 {
		t.Fatalf("export --platform: %d %s", r.code, r.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil || !bytes.HasPrefix(data, []byte("id\ttitre\tdescription")) {
		t.Fatalf("the file starts %.60q (%v)", data, err)
	}
	if j := s.waitDelivery(t, requestedID(t, r.stderr), time.Minute, "delivered"); !bytes.Equal(s.sftpGet(t, dir+"/products.csv"), data) {
		t.Errorf("the file on the SFTP server differs from the one downloaded (%+v)", j.Delivery)
	}
	if r := s.runCLI(t, bin, "platforms", "list"); r.code != 0 || !strings.Contains(r.stdout, name) || !strings.Contains(r.stdout, "sftp") {
		t.Errorf("platforms list: %d %s", r.code, r.stdout)
	}
	if r := s.runCLI(t, bin, "platforms", "get", id); r.code != 0 || !strings.Contains(r.stdout, `"name": "`+name+`"`) && !strings.Contains(r.stdout, `"name":"`+name+`"`) {
		t.Errorf("platforms get: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// A destination nobody listens on: the test fails at connect, exit 1.
	var d map[string]any
	_ = json.Unmarshal(dest, &d)
	d["port"] = 1
	bad, _ := json.Marshal(d)
	r = s.runCLI(t, bin, "platforms", "create", unique("CLI down"), "--type", "google_shopping", "--destination-json", string(bad))
	badID := strings.TrimSpace(r.stdout)
	defer s.runCLI(t, bin, "platforms", "delete", badID)
	if r := s.runCLI(t, bin, "platforms", "test", badID); r.code != 1 || !strings.Contains(r.stdout, "connect") || !strings.Contains(r.stdout, "FAILED") {
		t.Errorf("test of an unreachable destination: %d %s %s", r.code, r.stdout, r.stderr)
	}
}

// TestCLISchedules: exportctl creates a nightly schedule in Paris time (off), shows it, lists
// the next fire times at 02:00 Paris, switches it on, runs it now (a job that completes, in the
// run log), and deletes it; a bad expression exits 2 naming the field, and the deleted schedule
// is gone.
func TestCLISchedules(t *testing.T) {
	s := getStack(t)
	s.seedOnce(t, formatsCatalog)
	bin := s.buildCLI(t)
	name := unique("CLI nightly")
	r := s.runCLI(t, bin, "schedules", "create", name, "--cron", "0 2 * * *", "--tz", "Europe/Paris",
		"--fields", "sku,name", "--filter", "status=active", "--disabled")
	if r.code != 0 {
		t.Fatalf("schedules create: %d %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	deleted := false
	defer func() {
		if !deleted {
			s.runCLI(t, bin, "schedules", "delete", id)
		}
	}()
	var got struct {
		Name         string `json:"name"`
		Timezone     string `json:"timezone"`
		Enabled      bool   `json:"enabled"`
		ExportConfig struct {
			Fields  []string       `json:"fields"`
			Filters map[string]any `json:"filters"`
		} `json:"export_config"`
	}
	if r := s.runCLI(t, bin, "schedules", "get", id); r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil ||
		got.Name != name || got.Timezone != "Europe/Paris" || got.Enabled ||
		strings.Join(got.ExportConfig.Fields, ",") != "sku,name" || got.ExportConfig.Filters["status"] != "active" {
		t.Errorf("schedules get: %d %+v %s", r.code, got, r.stderr)
	}
	r = s.runCLI(t, bin, "schedules", "next", id, "--count", "3")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("schedules next: %d %q %s", r.code, r.stdout, r.stderr)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		local, err1 := time.Parse(time.RFC3339, f[0])
		at, err2 := time.Parse(time.RFC3339, f[len(f)-1])
		paris, _ := time.LoadLocation("Europe/Paris")
		if err1 != nil || err2 != nil || !local.Equal(at) || at.In(paris).Hour() != 2 || at.In(paris).Minute() != 0 {
			t.Errorf("next fire time %q: not 02:00 in Paris", l)
		}
	}
	if r := s.runCLI(t, bin, "schedules", "toggle", id, "--on"); r.code != 0 || !strings.Contains(r.stdout, "on") {
		t.Errorf("schedules toggle --on: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := s.runCLI(t, bin, "schedules", "list"); r.code != 0 || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "0 2 * * *") {
		t.Errorf("schedules list: %d %s", r.code, r.stdout)
	}
	r = s.runCLI(t, bin, "schedules", "run", id)
	jobID := strings.TrimSpace(r.stdout)
	if r.code != 0 || jobID == "" {
		t.Fatalf("schedules run: %d %s %s", r.code, r.stdout, r.stderr)
	}
	s.waitStatus(t, jobID, "completed", time.Minute)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = s.runCLI(t, bin, "schedules", "runs", id)
		if r.code == 0 && strings.Contains(r.stdout, jobID[:8]) && strings.Contains(r.stdout, "manual") && strings.Contains(r.stdout, "completed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("schedules runs: %d %s %s; want the manual run of %s, completed", r.code, r.stdout, r.stderr, jobID)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r := s.runCLI(t, bin, "schedules", "create", unique("CLI bad"), "--cron", "0 0 30 2 *"); r.code == 0 || !strings.Contains(r.stderr, "cron_expression") {
		t.Errorf("a cron that never fires: %d %s", r.code, r.stderr)
	}
	if r := s.runCLI(t, bin, "schedules", "delete", id); r.code != 0 {
		t.Errorf("schedules delete: %d %s", r.code, r.stderr)
	}
	deleted = true
	if r := s.runCLI(t, bin, "schedules", "get", id); r.code == 0 {
		t.Errorf("a deleted schedule: %d %s", r.code, r.stdout)
	}
}
