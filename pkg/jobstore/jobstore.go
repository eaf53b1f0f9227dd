// Package jobstore is the platform's own database (`exports`): the jobs table with its lease,
// the transactional outbox, and the idempotent fold of job events into job state.
//
// Invariants:
//   - a job row and the event announcing it are written in one transaction (Create);
//   - at most one worker holds a job's lease at a time (Claim, Renew; an expired lease can be
//     claimed again, which is how a crashed worker's job gets finished);
//   - Apply never moves a job backwards: terminal states are final, and progress only grows
//     within an attempt (a newer attempt may restart it).
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
)

//go:embed migrations/*.sql
var migrations embed.FS

// Status is a job status.
type Status string

// Job statuses.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
	StatusExpired   Status = "expired"
)

// Terminal reports whether no further state change is expected.
func (s Status) Terminal() bool { return s != StatusQueued && s != StatusRunning }

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusQueued, StatusRunning, StatusCompleted, StatusFailed, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// ErrNotFound is returned for an unknown (or deleted) job.
var ErrNotFound = errors.New("job not found")

// JobError is why a job failed.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Job is one export job as users see it.
type Job struct {
	ID            string         `json:"id"`
	TaskID        string         `json:"task_id"`
	Entity        string         `json:"entity"`
	Format        string         `json:"format"`
	Status        Status         `json:"status"`
	Progress      float64        `json:"progress"`
	RowsDone      int64          `json:"rows_done"`
	RowsTotal     *int64         `json:"rows_total"`
	BytesWritten  int64          `json:"bytes_written"`
	Fields        []string       `json:"fields"`
	ExcludeFields []string       `json:"exclude_fields"`
	Filters       map[string]any `json:"filters"`
	Options       map[string]any `json:"options"`
	FileName      string         `json:"file_name"`
	RequestedBy   string         `json:"requested_by"`
	RequesterName string         `json:"requester_name,omitempty"`
	ScheduleID    *string        `json:"schedule_id"`
	// ScheduledFor is the fire time of the schedule run that made the job.
	ScheduledFor *time.Time     `json:"scheduled_for"`
	PlatformID   *string        `json:"platform_id"`
	CreatedAt    time.Time      `json:"created_at"`
	StartedAt    *time.Time     `json:"started_at"`
	FinishedAt   *time.Time     `json:"finished_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
	Error        *JobError      `json:"error"`
	File         *events.Object `json:"file,omitempty"`
	Warnings     []string       `json:"warnings"`
	Attempt      int            `json:"attempt"`
	// Phase is where the job is: queued, counting (its rows), writing, uploading, done.
	Phase string `json:"phase"`
	// RateRowsPerS and ETASeconds come from the rows written over the last seconds; null
	// until a rate is known, and once the job ended.
	RateRowsPerS *float64 `json:"rate_rows_per_s"`
	ETASeconds   *float64 `json:"eta_seconds"`
	// QueuePosition is 1 for the oldest queued job; null once the job left the queue.
	QueuePosition *int64 `json:"queue_position"`
	// ExpiresAt is when the file will be deleted; null while there is no file.
	ExpiresAt   *time.Time `json:"expires_at"`
	CancelledBy *string    `json:"cancelled_by,omitempty"`
	LeaseOwner  *string    `json:"-"`
	// FileRemoved says the file is gone from the bucket (expired, or the job deleted).
	FileRemoved bool `json:"-"`
}

// Request rebuilds the ExportRequested event of a job (for a worker that rescues it).
func (j Job) Request() events.ExportRequested {
	return events.ExportRequested{
		JobID: j.ID, Entity: j.Entity, Format: j.Format, Fields: j.Fields, ExcludeFields: j.ExcludeFields,
		Filters: j.Filters, Options: j.Options, FileName: j.FileName, RequestedBy: j.RequestedBy,
		RequesterName: j.RequesterName, ScheduleID: j.ScheduleID, ScheduledFor: j.ScheduledFor,
		PlatformID: j.PlatformID, RequestedAt: j.CreatedAt,
	}
}

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
	locker, err := lock.NewPostgresSessionLocker()
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
	expires_at, cancelled_by, file_removed_at IS NOT NULL, scheduled_for`

// jobSQL reads one job by id ($1), deleted or not; liveJobSQL only one not deleted.
const (
	jobSQL     = `SELECT ` + jobColumns + ` FROM jobs WHERE id = $1`
	liveJobSQL = jobSQL + ` AND deleted_at IS NULL`
)

func scanJob(row pgx.Row) (Job, error) {
	var j Job
	var errCode, errMsg *string
	var file []byte
	err := row.Scan(&j.ID, &j.Entity, &j.Format, &j.Status, &j.Progress, &j.RowsDone, &j.RowsTotal,
		&j.BytesWritten, &j.Fields, &j.ExcludeFields, &j.Filters, &j.Options, &j.FileName, &j.RequestedBy,
		&j.RequesterName, &j.ScheduleID, &j.PlatformID, &j.CreatedAt, &j.StartedAt, &j.FinishedAt,
		&j.UpdatedAt, &errCode, &errMsg, &file, &j.Attempt, &j.LeaseOwner, &j.Warnings, &j.Phase,
		&j.RateRowsPerS, &j.ETASeconds, &j.QueuePosition, &j.ExpiresAt, &j.CancelledBy, &j.FileRemoved, &j.ScheduledFor)
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
	var job Job
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		job, err = CreateTx(ctx, tx, req)
		return err
	})
	return job, err
}

