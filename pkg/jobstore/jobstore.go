// Package jobstore is the job repository of the platform's own database (`exports`): it loads a
// job, lets pkg/job decide a command's effect, and saves the result with compare-and-set on the
// job's version, appending the events the change announces to the transactional outbox in the
// same transaction. It is the only writer of the jobs table.
//
// Invariants:
//   - a job's row and its events are written together (Create, Do): the outbox holds every
//     event of a job in the order its changes were committed, and the relay keeps that order;
//   - at most one worker holds a job's lease at a time (Claim, ClaimNext; a lapsed lease can be
//     claimed again, which is how a crashed worker's job gets finished);
//   - a completed job was announced in the same transaction, so nothing redoes it.
package jobstore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

//go:embed migrations/*.sql
var migrations embed.FS

// The job itself is pkg/job's; these names keep the store's callers short.
type (
	Job      = job.Job
	Status   = job.Status
	JobError = job.Error
)

// Job statuses.
const (
	StatusQueued    = job.StatusQueued
	StatusRunning   = job.StatusRunning
	StatusCompleted = job.StatusCompleted
	StatusFailed    = job.StatusFailed
	StatusCancelled = job.StatusCancelled
	StatusExpired   = job.StatusExpired
)

// Errors callers branch on: job's refusals.
var (
	// ErrNotFound is returned for an unknown (or deleted) job.
	ErrNotFound = job.ErrNotFound
	// ErrFinished is returned by Cancel for a job that already ended.
	ErrFinished = job.ErrFinished
	// ErrLeaseLost is returned to a worker that no longer holds the job's lease.
	ErrLeaseLost = job.ErrLeaseLost
	// ErrNotClaimed is returned by Claim when the job is finished, deleted, gave up, or
	// another worker holds a live lease on it.
	ErrNotClaimed = job.ErrNotClaimable
	// ErrTooManyActive is returned by CreateWithin when the requester already has their
	// quota of queued and running jobs.
	ErrTooManyActive = errors.New("too many active jobs")
)

// Store is the exports database.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// New wraps a pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool, now: time.Now} }

// Migrate applies the embedded migrations, holding an advisory lock so services starting
// together migrate once.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return migrate(ctx, db)
}

func migrate(ctx context.Context, db *sql.DB) error {
	// Services starting together wait on this lock while one migrates. goose's default asks
	// again every 5 s, longer than a fresh database's migrations take: a service whose start
	// allows 10 s (the scheduler) could time out behind two such waits. Asking every second
	// (goose's minimum), for up to 5 minutes as before, hands the lock on within a second.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, dir, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrating exports database: %w", err)
	}
	return nil
}

const jobColumns = `id::text, entity, format, status, progress, rows_done, rows_total, bytes_written,
	fields, exclude_fields, filters, options, file_name, requested_by, requester_name, schedule_id,
	platform_id, created_at, started_at, finished_at, updated_at, error_code, error_message, file,
	attempt, lease_owner, warnings, phase, rate_rows_per_s, eta_seconds,
	CASE WHEN status = 'queued' THEN (SELECT count(*) + 1 FROM jobs q WHERE q.status = 'queued'
		AND q.deleted_at IS NULL AND (q.created_at, q.id) < (jobs.created_at, jobs.id)) END,
	expires_at, cancelled_by, file_removed_at IS NOT NULL, scheduled_for, version, lease_expires_at,
	charged, last_error, deleted_at, headers, compression, deliver, delivery, webhook`

// jobSQL reads one job by id ($1), deleted or not; liveJobSQL only one not deleted.
const (
	jobSQL     = `SELECT ` + jobColumns + ` FROM jobs WHERE id = $1`
	liveJobSQL = jobSQL + ` AND deleted_at IS NULL`
)

