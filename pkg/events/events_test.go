package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	t0       = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)
	schedule = "sch_42"
)

func fixtures() map[string]events.Event {
	return map[string]events.Event{
		"requested": events.ExportRequested{
			JobID: "0193a1b2-0000-7000-8000-000000000001", Entity: "products", Format: "csv",
			Fields:      []string{"sku", "name", "price"},
			Filters:     map[string]any{"status": "active", "category_id": []any{3.0, 7.0}},
			Options:     map[string]any{"delimiter": ";", "bom": true},
			FileName:    "catalog.csv",
			RequestedBy: "alice", RequesterName: "Alice Martin",
			ScheduleID: &schedule, RequestedAt: t0,
		},
		"started": events.ExportStarted{
			JobID: "0193a1b2-0000-7000-8000-000000000001", Entity: "products", Format: "csv",
			Worker: "exporter-host-1234", Attempt: 1, RowsTotal: 10000, StartedAt: t0.Add(time.Second),
		},
		"progress": events.ExportProgress{
			JobID: "0193a1b2-0000-7000-8000-000000000001", Attempt: 1,
			RowsDone: 2500, RowsTotal: 10000, Progress: 25, BytesWritten: 812345, At: t0.Add(2 * time.Second),
		},
		"completed": events.ExportCompleted{
			JobID: "0193a1b2-0000-7000-8000-000000000001", Entity: "products", Format: "csv", Rows: 10000,
			Object: events.Object{
				Bucket: "exports", Key: "products/0193a1b2-0000-7000-8000-000000000001/catalog.csv",
				SizeBytes: 3249876, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
				ContentType: "text/csv; charset=utf-8", FileName: "catalog.csv",
			},
			RequestedBy: "alice", ScheduleID: &schedule,
			StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(3 * time.Second), DurationMS: 2000,
		},
		"failed": events.ExportFailed{
			JobID: "0193a1b2-0000-7000-8000-000000000001", Entity: "products", Format: "csv",
			Code: "storage_unavailable", Message: "uploading products/x.csv: connection refused",
			Attempt: 2, RequestedBy: "alice", FailedAt: t0.Add(4 * time.Second),
		},
		"cancelled": events.ExportCancelled{
			JobID: "0193a1b2-0000-7000-8000-000000000001", Reason: "user request", CancelledBy: "alice",
			CancelledAt: t0.Add(5 * time.Second),
		},
	}
}

// golden is what a record looks like on the wire: headers and the JSON value.
type golden struct {
	Key     string            `json:"key"`
	Headers map[string]string `json:"headers"`
	Value   json.RawMessage   `json:"value"`
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for name, ev := range fixtures() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env, err := events.Wrap(ev)
			if err != nil {
				t.Fatal(err)
			}
			g := golden{Key: env.Key, Headers: map[string]string{}, Value: env.Data}
			for _, h := range env.Headers() {
				g.Headers[h.Key] = string(h.Value)
			}
			got, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from golden file:\n got: %s\nwant: %s", name, got, want)
			}
			if g.Headers["ce_type"] != "com.productsmanager.export."+name+".v1" {
				t.Errorf("ce_type = %q", g.Headers["ce_type"])
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for name, ev := range fixtures() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env, err := events.Wrap(ev)
			if err != nil {
				t.Fatal(err)
			}
			back, err := events.Parse([]byte(env.Key), env.Headers(), env.Data)
			if err != nil {
				t.Fatal(err)
			}
			if back.ID != env.ID || back.Type != env.Type || !back.Time.Equal(env.Time) || back.Key != env.Key {
				t.Fatalf("parsed envelope %+v, want %+v", back, env)
			}
			got, err := events.DecodeAny(back)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, ev) {
				t.Errorf("decoded %#v\nwant %#v", got, ev)
			}
		})
	}
}

func TestIDStableAndDistinct(t *testing.T) {
	t.Parallel()
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	p := events.ExportProgress{JobID: "j1", Attempt: 1, RowsDone: 100, At: t0}
	again := p
	again.At = t0.Add(time.Hour) // a repeat sent later is still the same logical event
	again.BytesWritten = 99
	if events.ID(p) != events.ID(again) {
		t.Error("a repeat of the same progress event got a different ce_id")
	}
	if !uuidRE.MatchString(events.ID(p)) {
		t.Errorf("ce_id %q is not a version-5 UUID", events.ID(p))
	}
	seen := map[string]string{}
	for _, ev := range []events.Event{
		p,
		events.ExportProgress{JobID: "j1", Attempt: 1, RowsDone: 200},
		events.ExportProgress{JobID: "j1", Attempt: 2, RowsDone: 100},
		events.ExportProgress{JobID: "j2", Attempt: 1, RowsDone: 100},
		events.ExportStarted{JobID: "j1", Attempt: 1},
		events.ExportStarted{JobID: "j1", Attempt: 2},
		events.ExportCompleted{JobID: "j1"},
		events.ExportFailed{JobID: "j1"},
		events.ExportCancelled{JobID: "j1"},
		events.ExportRequested{JobID: "j1"},
	} {
		id := events.ID(ev)
		if prev, ok := seen[id]; ok {
			t.Errorf("ce_id %s shared by %s and %T%+v", id, prev, ev, ev)
		}
		seen[id] = reflect.TypeOf(ev).Name()
	}
	c1 := events.ExportCompleted{JobID: "j1", FinishedAt: t0}
	c2 := events.ExportCompleted{JobID: "j1", FinishedAt: t0.Add(time.Minute), Rows: 5}
	if events.ID(c1) != events.ID(c2) {
		t.Error("a job's completion redone after a crash must keep its ce_id")
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	good, _ := events.Wrap(events.ExportCancelled{JobID: "j", CancelledAt: t0})
	tests := []struct {
		name    string
		headers []events.Header
	}{
		{"no headers", nil},
		{"wrong specversion", replace(good.Headers(), "ce_specversion", "0.3")},
		{"no id", replace(good.Headers(), "ce_id", "")},
		{"no type", replace(good.Headers(), "ce_type", "")},
		{"bad time", replace(good.Headers(), "ce_time", "yesterday")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := events.Parse(nil, tt.headers, good.Data); !errors.Is(err, events.ErrNotCloudEvent) {
				t.Errorf("Parse err = %v, want ErrNotCloudEvent", err)
			}
		})
	}
	if _, err := events.Decode[events.ExportCompleted](good); err == nil {
		t.Error("decoding a cancelled envelope as completed succeeded")
	}
}

func replace(hs []events.Header, key, value string) []events.Header {
	out := make([]events.Header, len(hs))
	copy(out, hs)
	for i := range out {
		if out[i].Key == key {
			out[i].Value = []byte(value)
		}
	}
	return out
}

func ExampleWrap() {
	env, _ := events.Wrap(events.ExportCancelled{JobID: "job-1", CancelledAt: t0})
	for _, h := range env.Headers() {
		if h.Key == events.HeaderType || h.Key == events.HeaderSpecVersion {
			fmt.Println(h.Key, string(h.Value))
		}
	}
	fmt.Println("key", env.Key)
	// Output:
	// ce_specversion 1.0
	// ce_type com.productsmanager.export.cancelled.v1
	// key job-1
}
