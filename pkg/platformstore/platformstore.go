// Package platformstore is the platforms' repository in the exports database (migrated by
// jobstore.Migrate): the one place a platform changes. Each change writes its audit event in
// its own transaction (jobstore.AuditTx).
package platformstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/platform"
)

var (
	// ErrNotFound: no platform has that id.
	ErrNotFound = errors.New("platform not found")
	// ErrNameTaken: the owner has a platform of that name already (names are unique per owner,
	// whatever their case).
	ErrNameTaken = errors.New("platform name taken")
	// ErrBadCursor: a cursor this repository did not make.
	ErrBadCursor = jobstore.ErrBadCursor
)

// InUseError refuses the deletion of a platform that schedules still use.
type InUseError struct{ ScheduleIDs []string }

func (e *InUseError) Error() string {
	return "platform used by schedules " + strings.Join(e.ScheduleIDs, ", ")
}

// Store is the repository.
type Store struct{ pool *pgxpool.Pool }

// New wraps a pool of the exports database.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const columns = `id::text, name, type, default_config, destination, webhook, owner, created_by, created_at,
	updated_at, version, ARRAY(SELECT s.id::text FROM schedules s WHERE s.platform_id = platforms.id ORDER BY s.created_at, s.id)`

func scan(row pgx.Row) (platform.Platform, error) {
	var p platform.Platform
	var cfg, dest, hook []byte
	err := row.Scan(&p.ID, &p.Name, &p.Type, &cfg, &dest, &hook, &p.Owner, &p.CreatedBy, &p.CreatedAt, &p.UpdatedAt,
		&p.Version, &p.ScheduleIDs)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("scanning platform: %w", err)
	}
	if err := json.Unmarshal(cfg, &p.DefaultConfig); err != nil {
		return p, fmt.Errorf("decoding platform %s default_config: %w", p.ID, err)
	}
	if err := json.Unmarshal(dest, &p.Destination); err != nil {
		return p, fmt.Errorf("decoding platform %s destination: %w", p.ID, err)
	}
	if hook != nil {
		if err := json.Unmarshal(hook, &p.Webhook); err != nil {
			return p, fmt.Errorf("decoding platform %s webhook: %w", p.ID, err)
		}
	}
	return p, nil
}

// encoded is the JSON columns of a platform.
func encoded(p platform.Platform) (cfg, dest, hook []byte, err error) {
	if cfg, err = json.Marshal(p.DefaultConfig); err != nil {
		return nil, nil, nil, fmt.Errorf("encoding default_config: %w", err)
	}
	if dest, err = json.Marshal(p.Destination); err != nil {
		return nil, nil, nil, fmt.Errorf("encoding destination: %w", err)
	}
	if p.Webhook != nil {
		if hook, err = json.Marshal(p.Webhook); err != nil {
			return nil, nil, nil, fmt.Errorf("encoding webhook: %w", err)
		}
	}
	return cfg, dest, hook, nil
}

// audited queues the audit event of an act on p within tx, when the caller gave one.
func audited(ctx context.Context, tx pgx.Tx, p platform.Platform, audit *events.Accessed) error {
	if audit == nil {
		return nil
	}
	return jobstore.AuditTx(ctx, tx, p.Access(audit.Action).By(*audit))
}

func nameTaken(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "platforms_owner_name_idx"
}

// Create saves a new platform (made by platform.New), with its audit event when not nil.
func (st *Store) Create(ctx context.Context, p platform.Platform, audit *events.Accessed) (platform.Platform, error) {
	cfg, dest, hook, err := encoded(p)
	if err != nil {
		return p, err
	}
	var out platform.Platform
	err = pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		var err error
		if out, err = scan(tx.QueryRow(ctx, `INSERT INTO platforms (id, name, type, default_config, destination, webhook,
			owner, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING `+columns,
			p.ID, p.Name, p.Type, cfg, dest, hook, p.Owner, p.CreatedBy, p.CreatedAt)); err != nil {
			return err
		}
		return audited(ctx, tx, out, audit)
	})
	if nameTaken(err) {
		return p, ErrNameTaken
	}
	if err != nil {
		return p, fmt.Errorf("creating platform: %w", err)
	}
	return out, nil
}

// Get returns one platform.
func (st *Store) Get(ctx context.Context, id string) (platform.Platform, error) {
	if !jobstore.ValidID(id) {
		return platform.Platform{}, ErrNotFound
	}
	return scan(st.pool.QueryRow(ctx, `SELECT `+columns+` FROM platforms WHERE id = $1`, id))
}

// ListFilter selects platforms for List.
type ListFilter struct {
	Owner  string
	Type   platform.Type
	Limit  int
	Cursor string
}

// List returns platforms newest first and the cursor of the next page ("" at the end).
func (st *Store) List(ctx context.Context, f ListFilter) ([]platform.Platform, string, error) {
	p, err := jobstore.NewPage(f.Limit, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	if f.Owner != "" {
		p.Where("owner = %s", f.Owner)
	}
	if f.Type != "" {
		p.Where("type = %s", f.Type)
	}
	sql, args := p.Query(`SELECT ` + columns + ` FROM platforms`)
	rows, err := st.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing platforms: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (platform.Platform, error) { return scan(r) })
	if err != nil {
		return nil, "", fmt.Errorf("listing platforms: %w", err)
	}
	out, next := jobstore.PageOf(p, out, func(x platform.Platform) (time.Time, string) { return x.CreatedAt, x.ID })
	return out, next, nil
}

func lock(ctx context.Context, tx pgx.Tx, id string) (platform.Platform, error) {
	return scan(tx.QueryRow(ctx, `SELECT `+columns+` FROM platforms WHERE id = $1 FOR UPDATE`, id))
}

// Change applies fn to a platform under its row lock and saves it (PUT), with its audit event
// when not nil; an error from fn aborts.
func (st *Store) Change(ctx context.Context, id string, audit *events.Accessed, fn func(*platform.Platform) error) (platform.Platform, error) {
	if !jobstore.ValidID(id) {
		return platform.Platform{}, ErrNotFound
	}
	var out platform.Platform
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		p, err := lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := fn(&p); err != nil {
			return err
		}
		cfg, dest, hook, err := encoded(p)
		if err != nil {
			return err
		}
		if out, err = scan(tx.QueryRow(ctx, `UPDATE platforms SET name = $2, type = $3, default_config = $4,
			destination = $5, webhook = $6, updated_at = $7, version = version + 1 WHERE id = $1 RETURNING `+columns,
			id, p.Name, p.Type, cfg, dest, hook, p.UpdatedAt)); err != nil {
			return err
		}
		return audited(ctx, tx, out, audit)
	})
	if nameTaken(err) {
		return out, ErrNameTaken
	}
	return out, err
}

// Delete removes a platform, with its audit event when not nil, unless schedules use it
// (*InUseError naming them). check, when not nil, may refuse the locked platform (ownership).
func (st *Store) Delete(ctx context.Context, id string, audit *events.Accessed, check func(platform.Platform) error) error {
	if !jobstore.ValidID(id) {
		return ErrNotFound
	}
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		p, err := lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(p); err != nil {
				return err
			}
		}
		// The lock keeps a schedule from naming the platform meanwhile (its foreign key check
		// waits); read its users in a statement of its own, which sees every schedule committed
		// before the lock was granted.
		var users []string
		if err := tx.QueryRow(ctx, `SELECT ARRAY(SELECT id::text FROM schedules WHERE platform_id = $1
			ORDER BY created_at, id)`, id).Scan(&users); err != nil {
			return fmt.Errorf("listing the schedules of platform %s: %w", id, err)
		}
		if len(users) > 0 {
			return &InUseError{ScheduleIDs: users}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM platforms WHERE id = $1`, id); err != nil {
			return fmt.Errorf("deleting platform %s: %w", id, err)
		}
		return audited(ctx, tx, p, audit)
	})
	return err
}
