package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/productsmanager/exportplatform/audit-sink/internal/audit"
	"github.com/productsmanager/exportplatform/audit-sink/internal/audit/audittest"
	"github.com/productsmanager/exportplatform/pkg/events"
)

var (
	t0       = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	schedule = "sched-1"
)

func wrap(t *testing.T, ev events.Event) events.Envelope {
	t.Helper()
	env, err := events.Wrap(ev)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func int64p(n int64) *int64 { return &n }

func TestMap(t *testing.T) {
	t.Parallel()
	requested := events.ExportRequested{
		JobID: "job-1", Entity: "products", Format: "csv",
		Fields:  []string{"sku", "name"},
		Filters: map[string]any{"status": "active", "price_min": 10.0},
		Options: map[string]any{"delimiter": ";"}, FileName: "catalog.csv",
		RequestedBy: "alice", RequesterName: "Alice Martin", ScheduleID: &schedule,
		RequestedAt: t0.In(time.FixedZone("CET", 3600)),
	}
	completed := events.ExportCompleted{
		JobID: "job-1", Entity: "products", Format: "csv", Rows: 1234,
		Object:      events.Object{Bucket: "exports", Key: "job-1/catalog.csv", SizeBytes: 99, SHA256: "ab", ContentType: "text/csv", FileName: "catalog.csv"},
		RequestedBy: "alice", StartedAt: t0, FinishedAt: t0.Add(time.Minute), DurationMS: 60000,
	}
	failed := events.ExportFailed{
		JobID: "job-2", Entity: "suppliers", Format: "excel", Code: "catalog_unavailable",
		Message: "connection refused", Attempt: 3, RequestedBy: "bob", FailedAt: t0.Add(2 * time.Minute),
	}
	started := events.ExportStarted{JobID: "job-1", Attempt: 2}
	cancelled := events.ExportCancelled{JobID: "job-4", Entity: "products", Format: "json", RequestedBy: "alice",
		Reason: "cancelled on request", CancelledBy: "carol", CancelledAt: t0.Add(3 * time.Minute)}
	noTime := wrap(t, events.ExportFailed{JobID: "job-3", Code: "x"})
	noTime.Time = t0.Add(time.Hour)

	tests := []struct {
		name    string
		env     events.Envelope
		want    audit.Record
		wantOK  bool
		wantErr error
	}{
		{
			name: "requested", env: wrap(t, requested), wantOK: true,
			want: audit.Record{
				EventID: events.ID(requested), EventType: events.TypeRequested, OccurredAt: t0,
				Action: audit.ActionRequested, ActorID: "alice", ActorName: "Alice Martin",
				ResourceID: "job-1", Entity: "products", Format: "csv",
				Filters:   map[string]any{"status": "active", "price_min": 10.0},
				RiskLevel: audit.RiskMedium,
				Details: map[string]any{
					"fields": []string{"sku", "name"}, "options": map[string]any{"delimiter": ";"},
					"file_name": "catalog.csv", "schedule_id": &schedule,
				},
			},
		},
		{
			name: "completed", env: wrap(t, completed), wantOK: true,
			want: audit.Record{
				EventID: events.ID(completed), EventType: events.TypeCompleted, OccurredAt: t0.Add(time.Minute),
				Action: audit.ActionCompleted, ActorID: "alice", ResourceID: "job-1",
				Entity: "products", Format: "csv", RowCount: int64p(1234), RiskLevel: audit.RiskMedium,
				Details: map[string]any{"object": completed.Object, "duration_ms": int64(60000), "started_at": t0},
			},
		},
		{
			name: "failed", env: wrap(t, failed), wantOK: true,
			want: audit.Record{
				EventID: events.ID(failed), EventType: events.TypeFailed, OccurredAt: t0.Add(2 * time.Minute),
				Action: audit.ActionFailed, ActorID: "bob", ResourceID: "job-2",
				Entity: "suppliers", Format: "excel", RiskLevel: audit.RiskMedium,
				Details: map[string]any{"code": "catalog_unavailable", "message": "connection refused", "attempt": 3},
			},
		},
		{
			name: "failed without a time in its data takes ce_time", env: noTime, wantOK: true,
			want: audit.Record{
				EventID: noTime.ID, EventType: events.TypeFailed, OccurredAt: t0.Add(time.Hour),
				Action: audit.ActionFailed, ResourceID: "job-3", RiskLevel: audit.RiskMedium,
				Details: map[string]any{"code": "x"},
			},
		},
		{
			name: "started", env: wrap(t, started), wantOK: true,
			want: audit.Record{EventID: events.ID(started), EventType: events.TypeStarted, Action: audit.ActionStarted,
				ResourceID: "job-1", RiskLevel: audit.RiskLow, Details: map[string]any{"attempt": 2}},
		},
		{name: "progress is not audited", env: wrap(t, events.ExportProgress{JobID: "job-1", RowsDone: 5})},
		{
			name: "cancelled", env: wrap(t, cancelled), wantOK: true,
			want: audit.Record{
				EventID: events.ID(cancelled), EventType: events.TypeCancelled, OccurredAt: t0.Add(3 * time.Minute),
				Action: audit.ActionCancelled, ActorID: "carol", ResourceID: "job-4", Entity: "products", Format: "json",
				RiskLevel: audit.RiskLow, Details: map[string]any{"reason": "cancelled on request", "requested_by": "alice"},
			},
		},
		{name: "unknown type is not audited", env: events.Envelope{ID: "x", Type: "com.example.other.v1", Data: []byte(`{}`)}},
		{
			name:    "audited type with bad data is malformed",
			env:     events.Envelope{ID: "x", Type: events.TypeCompleted, Data: []byte(`{"rows": "many"}`)},
			wantErr: audit.ErrMalformed,
		},
		{
			name:    "audited type without job id is malformed",
			env:     events.Envelope{ID: "x", Type: events.TypeRequested, Data: []byte(`{"entity": "products"}`)},
			wantErr: audit.ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok, err := audit.Map(tt.env)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr != nil && err == nil) {
				t.Fatalf("Map() error = %v, want %v", err, tt.wantErr)
			}
			if ok != tt.wantOK {
				t.Fatalf("Map() ok = %v, want %v", ok, tt.wantOK)
			}
			if !reflect.DeepEqual(got, tt.want) {
				gj, _ := json.MarshalIndent(got, "", " ")
				wj, _ := json.MarshalIndent(tt.want, "", " ")
				t.Errorf("Map() =\n%s\nwant\n%s", gj, wj)
			}
		})
	}
}

