package jobstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/productsmanager/exportplatform/pkg/events"
)

func insertOutbox(ctx context.Context, tx pgx.Tx, topic string, env events.Envelope) error {
	_, err := tx.Exec(ctx, `INSERT INTO outbox (topic, key, ce_id, ce_type, ce_source, ce_time, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, topic, env.Key, env.ID, string(env.Type), env.Source, env.Time, []byte(env.Data))
	if err != nil {
		return fmt.Errorf("writing %s to the outbox: %w", env.Type, err)
	}
	return nil
}

// OutboxMessage is one event waiting in the outbox.
type OutboxMessage struct {
	Topic    string
	Envelope events.Envelope
}

// RelayOutbox locks up to limit outbox rows (oldest first, skipping rows another relay holds),
// hands them to publish and deletes them once publish returned nil, all in one transaction: an
// event leaves the outbox only after Kafka acknowledged it. It returns how many were relayed.
func (s *Store) RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []OutboxMessage) error) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("relaying outbox: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, `SELECT id, topic, key, ce_id, ce_type, ce_source, ce_time, data FROM outbox
		ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	if err != nil {
		return 0, fmt.Errorf("reading outbox: %w", err)
	}
	var ids []int64
	var msgs []OutboxMessage
	for rows.Next() {
		var id int64
		var m OutboxMessage
		var typ string
		if err := rows.Scan(&id, &m.Topic, &m.Envelope.Key, &m.Envelope.ID, &typ, &m.Envelope.Source,
			&m.Envelope.Time, &m.Envelope.Data); err != nil {
			rows.Close()
			return 0, fmt.Errorf("reading outbox: %w", err)
		}
		m.Envelope.Type = events.Type(typ)
		ids = append(ids, id)
		msgs = append(msgs, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("reading outbox: %w", err)
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	if err := publish(ctx, msgs); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("deleting relayed outbox rows: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		// Kafka has the events; the rows stay and will be sent again with the same ce_id.
		return 0, fmt.Errorf("committing relayed outbox rows: %w", err)
	}
	return len(msgs), nil
}

// OutboxBacklog counts events not yet relayed.
func (s *Store) OutboxBacklog(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting outbox: %w", err)
	}
	return n, nil
}
