package job

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
)

func TestProgressOf(t *testing.T) {
	t.Parallel()
	total := int64(10)
	file := &events.Object{Bucket: "exports", Key: "k", FileName: "f.csv"}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		status   Status
		wantType string
		wantFile bool
	}{
		{StatusQueued, "progress", false},
		{StatusRunning, "progress", false},
		{StatusCompleted, "completed", true},
		{StatusFailed, "failed", false},
		{StatusCancelled, "cancelled", false},
		{StatusExpired, "expired", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			t.Parallel()
			rate, eta, pos := 1200.5, 3.2, int64(4)
			u := ProgressOf(Job{ID: "j", TaskID: "j", Status: tt.status, Progress: 50, RowsDone: 5,
				RowsTotal: &total, BytesWritten: 7, UpdatedAt: at, File: file, Phase: "writing",
				RateRowsPerS: &rate, ETASeconds: &eta, QueuePosition: &pos, ExpiresAt: &at})
			if u.Type != tt.wantType || u.TaskID != "j" || u.JobID != "j" || u.Status != tt.status ||
				u.RowsDone != 5 || *u.RowsTotal != 10 || u.BytesWritten != 7 || !u.UpdatedAt.Equal(at) ||
				u.Phase != "writing" || *u.RateRowsPerS != rate || *u.ETASeconds != eta || *u.QueuePos != 4 || !u.ExpiresAt.Equal(at) {
				t.Errorf("update %+v", u)
			}
			if (u.File != nil) != tt.wantFile {
				t.Errorf("file %v, want %v", u.File, tt.wantFile)
			}
		})
	}
}

// TestUpdateJSON pins the wire names of CONTRACT §5.
func TestUpdateJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(ProgressOf(Job{ID: "j", Status: StatusFailed,
		Error: &Error{Code: "c", Message: "m"}}))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"bytes_written", "error", "eta_seconds", "expires_at", "job_id", "phase", "progress", "queue_position",
		"rate_rows_per_s", "rows_done", "rows_total", "status", "task_id", "type", "updated_at", "version"}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	if m["rows_total"] != nil || m["error"].(map[string]any)["code"] != "c" {
		t.Errorf("json %s", b)
	}
}