func scanJob(row pgx.Row) (Job, error) {
	var j Job
	var errCode, errMsg *string
	var file, lastErr []byte
	err := row.Scan(&j.ID, &j.Entity, &j.Format, &j.Status, &j.Progress, &j.RowsDone, &j.RowsTotal,
		&j.BytesWritten, &j.Fields, &j.ExcludeFields, &j.Filters, &j.Options, &j.FileName, &j.RequestedBy,
		&j.RequesterName, &j.ScheduleID, &j.PlatformID, &j.CreatedAt, &j.StartedAt, &j.FinishedAt,
		&j.UpdatedAt, &errCode, &errMsg, &file, &j.Attempt, &j.LeaseOwner, &j.Warnings, &j.Phase,
		&j.RateRowsPerS, &j.ETASeconds, &j.QueuePosition, &j.ExpiresAt, &j.CancelledBy, &j.FileRemoved, &j.ScheduledFor,
		&j.Version, &j.LeaseExpiresAt, &j.Charged, &lastErr, &j.DeletedAt, &j.Headers, &j.Compression, &j.Deliver, &j.Delivery, &j.Webhook)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, ErrNotFound
	}
	if err != nil {
		return Job{}, fmt.Errorf("scanning job: %w", err)
	}
	j.TaskID = j.ID
	if errCode != nil {
		j.Error = &JobError{Code: *errCode, Message: deref(errMsg)}
	}
	if len(file) > 0 {
		var o events.Object
		if err := json.Unmarshal(file, &o); err != nil {
			return Job{}, fmt.Errorf("decoding job %s file: %w", j.ID, err)
		}
		j.File = &o
	}
	if len(lastErr) > 0 {
		var e JobError
		if err := json.Unmarshal(lastErr, &e); err != nil {
			return Job{}, fmt.Errorf("decoding job %s last error: %w", j.ID, err)
		}
		j.LastError = &e
	}
	if j.Fields == nil {
		j.Fields = []string{}
	}
	if j.ExcludeFields == nil {
		j.ExcludeFields = []string{}
	}
	if j.Warnings == nil {
		j.Warnings = []string{}
	}
	return j, nil
}

// Create inserts a queued job and its ExportRequested into the outbox in one transaction.
func (s *Store) Create(ctx context.Context, req events.ExportRequested) (Job, error) {
	var created Job
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		created, err = CreateTx(ctx, tx, req)
		return err
	})
	return created, err
}