// TestMapRepeat: every copy of an event maps to the same record, so the Recorder can drop
// the repeats by EventID.
func TestMapRepeat(t *testing.T) {
	t.Parallel()
	ev := events.ExportCompleted{JobID: "job-9", Rows: 1, FinishedAt: t0}
	a, _, _ := audit.Map(wrap(t, ev))
	b, _, _ := audit.Map(wrap(t, ev))
	if !reflect.DeepEqual(a, b) || a.EventID == "" {
		t.Fatalf("two copies map differently:\n%+v\n%+v", a, b)
	}
}

type failingRecorder struct{ err error }

func (f failingRecorder) Record(context.Context, audit.Record) (bool, error) { return false, f.err }

func TestSinkHandle(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	mem := &audittest.Memory{}
	sink := audit.NewSink(mem, audit.NewMetrics(reg))
	ctx := t.Context()

	req := wrap(t, events.ExportRequested{JobID: "job-1", RequestedBy: "alice", RequestedAt: t0})
	done := wrap(t, events.ExportCompleted{JobID: "job-1", Rows: 3, FinishedAt: t0})
	envs := []events.Envelope{
		req, req, // a repeat
		wrap(t, events.ExportProgress{JobID: "job-1", RowsDone: 1}),
		done,
	}
	for i, env := range envs {
		if err := sink.Handle(ctx, env); err != nil {
			t.Fatalf("Handle #%d: %v", i, err)
		}
	}
	bad := events.Envelope{ID: "x", Type: events.TypeFailed, Data: []byte(`[`)}
	if err := sink.Handle(ctx, bad); !errors.Is(err, audit.ErrMalformed) {
		t.Fatalf("Handle(bad) = %v, want ErrMalformed", err)
	}

	got := mem.Records()
	if len(got) != 2 || got[0].Action != audit.ActionRequested || got[1].Action != audit.ActionCompleted {
		t.Fatalf("records = %+v, want requested then completed", got)
	}
	want := `
# HELP audit_events_total Events seen by the audit sink, by ce_type and outcome (recorded, duplicate, ignored, malformed).
# TYPE audit_events_total counter
audit_events_total{ce_type="com.productsmanager.export.cancelled.v1",outcome="duplicate"} 0
audit_events_total{ce_type="com.productsmanager.export.cancelled.v1",outcome="ignored"} 0
audit_events_total{ce_type="com.productsmanager.export.cancelled.v1",outcome="malformed"} 0
audit_events_total{ce_type="com.productsmanager.export.cancelled.v1",outcome="recorded"} 0
audit_events_total{ce_type="com.productsmanager.export.completed.v1",outcome="duplicate"} 0
audit_events_total{ce_type="com.productsmanager.export.completed.v1",outcome="ignored"} 0
audit_events_total{ce_type="com.productsmanager.export.completed.v1",outcome="malformed"} 0
audit_events_total{ce_type="com.productsmanager.export.completed.v1",outcome="recorded"} 1
audit_events_total{ce_type="com.productsmanager.export.failed.v1",outcome="duplicate"} 0
audit_events_total{ce_type="com.productsmanager.export.failed.v1",outcome="ignored"} 0
audit_events_total{ce_type="com.productsmanager.export.failed.v1",outcome="malformed"} 1
audit_events_total{ce_type="com.productsmanager.export.failed.v1",outcome="recorded"} 0
audit_events_total{ce_type="com.productsmanager.export.progress.v1",outcome="ignored"} 1
audit_events_total{ce_type="com.productsmanager.export.requested.v1",outcome="duplicate"} 1
audit_events_total{ce_type="com.productsmanager.export.requested.v1",outcome="recorded"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "audit_events_total"); err != nil {
		t.Error(err)
	}
}

// TestMetricsStartAtZero: before any event, each job end (completed, failed, cancelled) is at
// 0 for every outcome: ExportFailureRateHigh's increase() then counts the first failure after
// a restart, which a series born at 1 would hide.
func TestMetricsStartAtZero(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	audit.NewMetrics(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["ce_type"]+" "+labels["outcome"]] = m.GetCounter().GetValue()
		}
	}
	for _, typ := range []events.Type{events.TypeCompleted, events.TypeFailed, events.TypeCancelled} {
		for _, outcome := range []string{"recorded", "duplicate", "ignored", "malformed"} {
			if v, ok := got[string(typ)+" "+outcome]; !ok || v != 0 {
				t.Errorf("audit_events_total{ce_type=%q,outcome=%q} = %v (present: %v), want 0", typ, outcome, v, ok)
			}
		}
	}
}

func TestSinkHandleRecorderError(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	sink := audit.NewSink(failingRecorder{boom}, nil)
	err := sink.Handle(t.Context(), wrap(t, events.ExportFailed{JobID: "job-1"}))
	if !errors.Is(err, boom) || errors.Is(err, audit.ErrMalformed) {
		t.Fatalf("Handle = %v, want a retryable error wrapping %v", err, boom)
	}
}

func TestMemoryRecorder(t *testing.T) {
	t.Parallel()
	audittest.RecorderSuite(t, func(*testing.T) audit.Recorder { return &audittest.Memory{} })
}

func TestRisk(t *testing.T) {
	t.Parallel()
	n := func(v int64) *int64 { return &v }
	for _, tt := range []struct {
		name string
		x    audit.Exposure
		want string
	}{
		{"whole catalog with prices", audit.Exposure{Entity: "products", Fields: []string{"sku", "price"}}, audit.RiskHigh},
		{"whole catalog, default fields", audit.Exposure{Entity: "products"}, audit.RiskHigh},
		{"whole supplier list", audit.Exposure{Entity: "suppliers"}, audit.RiskHigh},
		{"filtered with prices", audit.Exposure{Entity: "products", Fields: []string{"price"}, Filters: map[string]any{"brand": "Acme"}}, audit.RiskMedium},
		{"whole catalog without sensitive fields", audit.Exposure{Entity: "products", Fields: []string{"sku", "name"}}, audit.RiskMedium},
		{"small, not sensitive", audit.Exposure{Entity: "products", Fields: []string{"sku"}, Rows: n(1000)}, audit.RiskLow},
		{"small whole catalog with prices", audit.Exposure{Entity: "products", Fields: []string{"price"}, Rows: n(10)}, audit.RiskMedium},
		{"big, not sensitive", audit.Exposure{Entity: "products", Fields: []string{"sku"}, Rows: n(1001)}, audit.RiskMedium},
		{"manager on another's job", audit.Exposure{Action: events.ActionDownloaded, Entity: "products", Fields: []string{"sku"}, Rows: n(1), OthersResource: true}, audit.RiskHigh},
		{"one refusal", audit.Exposure{Action: events.ActionDenied}, audit.RiskLow},
		{"repeated refusals", audit.Exposure{Action: events.ActionDenied, RepeatedDenials: true}, audit.RiskHigh},
		{"schedule change", audit.Exposure{Action: events.ActionScheduleUpdated}, audit.RiskLow},
	} {
		if got := audit.Risk(tt.x); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestMapAccessed: an access event becomes its row with bytes, rows, client and risk.
func TestMapAccessed(t *testing.T) {
	t.Parallel()
	rows, size, done := int64(200000), int64(9<<20), true
	ev := events.Accessed{ID: "a1", Action: events.ActionDownloaded, ActorID: "mia", ActorName: "Mia", Manager: true,
		ResourceType: "job", ResourceID: "job-9", Owner: "alice", Entity: "products", Format: "csv",
		Rows: &rows, Bytes: &size, Complete: &done, Status: 200, ClientIP: "10.1.2.3", UserAgent: "curl/8",
		At: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	rec, ok, err := audit.Map(wrap(t, ev))
	if err != nil || !ok {
		t.Fatalf("Map: %v %v", ok, err)
	}
	if rec.Action != events.ActionDownloaded || rec.ActorID != "mia" || rec.ResourceID != "job-9" || *rec.Bytes != size ||
		*rec.RowCount != rows || rec.ClientIP != "10.1.2.3" || rec.UserAgent != "curl/8" || rec.RiskLevel != audit.RiskHigh ||
		rec.Details["owner"] != "alice" || rec.EventID != events.ID(ev) {
		t.Errorf("record %+v", rec)
	}
}

// TestMapRefusalSummary: a summary of refusals too many to audit one by one is high risk and
// keeps its count.
func TestMapRefusalSummary(t *testing.T) {
	t.Parallel()
	ev := events.Accessed{ID: "s1", Action: events.ActionDenied, ResourceType: "api", ResourceID: "refusals:192.0.2.7",
		Status: 401, Reason: "unauthenticated", ClientIP: "192.0.2.7", Suppressed: 480, At: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	rec, ok, err := audit.Map(wrap(t, ev))
	if err != nil || !ok {
		t.Fatalf("Map: %v %v", ok, err)
	}
	if rec.RiskLevel != audit.RiskHigh || rec.Details["suppressed"] != int64(480) || rec.ResourceID != "refusals:192.0.2.7" {
		t.Errorf("record %+v", rec)
	}
	ev.Suppressed = 0
	if rec, _, _ := audit.Map(wrap(t, ev)); rec.RiskLevel != audit.RiskLow {
		t.Errorf("a single refusal: %s", rec.RiskLevel)
	}
}

// TestMapDelivered: a delivery is audited as export.delivered on the job, with its bytes and
// where it went.
func TestMapDelivered(t *testing.T) {
	t.Parallel()
	ev := events.ExportDelivered{JobID: "job-7", RequestedBy: "alice", Target: "sftp://partner@127.0.0.1:2222/upload/p.csv",
		Object: events.Object{Key: "k", SizeBytes: 1234, SHA256: "ab"}, Attempt: 2, DeliveredAt: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	rec, ok, err := audit.Map(wrap(t, ev))
	if err != nil || !ok {
		t.Fatalf("Map: %v %v", ok, err)
	}
	if rec.Action != audit.ActionDelivered || rec.ResourceID != "job-7" || rec.ActorID != "alice" || *rec.Bytes != 1234 ||
		rec.Details["target"] != ev.Target || rec.RiskLevel != audit.RiskMedium {
		t.Errorf("record %+v", rec)
	}
}
