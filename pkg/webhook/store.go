package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// Delivery statuses of a notification.
const (
	StatusPending   = "pending"   // waiting for its next attempt
	StatusSending   = "sending"   // a worker holds it
	StatusDelivered = "delivered" // the receiver answered 2xx
	StatusFailed    = "failed"    // given up (retries spent, or the endpoint was switched off)
	StatusSkipped   = "skipped"   // not sent: the endpoint was off when the event came
)

// DisableAfter consecutive failed attempts switch a platform's endpoint off, with the reason.
const DisableAfter = 5

// Delivery is one notification of one event to one platform's endpoint.
type Delivery struct {
	ID             string     `json:"id"`
	PlatformID     *string    `json:"platform_id"` // nil for a request's own webhook
	SecretRef      string     `json:"-"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	JobID          string     `json:"job_id"`
	URL            string     `json:"url"`
	Payload        []byte     `json:"-"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	LastError      *string    `json:"last_error"`
	ResponseStatus *int       `json:"response_status"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	DeliveredAt    *time.Time `json:"delivered_at"`
}

// Endpoint is the state of a platform's webhook endpoint.
type Endpoint struct {
	URL                 string     `json:"url"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	DisabledAt          *time.Time `json:"disabled_at"`
	DisabledReason      *string    `json:"disabled_reason"`
}

// ErrNone: nothing to send now.
var ErrNone = errors.New("no webhook due")

// Store is the webhook deliveries' repository (exports database, migrated by jobstore.Migrate).
type Store struct{ pool *pgxpool.Pool }

