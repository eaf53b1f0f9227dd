// Package audit turns export events into audit records (CONTRACT §7, db_analytics.audit_logs)
// and hands them to a Recorder.
//
// Invariants:
//   - one record per audited event, identified by the event's ce_id: a repeat of an event (the
//     bus delivers at least once) maps to the same EventID, and a Recorder keeps only the first;
//   - ExportRequested, ExportStarted, ExportCompleted, ExportFailed, ExportCancelled and the
//     access events (events.Accessed: downloads, streams, deletions, schedule changes,
//     refusals) are audited; every other event,
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
	"maps"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// Actions of the job events, as stored in audit_logs.action (the access events carry theirs).
const (
	ActionRequested = "export.requested"
	ActionStarted   = "export.started"
	ActionCompleted = "export.completed"
	ActionFailed    = "export.failed"
	ActionCancelled = "export.cancelled" // who stopped (or deleted) a job before it ended
	ActionDelivered = "export.delivered" // a file copied to a platform's destination
)

// Risk levels (see Risk).
const (
	RiskLow    = "low"
	RiskMedium = "medium"
	RiskHigh   = "high"
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
	RowCount   *int64         // rows exported (completions, downloads, streams)
	Bytes      *int64         // bytes sent (downloads, streams)
	ClientIP   string         // who asked from where (access events)
	UserAgent  string
	RiskLevel  string
	Details    map[string]any // what else the event says, for investigations
}

// Map is the audit record of env; ok is false for events that are not audited.
func Map(env events.Envelope) (rec Record, ok bool, err error) {
	switch env.Type {
	case events.TypeRequested, events.TypeStarted, events.TypeCompleted, events.TypeFailed, events.TypeCancelled,
		events.TypeAccessed, events.TypeDelivered:
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
		rec.RiskLevel = Risk(Exposure{Entity: e.Entity, Fields: e.Fields, Filters: e.Filters})
		rec.Details = compact(map[string]any{
			"fields":         e.Fields,
			"exclude_fields": e.ExcludeFields,
			"options":        e.Options,
			"file_name":      e.FileName,
			"schedule_id":    e.ScheduleID,
			"platform_id":    e.PlatformID,
		})
	case events.ExportDelivered:
		// The file left for a destination outside the platform: the export's own risk was
		// audited with its request; this records where it went (medium, the seed's default).
		rec.Action, rec.ActorID, rec.ResourceID = ActionDelivered, e.RequestedBy, e.JobID
		size := e.Object.SizeBytes
		rec.Bytes = &size
		rec.Details = compact(map[string]any{"target": e.Target, "attempt": e.Attempt, "platform_id": e.PlatformID,
			"sha256": e.Object.SHA256})
	case events.ExportStarted:
		rec.Action = ActionStarted
		rec.RiskLevel = RiskLow // the request was audited with its risk; this only dates the attempt
		rec.Details = compact(map[string]any{"attempt": e.Attempt})
	case events.ExportCompleted:
		rec.Action = ActionCompleted
		rec.ActorID = e.RequestedBy
		rec.Entity, rec.Format = e.Entity, e.Format
		rows := e.Rows
		rec.RowCount = &rows
		if rows <= smallExport {
			rec.RiskLevel = RiskLow
		}
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
	case events.Accessed:
		rec.Action = e.Action
		rec.ActorID, rec.ActorName = e.ActorID, e.ActorName
		rec.ResourceID = e.ResourceID
		rec.Entity, rec.Format, rec.Filters = e.Entity, e.Format, e.Filters
		rec.RowCount, rec.Bytes = e.Rows, e.Bytes
		rec.ClientIP, rec.UserAgent = e.ClientIP, e.UserAgent
		rec.RiskLevel = Risk(Exposure{Action: e.Action, Entity: e.Entity, Fields: e.Fields, Filters: e.Filters,
			Rows: e.Rows, OthersResource: e.Manager && e.Owner != "" && e.Owner != e.ActorID, RepeatedDenials: e.Suppressed > 0})
		rec.Details = compact(map[string]any{
			"resource_type": e.ResourceType, "owner": e.Owner, "fields": e.Fields, "status": e.Status,
			"reason": e.Reason, "complete": e.Complete, "manager": e.Manager, "suppressed": e.Suppressed,
		})
	}
	if rec.ResourceID == "" {
		return Record{}, false, fmt.Errorf("%w: %s %s has no job_id", ErrMalformed, env.Type, env.ID)
	}
	return rec, true, nil
}

