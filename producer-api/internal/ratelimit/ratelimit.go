// Package ratelimit counts each user's requests per class in one-minute windows kept in
// PostgreSQL, so that every producer-api replica enforces the same limit: the 51st export
// creation of a minute is refused whichever replica it reaches.
//
// The window is fixed and aligned on the minute (like GitHub's API): a client sees its limit,
// what is left, and when the window resets (X-RateLimit-Reset), and a refused request is told
// how long to wait (Retry-After, the seconds to the reset). Counting is one upsert on an
// UNLOGGED table; a crash of the database forgets the counts, which only resets the windows.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Window is the length of a counting window.
const Window = time.Minute

// Classes of requests, each with its own limit per window.
const (
	Exports   = "exports"   // creating, cancelling and deleting exports
	Streams   = "streams"   // GET /stream/…
	Downloads = "downloads" // GET /download/…
	Schedules = "schedules" // creating, changing, running and deleting schedules
	Reads     = "reads"     // every other read: progress polling, lists, jobs
)

// Decision is the answer for one request.
type Decision struct {
	Allowed   bool
	Limit     int       // requests allowed per window
	Remaining int       // left in this window after this one
	Reset     time.Time // when the window ends
}

// RetryAfter is how long a refused client should wait: to the window's end, at least a second.
func (d Decision) RetryAfter(now time.Time) time.Duration {
	return max(d.Reset.Sub(now), time.Second).Round(time.Second)
}

// Limiter is the shared counter. It is safe for concurrent use.
type Limiter struct {
	pool   *pgxpool.Pool
	limits map[string]int
	now    func() time.Time
}

// New counts in pool's rate_limits table (pkg/jobstore's migrations create it) with limits per
// class; a class without a limit is not limited.
func New(pool *pgxpool.Pool, limits map[string]int) *Limiter {
	return &Limiter{pool: pool, limits: limits, now: time.Now}
}

// Take counts one request of subject in class and says whether it is allowed.
func (l *Limiter) Take(ctx context.Context, subject, class string) (Decision, error) {
	limit, ok := l.limits[class]
	if !ok || limit <= 0 {
		return Decision{Allowed: true}, nil
	}
	start := l.now().UTC().Truncate(Window)
	d := Decision{Limit: limit, Reset: start.Add(Window)}
	var count int
	if err := l.pool.QueryRow(ctx, `INSERT INTO rate_limits AS r (subject, class, window_start, count)
		VALUES ($1, $2, $3, 1)
		ON CONFLICT (subject, class, window_start) DO UPDATE SET count = r.count + 1
		RETURNING count`, subject, class, start).Scan(&count); err != nil {
		return d, fmt.Errorf("counting a %s request of %s: %w", class, subject, err)
	}
	d.Allowed = count <= limit
	d.Remaining = max(limit-count, 0)
	return d, nil
}

// Sweep deletes the windows that ended before now less keep.
func (l *Limiter) Sweep(ctx context.Context, keep time.Duration) (int64, error) {
	tag, err := l.pool.Exec(ctx, `DELETE FROM rate_limits WHERE window_start < $1`, l.now().Add(-keep-Window))
	if err != nil {
		return 0, fmt.Errorf("sweeping old rate limit windows: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Run sweeps every interval until ctx ends.
func (l *Limiter) Run(ctx context.Context, every time.Duration, onError func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := l.Sweep(ctx, time.Hour); err != nil && !errors.Is(err, context.Canceled) {
				onError(err)
			}
		}
	}
}

// Slots bounds how many streams one user runs at once across every replica: a slot is a
// PostgreSQL session advisory lock, held on a connection of its own for the stream's life, so a
// replica that dies frees its slots with its connections.
type Slots struct {
	pool    *pgxpool.Pool
	perUser int
}

// NewSlots allows perUser slots per user (0: no bound).
func NewSlots(pool *pgxpool.Pool, perUser int) *Slots { return &Slots{pool: pool, perUser: perUser} }

// Acquire takes one of subject's slots: ok false when all are taken. release gives it back.
func (s *Slots) Acquire(ctx context.Context, subject string) (release func(), ok bool, err error) {
	if s.perUser <= 0 {
		return func() {}, true, nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("acquiring a connection for a stream slot: %w", err)
	}
	for slot := 1; slot <= s.perUser; slot++ {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('stream:' || $1), $2)`, subject, slot).Scan(&got); err != nil {
			conn.Release()
			return nil, false, fmt.Errorf("taking a stream slot of %s: %w", subject, err)
		}
		if got {
			return func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('stream:' || $1), $2)`, subject, slot); err != nil {
					// The lock would outlive the stream on a pooled connection: close it instead.
					_ = conn.Conn().Close(ctx)
				}
				conn.Release()
			}, true, nil
		}
	}
	conn.Release()
	return nil, false, nil
}