// NewStore wraps a pool of the exports database.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const columns = `id::text, platform_id::text, secret_ref, event_id, event_type, job_id, url, payload, status, attempts,
	next_attempt_at, last_error, response_status, created_at, updated_at, delivered_at`

func scan(row pgx.Row) (Delivery, error) {
	var d Delivery
	err := row.Scan(&d.ID, &d.PlatformID, &d.SecretRef, &d.EventID, &d.EventType, &d.JobID, &d.URL, &d.Payload, &d.Status, &d.Attempts,
		&d.NextAttemptAt, &d.LastError, &d.ResponseStatus, &d.CreatedAt, &d.UpdatedAt, &d.DeliveredAt)
	return d, err
}

// Notification is one event to notify to one webhook: a platform's (PlatformID set) or a
// request's own (PlatformID empty).
type Notification struct {
	PlatformID, EventID, EventType, JobID, URL, SecretRef string
	Payload                                               []byte
}

// Enqueue records a notification, once per (webhook, event): a repeat of the event changes
// nothing. When a platform's endpoint is switched off it is recorded skipped, with the reason,
// and not sent. It reports whether a notification was added.
func (s *Store) Enqueue(ctx context.Context, n Notification, now time.Time) (bool, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return false, err
	}
	var platformID *string
	if n.PlatformID != "" {
		platformID = &n.PlatformID
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO webhook_deliveries (id, platform_id, event_id, event_type, job_id, url, payload,
		secret_ref, status, next_attempt_at, last_error, created_at, updated_at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $9,
			CASE WHEN e.disabled_at IS NULL THEN 'pending' ELSE 'skipped' END,
			CASE WHEN e.disabled_at IS NULL THEN $8::timestamptz END,
			CASE WHEN e.disabled_at IS NOT NULL THEN 'endpoint switched off: ' || e.disabled_reason END, $8, $8
		FROM (SELECT 1) one LEFT JOIN webhook_endpoints e ON e.platform_id = $2 AND e.url = $6
		ON CONFLICT DO NOTHING`,
		id, platformID, n.EventID, n.EventType, n.JobID, n.URL, n.Payload, now, n.SecretRef)
	if err != nil {
		return false, fmt.Errorf("queueing the %s webhook of job %s: %w", n.EventType, n.JobID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Claim takes the notification due longest ago (a next attempt, or a lapsed lease) for owner.
func (s *Store) Claim(ctx context.Context, owner string, ttl time.Duration, now time.Time) (Delivery, error) {
	d, err := scan(s.pool.QueryRow(ctx, `UPDATE webhook_deliveries SET status = 'sending', attempts = attempts + 1,
		lease_owner = $1, lease_expires_at = $2, updated_at = $3
		WHERE id = (SELECT id FROM webhook_deliveries
			WHERE (status = 'pending' AND next_attempt_at <= $3) OR (status = 'sending' AND lease_expires_at < $3)
			ORDER BY coalesce(next_attempt_at, lease_expires_at) LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+columns, owner, now.Add(ttl), now))
	if errors.Is(err, pgx.ErrNoRows) {
		return Delivery{}, ErrNone
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("claiming a webhook: %w", err)
	}
	return d, nil
}

// Next is when the next notification falls due (nil: none waits).
func (s *Store) Next(ctx context.Context) (*time.Time, error) {
	var at *time.Time
	err := s.pool.QueryRow(ctx, `SELECT min(coalesce(next_attempt_at, lease_expires_at)) FROM webhook_deliveries
		WHERE status IN ('pending', 'sending')`).Scan(&at)
	return at, err
}

// errLost: the row is no longer the worker's (its lease lapsed and another took it).
var errLost = errors.New("webhook lease lost")

// Delivered records a 2xx answer and resets the endpoint's failure count.
func (s *Store) Delivered(ctx context.Context, d Delivery, owner string, status int, now time.Time) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = 'delivered', response_status = $3, delivered_at = $4,
			updated_at = $4, last_error = NULL, next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL
			WHERE id = $1 AND status = 'sending' AND lease_owner = $2`, d.ID, owner, status, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errLost
		}
		if d.PlatformID == nil {
			return nil // a request's own webhook has no endpoint state
		}
		_, err = tx.Exec(ctx, `INSERT INTO webhook_endpoints (platform_id, url, consecutive_failures, updated_at)
			VALUES ($1, $2, 0, $3) ON CONFLICT (platform_id) DO UPDATE SET url = $2, consecutive_failures = 0, updated_at = $3`,
			d.PlatformID, d.URL, now)
		return err
	})
}

// Failed records a failed attempt (msg, the HTTP status when there was one). The endpoint's
// failures grow by one; at DisableAfter it is switched off with msg as the reason, and its
// waiting notifications fail. Otherwise the notification is tried again after retryAfter, or
// fails when retryAfter is 0.
func (s *Store) Failed(ctx context.Context, d Delivery, owner, msg string, status *int, retryAfter time.Duration, now time.Time) (disabled bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var failures int
		if d.PlatformID != nil {
			if err := tx.QueryRow(ctx, `INSERT INTO webhook_endpoints (platform_id, url, consecutive_failures, updated_at)
			VALUES ($1, $2, 1, $3) ON CONFLICT (platform_id) DO UPDATE
			SET consecutive_failures = CASE WHEN webhook_endpoints.url = $2 THEN webhook_endpoints.consecutive_failures + 1 ELSE 1 END,
				url = $2, updated_at = $3
			RETURNING consecutive_failures`, d.PlatformID, d.URL, now).Scan(&failures); err != nil {
				return err
			}
		}
		next := "pending"
		var at *time.Time
		if retryAfter > 0 {
			at = new(time.Time)
			*at = now.Add(retryAfter)
		} else {
			next = "failed"
		}
		if failures >= DisableAfter {
			disabled, next, at = true, "failed", nil
			reason := fmt.Sprintf("%d consecutive failures, the last: %s", failures, msg)
			if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3 WHERE platform_id = $1`,
				d.PlatformID, now, reason); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, updated_at = $3,
				last_error = 'endpoint switched off: ' || $2 WHERE platform_id = $1 AND status = 'pending'`, d.PlatformID, reason, now); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, last_error = $5,
			response_status = $6, updated_at = $7, lease_owner = NULL, lease_expires_at = NULL
			WHERE id = $1 AND status = 'sending' AND lease_owner = $2`, d.ID, owner, next, at, msg, status, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errLost
		}
		return nil
	})
	return disabled, err
}

// Endpoint is the state of a platform's endpoint (nil: never notified).
func (s *Store) Endpoint(ctx context.Context, platformID string) (*Endpoint, error) {
	var e Endpoint
	err := s.pool.QueryRow(ctx, `SELECT url, consecutive_failures, disabled_at, disabled_reason FROM webhook_endpoints
		WHERE platform_id = $1`, platformID).Scan(&e.URL, &e.ConsecutiveFailures, &e.DisabledAt, &e.DisabledReason)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the webhook endpoint of platform %s: %w", platformID, err)
	}
	return &e, nil
}

// Enable switches a platform's endpoint back on (a person saved the platform again).
func (s *Store) Enable(ctx context.Context, platformID string, now time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL,
		consecutive_failures = 0, updated_at = $2 WHERE platform_id = $1`, platformID, now)
	return err
}

// List is a platform's notifications, newest first, with the next page's cursor.
func (s *Store) List(ctx context.Context, platformID string, limit int, cursor string) ([]Delivery, string, error) {
	p, err := jobstore.NewPage(limit, cursor)
	if err != nil {
		return nil, "", err
	}
	p.Where("platform_id = %s", platformID)
	sql, args := p.Query(`SELECT ` + columns + ` FROM webhook_deliveries`)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing webhook deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) { return scan(r) })
	if err != nil {
		return nil, "", fmt.Errorf("listing webhook deliveries: %w", err)
	}
	out, next := jobstore.PageOf(p, out, func(d Delivery) (time.Time, string) { return d.CreatedAt, d.ID })
	return out, next, nil
}
