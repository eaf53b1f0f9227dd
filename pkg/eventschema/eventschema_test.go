package eventschema

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
)

func validator(t *testing.T) *Validator {
	t.Helper()
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestEveryTypeHasASchema: each ce_type the platform emits has its schema, and the document
// names no type the code does not know.
func TestEveryTypeHasASchema(t *testing.T) {
	t.Parallel()
	v := validator(t)
	want := []events.Type{events.TypeRequested, events.TypeStarted, events.TypeProgress, events.TypeCompleted,
		events.TypeFailed, events.TypeCancelled, events.TypeAccessed, events.TypeDelivered, events.TypeDeliveryFailed}
	got := map[events.Type]bool{}
	for _, ty := range v.Types() {
		got[ty] = true
	}
	for _, ty := range want {
		if !got[ty] {
			t.Errorf("no schema for %s", ty)
		}
		delete(got, ty)
	}
	for ty := range got {
		t.Errorf("the document has a schema for %s, which no event type is", ty)
	}
}

// TestGoldenFiles: every golden file of pkg/events (the wire shape of each event, kept by
// pkg/events' tests) is valid against its schema, headers included.
func TestGoldenFiles(t *testing.T) {
	t.Parallel()
	v := validator(t)
	files, err := filepath.Glob("../events/testdata/*.golden.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files (%v)", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Headers map[string]string `json:"headers"`
			Key     string            `json:"key"`
			Data    json.RawMessage   `json:"value"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if rec.Data == nil || rec.Headers == nil {
			t.Fatalf("%s: not a {key, headers, value} record: %.200s", f, raw)
		}
		if err := v.Record(rec.Headers, rec.Data); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
}

// TestEventsAsEncoded: a value of each event type, as the code encodes it, is valid — with its
// optional parts set and unset.
func TestEventsAsEncoded(t *testing.T) {
	t.Parallel()
	v := validator(t)
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	id := "01a241b2-db9d-7720-aabc-679f8dbb6fcc"
	sid, total, rate := "sched-1", int64(10), 12.5
	obj := events.Object{Bucket: "exports", Key: "products/x/1/p.csv", SizeBytes: 12, SHA256: strings.Repeat("a", 64), ContentType: "text/csv", FileName: "p.csv"}
	state := &events.JobState{Version: 3, Status: "running", Phase: "writing", Progress: 50, RowsDone: 5, RowsTotal: &total,
		RateRowsPerS: &rate, UpdatedAt: now, Owner: "alice"}
	all := []events.Event{
		events.ExportRequested{JobID: id, Entity: "products", Format: "csv", RequestedBy: "alice", RequestedAt: now},
		events.ExportRequested{JobID: id, Entity: "products", Format: "excel", Fields: []string{"sku"}, Filters: map[string]any{"status": "active"},
			Options: map[string]any{"sheet_name": "P"}, FileName: "p.xlsx", Headers: map[string]string{"sku": "SKU"}, Compression: "zip",
			RequestedBy: "alice", RequesterName: "Alice", ScheduleID: &sid, ScheduledFor: &now, PlatformID: &sid,
			Webhook: &events.Webhook{URL: "https://h.example/x", SecretRef: "env:S", Events: []string{"completed"}}, Deliver: true, RequestedAt: now},
		events.ExportStarted{JobID: id, Entity: "products", Format: "csv", Worker: "w1", Attempt: 1, RowsTotal: 10, StartedAt: now, State: state},
		events.ExportProgress{JobID: id, Attempt: 1, RowsDone: 5, RowsTotal: 10, Progress: 50, BytesWritten: 100, Phase: events.PhaseWriting,
			RateRowsPerS: 3, ETASeconds: &rate, At: now, State: state},
		events.ExportProgress{JobID: id, Attempt: 1, At: now},
		events.ExportCompleted{JobID: id, Entity: "products", Format: "csv", Rows: 10, Object: obj, RequestedBy: "alice", StartedAt: now,
			FinishedAt: now, DurationMS: 5, Warnings: []string{"cut"}, ExpiresAt: &now, State: state},
		events.ExportFailed{JobID: id, Entity: "products", Format: "csv", Code: "catalog_query", Message: "m", Attempt: 2, RequestedBy: "alice",
			ScheduleID: &sid, FailedAt: now, State: &events.JobState{Version: 4, Status: "failed", UpdatedAt: now,
				Error: &events.JobError{Code: "catalog_query", Message: "m"}}},
		events.ExportCancelled{JobID: id, CancelledAt: now},
		events.ExportDelivered{JobID: id, PlatformID: &sid, RequestedBy: "alice", Target: "sftp://h/in/p.csv", Object: obj, Attempt: 1, DeliveredAt: now},
		events.ExportDeliveryFailed{JobID: id, RequestedBy: "alice", Target: "s3://b/p", Attempts: 3,
			Error: events.JobError{Code: "delivery", Message: "refused"}, FailedAt: now},
		events.Accessed{ID: "a1", Action: events.ActionDownloaded, ActorID: "alice", ResourceType: "job", ResourceID: id, At: now},
	}
	for _, e := range all {
		env, err := events.Wrap(e)
		if err != nil {
			t.Fatal(err)
		}
		h := map[string]string{}
		for _, hd := range env.Headers() {
			h[hd.Key] = string(hd.Value)
		}
		if err := v.Record(h, env.Data); err != nil {
			t.Errorf("%T: %v\n%s", e, err, env.Data)
		}
	}
}

// TestRefusesWhatLeavesTheSchema: the validator is not a rubber stamp.
func TestRefusesWhatLeavesTheSchema(t *testing.T) {
	t.Parallel()
	v := validator(t)
	for name, c := range map[string]struct {
		ty   events.Type
		data string
	}{
		"unknown field":    {events.TypeCancelled, `{"job_id":"01a241b2-db9d-7720-aabc-679f8dbb6fcc","cancelled_at":"2026-12-04T10:00:00Z","colour":"red"}`},
		"missing required": {events.TypeCompleted, `{"job_id":"01a241b2-db9d-7720-aabc-679f8dbb6fcc"}`},
		"wrong type":       {events.TypeProgress, `{"job_id":"01a241b2-db9d-7720-aabc-679f8dbb6fcc","attempt":"1","rows_done":0,"rows_total":0,"progress":0,"bytes_written":0,"at":"2026-12-04T10:00:00Z"}`},
		"bad date":         {events.TypeCancelled, `{"job_id":"01a241b2-db9d-7720-aabc-679f8dbb6fcc","cancelled_at":"yesterday"}`},
		"bad format enum":  {events.TypeRequested, `{"job_id":"01a241b2-db9d-7720-aabc-679f8dbb6fcc","entity":"products","format":"pdf","requested_by":"a","schedule_id":null,"platform_id":null,"requested_at":"2026-12-04T10:00:00Z"}`},
		"unknown type":     {events.Type("com.example.other.v1"), `{}`},
	} {
		if err := v.Data(c.ty, []byte(c.data)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	good := map[string]string{"ce_specversion": "1.0", "ce_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "ce_source": events.Source,
		"ce_type": string(events.TypeCancelled), "ce_time": "2026-12-04T10:00:00Z", "content-type": "application/json"}
	if err := v.Headers(good); err != nil {
		t.Fatalf("good headers refused: %v", err)
	}
	delete(good, "ce_id")
	if err := v.Headers(good); err == nil {
		t.Error("headers without ce_id accepted")
	}
}