// CreateWithin is Create for a requester allowed at most maxActive queued or running jobs
// (0: no bound); at the bound it is ErrTooManyActive and nothing is written. Concurrent
// creations of one requester, from any replica, take turns on an advisory lock, so the bound
// holds exactly.
func (s *Store) CreateWithin(ctx context.Context, req events.ExportRequested, maxActive int) (Job, error) {
	if maxActive <= 0 {
		return s.Create(ctx, req)
	}
	var created Job
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var active int
		if err := tx.QueryRow(ctx, `SELECT pg_advisory_xact_lock(hashtext('jobs.active:' || $1)::bigint)`,
			req.RequestedBy).Scan(nil); err != nil {
			return fmt.Errorf("locking the active jobs of %s: %w", req.RequestedBy, err)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM jobs
			WHERE requested_by = $1 AND status IN ('queued', 'running') AND deleted_at IS NULL`,
			req.RequestedBy).Scan(&active); err != nil {
			return fmt.Errorf("counting the active jobs of %s: %w", req.RequestedBy, err)
		}
		if active >= maxActive {
			return fmt.Errorf("%w: %d queued or running, at most %d", ErrTooManyActive, active, maxActive)
		}
		var err error
		created, err = CreateTx(ctx, tx, req)
		return err
	})
	return created, err
}

// CreateTx is Create within the caller's transaction: a schedule's run and its job are
// written together (pkg/schedstore). The job keeps the trace context of ctx (TraceContext).
func CreateTx(ctx context.Context, tx pgx.Tx, req events.ExportRequested) (Job, error) {
	j, evs := job.New(req)
	traceparent, tracestate := telemetry.TraceParent(ctx)
	created, err := scanJob(tx.QueryRow(ctx, `INSERT INTO jobs (id, entity, format, fields, exclude_fields,
		filters, options, file_name, requested_by, requester_name, schedule_id, platform_id, created_at, updated_at,
		scheduled_for, status, phase, version, headers, compression, deliver, webhook, traceparent, tracestate)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)
		RETURNING `+jobColumns,
		j.ID, j.Entity, j.Format, j.Fields, j.ExcludeFields, j.Filters, j.Options, j.FileName, j.RequestedBy,
		j.RequesterName, j.ScheduleID, j.PlatformID, j.CreatedAt, j.UpdatedAt, j.ScheduledFor, j.Status, j.Phase, j.Version,
		j.Headers, j.Compression, j.Deliver, j.Webhook, nullable(traceparent), nullable(tracestate)))
	if err != nil {
		return Job{}, fmt.Errorf("inserting job %s: %w", req.JobID, err)
	}
	if err := appendOutbox(ctx, tx, evs); err != nil {
		return Job{}, err
	}
	return created, nil
}

// Get returns one job that has not been deleted.
func (s *Store) Get(ctx context.Context, id string) (Job, error) {
	if !ValidID(id) {
		return Job{}, ErrNotFound
	}
	return scanJob(s.pool.QueryRow(ctx, liveJobSQL, id))
}

// GetAny is Get with deleted jobs too: the hub's last push of a job deleted while clients
// were watching it (a running job deleted ends cancelled on their screens).
func (s *Store) GetAny(ctx context.Context, id string) (Job, error) {
	if !ValidID(id) {
		return Job{}, ErrNotFound
	}
	return scanJob(s.pool.QueryRow(ctx, jobSQL, id))
}

// ListFilter selects jobs for List.
type ListFilter struct {
	Status        Status
	Entity        string
	Format        string
	RequestedBy   string
	ScheduleID    string
	ScheduledFor  time.Time // zero: any
	CreatedAfter  time.Time // inclusive; zero: no bound
	CreatedBefore time.Time // exclusive; zero: no bound
	Limit         int
	Cursor        string
}

// ErrBadCursor is returned for a cursor List did not make.
var ErrBadCursor = errors.New("invalid cursor")

// List returns jobs newest first, and the cursor of the next page ("" at the end). The cursor
// is the (created_at, id) of the last job returned, so pages stay stable while jobs are created.
func (s *Store) List(ctx context.Context, f ListFilter) ([]Job, string, error) {
	p, err := NewPage(f.Limit, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	p.Fixed("deleted_at IS NULL")
	for _, eq := range []struct {
		column, value string
	}{{"status", string(f.Status)}, {"entity", f.Entity}, {"format", f.Format},
		{"requested_by", f.RequestedBy}, {"schedule_id", f.ScheduleID}} {
		if eq.value != "" {
			p.Where(eq.column+" = %s", eq.value)
		}
	}
	if !f.ScheduledFor.IsZero() {
		p.Where("scheduled_for = %s", f.ScheduledFor)
	}
	if !f.CreatedAfter.IsZero() {
		p.Where("created_at >= %s", f.CreatedAfter)
	}
	if !f.CreatedBefore.IsZero() {
		p.Where("created_at < %s", f.CreatedBefore)
	}
	sql, args := p.Query(`SELECT ` + jobColumns + ` FROM jobs`)
	jobs, err := s.queryJobs(ctx, "listing jobs", sql, args...)
	if err != nil {
		return nil, "", err
	}
	jobs, next := PageOf(p, jobs, func(j Job) (time.Time, string) { return j.CreatedAt, j.ID })
	return jobs, next, nil
}

// queryJobs runs a query of jobColumns rows; what names it in errors.
func (s *Store) queryJobs(ctx context.Context, what, sql string, args ...any) ([]Job, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) { return scanJob(r) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return jobs, nil
}

// EncodeCursor is a page cursor: the (time, id) of the last item of a page, opaque to clients.
func EncodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.UTC().Format(time.RFC3339Nano) + "|" + id))
}

// DecodeCursor reads EncodeCursor's cursor; ErrBadCursor for anything else.
func DecodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok || !ValidID(id) {
		return time.Time{}, "", ErrBadCursor
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	return t, id, nil
}

// ValidID reports whether s is shaped like the platform's ids (UUIDs).
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
