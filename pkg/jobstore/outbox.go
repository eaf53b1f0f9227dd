package jobstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// OutboxChannel is the PostgreSQL notification channel told of every outbox write, so relays
// in any process wake at once instead of polling.
const OutboxChannel = "exports_outbox"

// relayLock is the advisory lock a relay holds while it relays a batch: one relay at a time
// keeps each job's events in commit order on Kafka, whichever process relays.
const relayLock = 0x6f7574626f78 // "outbox"

// TopicOf is the topic an event goes to: requests to exports.requested, the rest to
// exports.events.
func TopicOf(ev events.Event) string {
	if ev.EventType() == events.TypeRequested {
		return events.TopicRequested
	}
	return events.TopicEvents
}

// MaxEventBytes bounds an event's data. Kafka refuses records over its max.message.bytes (1 MB
// by default): an event that could never be relayed is refused before anything is stored.
const MaxEventBytes = 256 << 10

// ErrEventTooLarge is returned when a change would announce an event over MaxEventBytes.
var ErrEventTooLarge = errors.New("event too large")

// appendOutbox writes evs to the outbox within tx, in order, and notifies the relays. Each row
// keeps the trace context of ctx (the change's span, when traced): the record the relay
// produces later continues that trace and carries it as ce_traceparent.
func appendOutbox(ctx context.Context, tx pgx.Tx, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	traceparent, tracestate := telemetry.TraceParent(ctx)
	for _, ev := range evs {
		env, err := events.Wrap(ev)
		if err != nil {
			return err
		}
		if len(env.Data) > MaxEventBytes {
			return fmt.Errorf("%w: %s of job %s would be %d bytes, more than %d", ErrEventTooLarge, env.Type, env.Key, len(env.Data), MaxEventBytes)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO outbox (topic, key, ce_id, ce_type, ce_source, ce_time, data, traceparent, tracestate)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, TopicOf(ev), env.Key, env.ID, string(env.Type), env.Source, env.Time,
			[]byte(env.Data), nullable(traceparent), nullable(tracestate)); err != nil {
			return fmt.Errorf("writing %s to the outbox: %w", env.Type, err)
		}
	}
	// Delivered at commit, once per transaction whatever the number of calls.
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, OutboxChannel); err != nil {
		return fmt.Errorf("notifying the outbox relays: %w", err)
	}
	return nil
}

// Audit queues audit events (events.Accessed) for the relay, in one transaction.
func (s *Store) Audit(ctx context.Context, evs ...events.Event) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return appendOutbox(ctx, tx, evs) })
}

// AuditTx queues audit events within tx: the change they record commits with them.
func AuditTx(ctx context.Context, tx pgx.Tx, evs ...events.Event) error {
	return appendOutbox(ctx, tx, evs)
}

// OutboxMessage is one event waiting in the outbox.
type OutboxMessage struct {
	Topic    string
	Envelope events.Envelope
}

// ErrUndeliverable marks a publish error no retry can fix (the broker refuses the record as too
// large, say): the row moves to outbox_dead with the error, out of the way of the rows behind.
var ErrUndeliverable = errors.New("undeliverable event")

// errMissing stands for an error publish did not return: the row stays.
var errMissing = errors.New("publish returned no result for this event")

// RelayResult says what one RelayOutbox call did.
type RelayResult struct {
	Relayed int // acknowledged by Kafka and removed
	Dead    int // moved to outbox_dead
	Failed  int // left for the next call
	// Busy: another relay held the lock; nothing was read.
	Busy bool
}

