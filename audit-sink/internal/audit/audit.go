// Package audit turns export events into audit records (CONTRACT §7, db_analytics.audit_logs)
// and hands them to a Recorder.
//
// Invariants:
//   - one record per audited event, identified by the event's ce_id: a repeat of an event (the
//     bus delivers at least once) maps to the same EventID, and a Recorder keeps only the first;
//   - only ExportRequested, ExportCompleted and ExportFailed are audited; every other event,
//     including types this version does not know, is ignored rather than failed, so a newer
//     producer cannot stall the sink;
//   - an audited event whose data cannot be read is reported as ErrMalformed: retrying will
//     not fix it.
//
// The package knows no database and no Kafka client: the pgx Recorder lives in
// internal/store, and run.go adapts Sink.Handle to the eventbus consumer.
package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// Actions, as stored in audit_logs.action.
const (
	ActionRequested  = "export.requested"
	ActionCompleted  = "export.completed"
	ActionFailed     = "export.failed"
	ActionCancelled  = "export.cancelled"  // who stopped (or deleted) a job before it ended
	ActionDownloaded = "export.downloaded" // not on the bus yet: written by whoever serves downloads
)

// Risk levels: a data export (or its file) is medium; stopping one, which exports nothing, low.
const (
	RiskMedium = "medium"
	RiskLow    = "low"
)

// ErrMalformed marks an audited event whose data cannot be mapped; retrying cannot fix it.
var ErrMalformed = errors.New("malformed audit event")

// Record is one row of audit_logs. Empty strings and nil maps stand for "unknown".
type Record struct {
	EventID    string         // the event's ce_id: unique
	EventType  events.Type    // the event's ce_type
	OccurredAt time.Time      // when the audited thing happened (zero: unknown)
	Action     string         // one of the Action constants
	ActorID    string         // the user on whose behalf it happened
	ActorName  string         // their display name, when the event carries it
	ResourceID string         // the job id
	Entity     string         // products, suppliers
	Format     string         // csv, excel, json
	Filters    map[string]any // the export's filters (requests only)
	RowCount   *int64         // rows exported (completions only)
	RiskLevel  string
	Details    map[string]any // what else the event says, for investigations
}

// Map is the audit record of env; ok is false for events that are not audited.
func Map(env events.Envelope) (rec Record, ok bool, err error) {
	switch env.Type {
	case events.TypeRequested, events.TypeCompleted, events.TypeFailed, events.TypeCancelled:
	default:
		return Record{}, false, nil
	}
	ev, err := events.DecodeAny(env)
	if err != nil {
		return Record{}, false, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	rec = Record{
		EventID:    env.ID,
		EventType:  env.Type,
		OccurredAt: ev.OccurredAt(),
		ResourceID: ev.Key(),
		RiskLevel:  RiskMedium,
	}
	if rec.OccurredAt.IsZero() {
		rec.OccurredAt = env.Time
	}
	if !rec.OccurredAt.IsZero() {
		rec.OccurredAt = rec.OccurredAt.UTC()
	}
	switch e := ev.(type) {
	case events.ExportRequested:
		rec.Action = ActionRequested
		rec.ActorID, rec.ActorName = e.RequestedBy, e.RequesterName
		rec.Entity, rec.Format = e.Entity, e.Format
		rec.Filters = e.Filters
		rec.Details = compact(map[string]any{
			"fields":         e.Fields,
			"exclude_fields": e.ExcludeFields,
			"options":        e.Options,
			"file_name":      e.FileName,
			"schedule_id":    e.ScheduleID,
			"platform_id":    e.PlatformID,
		})
	case events.ExportCompleted:
		rec.Action = ActionCompleted
		rec.ActorID = e.RequestedBy
		rec.Entity, rec.Format = e.Entity, e.Format
		rows := e.Rows
		rec.RowCount = &rows
		rec.Details = compact(map[string]any{
			"object":      e.Object,
			"duration_ms": e.DurationMS,
			"started_at":  e.StartedAt,
			"schedule_id": e.ScheduleID,
			"platform_id": e.PlatformID,
		})
	case events.ExportFailed:
		rec.Action = ActionFailed
		rec.ActorID = e.RequestedBy
		rec.Entity, rec.Format = e.Entity, e.Format
		rec.Details = compact(map[string]any{
			"code":    e.Code,
			"message": e.Message,
			"attempt": e.Attempt,
		})
	case events.ExportCancelled:
		rec.Action = ActionCancelled
		rec.ActorID = e.CancelledBy
		rec.Entity, rec.Format = e.Entity, e.Format
		rec.RiskLevel = RiskLow
		rec.Details = compact(map[string]any{"reason": e.Reason, "requested_by": e.RequestedBy})
	}
	if rec.ResourceID == "" {
		return Record{}, false, fmt.Errorf("%w: %s %s has no job_id", ErrMalformed, env.Type, env.ID)
	}
	return rec, true, nil
}

// compact drops the empty values, so details hold only what the event said.
func compact(m map[string]any) map[string]any {
	for k, v := range m {
		empty := false
		switch v := v.(type) {
		case nil:
			empty = true
		case string:
			empty = v == ""
		case []string:
			empty = len(v) == 0
		case map[string]any:
			empty = len(v) == 0
		case *string:
			empty = v == nil
		case time.Time:
			empty = v.IsZero()
		}
		if empty {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// Recorder stores audit records.
type Recorder interface {
	// Record stores rec unless a record with its EventID exists; inserted says which.
	Record(ctx context.Context, rec Record) (inserted bool, err error)
}

// Sink audits events into a Recorder.
type Sink struct {
	rec     Recorder
	metrics *Metrics
}

// NewSink builds a sink; metrics may be nil.
func NewSink(r Recorder, m *Metrics) *Sink { return &Sink{rec: r, metrics: m} }

// Handle audits one event: nil once its record is stored (or it is not audited, or it is a
// repeat), an error wrapping ErrMalformed for an event that can never be recorded, any other
// error to be retried.
func (s *Sink) Handle(ctx context.Context, env events.Envelope) error {
	rec, ok, err := Map(env)
	if err != nil {
		s.metrics.observe(env.Type, outcomeMalformed)
		return err
	}
	if !ok {
		s.metrics.observe(env.Type, outcomeIgnored)
		return nil
	}
	inserted, err := s.rec.Record(ctx, rec)
	if err != nil {
		return fmt.Errorf("recording %s %s: %w", rec.Action, rec.EventID, err)
	}
	if inserted {
		s.metrics.observe(env.Type, outcomeRecorded)
	} else {
		s.metrics.observe(env.Type, outcomeDuplicate)
	}
	return nil
}
