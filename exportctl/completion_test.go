package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestCompletionNamesEverything: each script names every command, subcommand and first
// argument of the command table, and every flag the commands' own FlagSets define.
func TestCompletionNamesEverything(t *testing.T) {
	spec, err := completionSpecOf(commands)
	if err != nil {
		t.Fatal(err)
	}
	for _, shell := range shells {
		r := runCLI(t, t.Context(), "http://127.0.0.1:1", nil, "completion", shell)
		if r.code != 0 {
			t.Fatalf("completion %s: exit %d", shell, r.code)
		}
		for _, c := range commands {
			for _, w := range append([]string{c.name}, append(c.subs, c.words...)...) {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("the %s script does not name %q (command %s)", shell, w, c.name)
				}
			}
		}
		for _, ctx := range spec.contexts {
			for _, f := range ctx.flags {
				if !strings.Contains(r.stdout, f.name) {
					t.Errorf("the %s script does not name -%s of %q", shell, f.name, ctx.key)
				}
			}
		}
	}
	// Every subcommand of the table has its own context, read from its own FlagSet.
	keys := map[string]bool{}
	for _, ctx := range spec.contexts {
		keys[ctx.key] = true
	}
	for _, c := range commands {
		for _, s := range c.subs {
			if !keys[c.name+" "+s] {
				t.Errorf("no completion context for %s %s", c.name, s)
			}
		}
	}
	r := runCLI(t, t.Context(), "http://127.0.0.1:1", nil, "completion", "tcsh")
	if r.code != exitUsage || !strings.Contains(r.stderr, "unknown shell") {
		t.Errorf("completion tcsh: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestCompletionBash sources the bash script in bash and completes command lines with it.
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	r := runCLI(t, t.Context(), "http://127.0.0.1:1", nil, "completion", "bash")
	script := filepath.Join(t.TempDir(), "exportctl.bash")
	if err := os.WriteFile(script, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	tests := []struct {
		line string // the command line; the word completed is after the last space
		want []string
	}{
		{"exportctl ", names},
		{"exportctl ex", []string{"export"}},
		{"exportctl export ", entities},
		{"exportctl export s", []string{"suppliers"}},
		{"exportctl export products --format ", formats},
		{"exportctl export products --format=x --fo", []string{"--format"}},
		{"exportctl export --fi", []string{"--fields", "--file-name", "--filter", "--filter-json"}},
		{"exportctl --api http://x:1 jobs --st", []string{"--status"}},
		{"exportctl jobs ", jobsSubs},
		{"exportctl jobs --status ", statuses},
		{"exportctl jobs -o ", outputs},
		{"exportctl jobs get --out", []string{"--output"}},
		{"exportctl jobs get ID ", nil},
		{"exportctl schedules ", schedulesSubs},
		{"exportctl schedules list --enabled ", []string{"true", "false"}},
		{"exportctl schedules create nightly --misfire ", []string{"run_once", "skip"}},
		{"exportctl platforms create p --type s", []string{"shopify"}},
		{"exportctl platforms ", platformsSubs},
		{"exportctl completion ", shells},
		{"exportctl export products --fields ", nil}, // a free value: the shell's default
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			words := strings.Split(tt.line, " ")
			var quoted []string
			for _, w := range words {
				quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
			}
			prog := "source " + script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
				strconv.Itoa(len(words)-1) + "\n_exportctl\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
			out, err := exec.Command(bash, "-c", prog).CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			got := strings.Fields(string(out))
			want := slices.Clone(tt.want)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%q completes to %q, want %q", tt.line, got, want)
			}
		})
	}
}

// TestJobsOutputJSON: -o json and --output json print the API's own JSON, one document, for
// the list and for one job; -o table is the table; another format is a usage error.
func TestJobsOutputJSON(t *testing.T) {
	f := newFakeAPI(t)
	one := map[string]any{"id": "job-1", "task_id": "job-1", "status": "completed", "format": "csv", "entity": "products",
		"progress": 100, "rows_done": 5, "rows_total": 5, "requested_by": "alice", "created_at": "2026-11-28T10:00:00Z",
		"file": map[string]any{"file_name": "a.csv", "size_bytes": 2048, "sha256": "ab"}}
	f.mux.HandleFunc("GET /api/v1/exports", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"next_cursor": "c2", "items": []any{one}})
	})
	f.mux.HandleFunc("GET /api/v1/exports/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "job-1" {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"code": "not_found", "message": "no such job"}})
			return
		}
		writeJSON(w, http.StatusOK, one)
	})
	for _, args := range [][]string{{"jobs", "-o", "json"}, {"jobs", "list", "--output", "json"}, {"jobs", "--output=json"}, {"jobs", "--json"}} {
		r := runCLI(t, t.Context(), f.srv.URL, nil, args...)
		var page struct {
			Items      []map[string]any `json:"items"`
			NextCursor string           `json:"next_cursor"`
		}
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		if err := dec.Decode(&page); err != nil || dec.More() || r.code != 0 {
			t.Fatalf("%v: exit %d, not one JSON document (%v): %q", args, r.code, err, r.stdout)
		}
		if len(page.Items) != 1 || page.NextCursor != "c2" {
			t.Errorf("%v: page %+v, want the API's page", args, page)
		}
		for _, k := range []string{"id", "task_id", "status", "format", "entity", "progress", "rows_done", "rows_total", "created_at", "file"} {
			if _, ok := page.Items[0][k]; !ok {
				t.Errorf("%v: the job lacks %q", args, k)
			}
		}
	}
	r := runCLI(t, t.Context(), f.srv.URL, nil, "jobs", "get", "job-1", "-o", "json")
	var j map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || r.code != 0 || j["id"] != "job-1" || j["status"] != "completed" {
		t.Errorf("jobs get -o json: exit %d, %v, %v", r.code, err, j)
	}
	if file, _ := j["file"].(map[string]any); file["sha256"] != "ab" {
		t.Errorf("jobs get -o json: file %v, want the API's", j["file"])
	}
	r = runCLI(t, t.Context(), f.srv.URL, nil, "jobs", "get", "job-1")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], "job-1 ") {
		t.Errorf("jobs get: exit %d, table %q", r.code, r.stdout)
	}
	r = runCLI(t, t.Context(), f.srv.URL, nil, "jobs", "-o", "table")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ID ") {
		t.Errorf("jobs -o table: exit %d, %q", r.code, r.stdout)
	}
	r = runCLI(t, t.Context(), f.srv.URL, nil, "jobs", "-o", "yaml")
	if r.code != exitUsage || !strings.Contains(r.stderr, "want table or json") {
		t.Errorf("jobs -o yaml: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, t.Context(), f.srv.URL, nil, "jobs", "get", "nope", "-o", "json")
	if r.code != exitFailure || r.stdout != "" || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("jobs get nope: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