// RelayOutbox locks up to limit outbox rows (oldest first) and hands them to publish, which
// answers one error per message (nil: acknowledged). Acknowledged rows are deleted, rows whose
// error wraps ErrUndeliverable are moved to outbox_dead, the rest stay, all in one transaction:
// an event leaves the outbox only once Kafka has it or it can never be sent. Only one relay
// works at a time (an advisory lock); another finds Busy. A row behind a failed row of the same
// key stays too, even if acknowledged: sent again after it, the key's newest event is its last
// on Kafka (a duplicate, which consumers drop by ce_id or version, rather than a stale event last).
func (s *Store) RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []OutboxMessage) []error) (RelayResult, error) {
	var res RelayResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res = RelayResult{}
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, relayLock).Scan(&locked); err != nil {
			return fmt.Errorf("taking the relay lock: %w", err)
		}
		if !locked {
			res.Busy = true
			return nil
		}
		ids, msgs, err := readOutbox(ctx, tx, limit)
		if err != nil || len(msgs) == 0 {
			return err
		}
		errs := publish(ctx, msgs)
		var done, dead []int64
		var reasons []string
		failed := map[string]bool{} // keys with a row left behind
		for i, id := range ids {
			perr := errMissing
			if i < len(errs) {
				perr = errs[i]
			}
			key := msgs[i].Envelope.Key
			switch {
			case failed[key]:
				res.Failed++
			case perr == nil:
				done = append(done, id)
			case errors.Is(perr, ErrUndeliverable):
				dead, reasons = append(dead, id), append(reasons, perr.Error())
			default:
				res.Failed++
				failed[key] = true
			}
		}
		if len(dead) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO outbox_dead (id, topic, key, ce_id, ce_type, ce_source, ce_time, data, created_at, reason, traceparent, tracestate)
				SELECT o.id, o.topic, o.key, o.ce_id, o.ce_type, o.ce_source, o.ce_time, o.data, o.created_at, r.reason, o.traceparent, o.tracestate
				FROM outbox o JOIN unnest($1::bigint[], $2::text[]) AS r(id, reason) ON r.id = o.id
				ON CONFLICT (id) DO NOTHING`, dead, reasons); err != nil {
				return fmt.Errorf("moving undeliverable outbox rows aside: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, append(done, dead...)); err != nil {
			return fmt.Errorf("deleting relayed outbox rows: %w", err)
		}
		res.Relayed, res.Dead = len(done), len(dead)
		return nil
	})
	if err != nil {
		// Kafka may have the events; the rows stay and will be sent again with the same ce_id.
		return RelayResult{}, fmt.Errorf("relaying outbox: %w", err)
	}
	return res, nil
}

func readOutbox(ctx context.Context, tx pgx.Tx, limit int) ([]int64, []OutboxMessage, error) {
	rows, err := tx.Query(ctx, `SELECT id, topic, key, ce_id, ce_type, ce_source, ce_time, data,
		coalesce(traceparent, ''), coalesce(tracestate, '') FROM outbox ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("reading outbox: %w", err)
	}
	defer rows.Close()
	var ids []int64
	var msgs []OutboxMessage
	for rows.Next() {
		var id int64
		var m OutboxMessage
		var typ string
		if err := rows.Scan(&id, &m.Topic, &m.Envelope.Key, &m.Envelope.ID, &typ, &m.Envelope.Source,
			&m.Envelope.Time, &m.Envelope.Data, &m.Envelope.TraceParent, &m.Envelope.TraceState); err != nil {
			return nil, nil, fmt.Errorf("reading outbox: %w", err)
		}
		m.Envelope.Type = events.Type(typ)
		ids = append(ids, id)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading outbox: %w", err)
	}
	return ids, msgs, nil
}

// OutboxStats is the outbox's health: events waiting, the age of the oldest, and events
// moved aside as undeliverable.
type OutboxStats struct {
	Backlog int64
	Oldest  time.Duration
	Dead    int64
}

// Outbox reads the outbox's health.
func (s *Store) Outbox(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	var oldest float64
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox),
			coalesce((SELECT extract(epoch FROM now() - min(created_at)) FROM outbox), 0),
			(SELECT count(*) FROM outbox_dead)`).Scan(&st.Backlog, &oldest, &st.Dead)
	if err != nil {
		return OutboxStats{}, fmt.Errorf("reading outbox health: %w", err)
	}
	st.Oldest = time.Duration(oldest * float64(time.Second))
	return st, nil
}

// Listen calls wake on every committed outbox write until ctx ends, on a connection of its
// own (LISTEN): the relay sleeps without polling and wakes within milliseconds.
func (s *Store) Listen(ctx context.Context, wake func()) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("listening for outbox writes: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `LISTEN `+OutboxChannel); err != nil {
		return fmt.Errorf("listening for outbox writes: %w", err)
	}
	defer func() {
		// The connection returns to the pool: stop listening on it (or drop it if that fails).
		if _, err := conn.Exec(context.WithoutCancel(ctx), `UNLISTEN *`); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	// Rows committed before the LISTEN took effect sent their notification to nobody: one
	// wake-up now covers them.
	wake()
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("waiting for outbox writes: %w", err)
		}
		wake()
	}
}

// Pending returns the events waiting in the outbox for key (every key when ""), oldest first,
// without relaying them: for tests and diagnostics.
func (s *Store) Pending(ctx context.Context, key string) ([]OutboxMessage, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic, key, ce_id, ce_type, ce_source, ce_time, data,
		coalesce(traceparent, ''), coalesce(tracestate, '') FROM outbox WHERE $1 = '' OR key = $1 ORDER BY id`, key)
	if err != nil {
		return nil, fmt.Errorf("reading outbox: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxMessage, error) {
		var m OutboxMessage
		var typ string
		err := r.Scan(&m.Topic, &m.Envelope.Key, &m.Envelope.ID, &typ, &m.Envelope.Source, &m.Envelope.Time, &m.Envelope.Data,
			&m.Envelope.TraceParent, &m.Envelope.TraceState)
		m.Envelope.Type = events.Type(typ)
		return m, err
	})
}

// SetClock replaces the store's clock (lease expiry, command times): for tests.
func (s *Store) SetClock(now func() time.Time) { s.now = now }