// smallExport is the most rows an export may hold and stay low risk.
const smallExport = 1000

// sensitive are the fields whose export raises the risk: prices and costs, suppliers and their
// contacts (personal data).
var sensitive = map[string]bool{
	"price": true, "cost_price": true, "supplier_id": true, "supplier_name": true, "suppliers": true,
	"email": true, "phone": true,
}

// Exposure is what decides an audit record's risk.
type Exposure struct {
	Action  string         // an access event's action; "" for a job event
	Entity  string         // products, suppliers
	Fields  []string       // exported fields; none means the entity's defaults
	Filters map[string]any // none means the whole catalog
	Rows    *int64         // rows sent, when known
	// OthersResource: an actor with MANAGE_EXPORTS acted on another user's resource.
	OthersResource bool
	// RepeatedDenials: the actor was refused several times in a short while (the sink counts),
	// or the event summarises refusals too many to audit one by one (pkg/refusals).
	RepeatedDenials bool
}

// Risk is the documented rule (README, "Audit"):
//   - high: an actor with MANAGE_EXPORTS acting on another user's resource; repeated refusals
//     (5 in 10 minutes, or a summary of refusals of one client too many to audit one by one);
//     a whole-catalog export (no filter) that holds sensitive fields (prices,
//     costs, suppliers, contacts; the default fields hold prices);
//   - low: an export, download or stream of at most 1,000 rows without sensitive fields; a
//     cancellation; a schedule or platform change; a single refusal or rate limit;
//   - medium, the seed's default for data exports: everything else.
func Risk(x Exposure) string {
	if x.OthersResource || x.RepeatedDenials {
		return RiskHigh
	}
	switch x.Action {
	case events.ActionDenied, events.ActionRateLimited, events.ActionScheduleCreated, events.ActionScheduleUpdated,
		events.ActionScheduleToggled, events.ActionScheduleDeleted, events.ActionScheduleRun, events.ActionDeleted,
		events.ActionPlatformCreated, events.ActionPlatformUpdated, events.ActionPlatformDeleted:
		return RiskLow
	}
	holdsSensitive := len(x.Fields) == 0 && x.Entity == "products" || x.Entity == "suppliers" && len(x.Fields) == 0
	for _, f := range x.Fields {
		if sensitive[f] {
			holdsSensitive = true
		}
	}
	switch {
	case holdsSensitive && len(x.Filters) == 0 && (x.Rows == nil || *x.Rows > smallExport):
		return RiskHigh
	case !holdsSensitive && x.Rows != nil && *x.Rows <= smallExport:
		return RiskLow
	}
	return RiskMedium
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
		case *bool:
			empty = v == nil
		case bool:
			empty = !v
		case int:
			empty = v == 0
		case int64:
			empty = v == 0
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

// Denials is a Recorder that can count an actor's recent refusals (the repeated-refusals rule).
type Denials interface {
	Denials(ctx context.Context, actor string, since time.Time) (int, error)
}

// RepeatedDenials refusals of one actor within DenialWindow make the last one high risk.
const (
	RepeatedDenials = 5
	DenialWindow    = 10 * time.Minute
)

func mergeDetails(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]any{}
	}
	maps.Copy(out, b)
	return out
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
	if rec.Action == events.ActionDenied && rec.ActorID != "" {
		if d, ok := s.rec.(Denials); ok {
			n, err := d.Denials(ctx, rec.ActorID, rec.OccurredAt.Add(-DenialWindow))
			if err != nil {
				return fmt.Errorf("auditing %s: %w", rec.EventID, err)
			}
			if n+1 >= RepeatedDenials {
				rec.RiskLevel = RiskHigh
				rec.Details = compact(mergeDetails(rec.Details, map[string]any{"recent_denials": n + 1}))
			}
		}
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