// CreateTx is Create within the caller's transaction: a schedule's run and its job are
// written together (pkg/schedstore).
func CreateTx(ctx context.Context, tx pgx.Tx, req events.ExportRequested) (Job, error) {
	env, err := events.Wrap(req)
	if err != nil {
		return Job{}, err
	}
	job, err := scanJob(tx.QueryRow(ctx, `INSERT INTO jobs (id, entity, format, fields, exclude_fields,
		filters, options, file_name, requested_by, requester_name, schedule_id, platform_id, created_at, updated_at,
		scheduled_for)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14)
		RETURNING `+jobColumns,
		req.JobID, req.Entity, req.Format, nonNil(req.Fields), nonNil(req.ExcludeFields), nonNilMap(req.Filters),
		nonNilMap(req.Options), req.FileName, req.RequestedBy, req.RequesterName, req.ScheduleID, req.PlatformID,
		req.RequestedAt, req.ScheduledFor))
	if err != nil {
		return Job{}, fmt.Errorf("inserting job %s: %w", req.JobID, err)
	}
	if err := insertOutbox(ctx, tx, events.TopicRequested, env); err != nil {
		return Job{}, err
	}
	return job, nil
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
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	args := []any{limit + 1}
	where := []string{"deleted_at IS NULL"}
	for _, eq := range []struct {
		column, value string
	}{{"status", string(f.Status)}, {"entity", f.Entity}, {"format", f.Format},
		{"requested_by", f.RequestedBy}, {"schedule_id", f.ScheduleID}} {
		if eq.value != "" {
			args = append(args, eq.value)
			where = append(where, fmt.Sprintf("%s = $%d", eq.column, len(args)))
		}
	}
	if !f.ScheduledFor.IsZero() {
		args = append(args, f.ScheduledFor)
		where = append(where, fmt.Sprintf("scheduled_for = $%d", len(args)))
	}
	if !f.CreatedAfter.IsZero() {
		args = append(args, f.CreatedAfter)
		where = append(where, fmt.Sprintf("created_at >= $%d", len(args)))
	}
	if !f.CreatedBefore.IsZero() {
		args = append(args, f.CreatedBefore)
		where = append(where, fmt.Sprintf("created_at < $%d", len(args)))
	}
	if f.Cursor != "" {
		t, id, err := DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		args = append(args, t, id)
		where = append(where, fmt.Sprintf("(created_at, id) < ($%d, $%d)", len(args)-1, len(args)))
	}
	// where holds only the fixed fragments above; values travel as arguments.
	jobs, err := s.queryJobs(ctx, "listing jobs", `SELECT `+jobColumns+` FROM jobs WHERE `+strings.Join(where, " AND ")+
		` ORDER BY created_at DESC, id DESC LIMIT $1`, args...)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(jobs) > limit {
		jobs = jobs[:limit]
		last := jobs[len(jobs)-1]
		next = EncodeCursor(last.CreatedAt, last.ID)
	}
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

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// fileJSON is a job's file as the API shows it: CONTRACT §4 names the key `object_key`; `key`
// and `bucket` stay for clients of the event shape.
type fileJSON struct {
	events.Object
	ObjectKey string `json:"object_key"`
}

// MarshalJSON writes the job with its file in the contract's shape.
func (j Job) MarshalJSON() ([]byte, error) {
	type alias Job
	var f *fileJSON
	if j.File != nil {
		f = &fileJSON{Object: *j.File, ObjectKey: j.File.Key}
	}
	return json.Marshal(struct {
		alias
		File *fileJSON `json:"file,omitempty"`
	}{alias(j), f})
}
