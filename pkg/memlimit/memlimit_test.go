package memlimit

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestSet(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1)) // restore the test binary's limit
	write := func(t *testing.T, name, content string) string {
		root := t.TempDir()
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return root
	}
	noEnv := func(string) string { return "" }
	tests := []struct {
		name    string
		root    string
		getenv  func(string) string
		want    int64
		wantErr bool
	}{
		{"cgroup v2 limit", write(t, "memory.max", "268435456\n"), noEnv, 241591910, false},
		{"cgroup v2 without limit", write(t, "memory.max", "max\n"), noEnv, 0, false},
		{"cgroup v1 limit", write(t, "memory/memory.limit_in_bytes", "134217728\n"), noEnv, 120795955, false},
		{"cgroup v1 without limit", write(t, "memory/memory.limit_in_bytes", "9223372036854771712\n"), noEnv, 0, false},
		{"no cgroup files", t.TempDir(), noEnv, 0, false},
		{"garbage", write(t, "memory.max", "lots\n"), noEnv, 0, true},
		{"GOMEMLIMIT wins", write(t, "memory.max", "268435456\n"), func(k string) string {
			return map[string]string{"GOMEMLIMIT": "100MiB"}[k]
		}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(1 << 62)
			got, src, err := set(tt.getenv, tt.root, 0.9)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("set = %d (%s), %v; want %d, error %v", got, src, err, tt.want, tt.wantErr)
			}
			if applied := debug.SetMemoryLimit(-1); tt.want != 0 && applied != tt.want || tt.want == 0 && applied != 1<<62 {
				t.Errorf("runtime limit %d after set = %d", applied, got)
			}
		})
	}
	if _, _, err := set(noEnv, t.TempDir(), 1.5); err == nil {
		t.Error("fraction 1.5 accepted")
	}
}
