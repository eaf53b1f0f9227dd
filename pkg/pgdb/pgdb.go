// Package pgdb opens pgx pools the same way in every service: parsed URL, bounded pool, a ping
// before returning, so a service that starts is a service that can reach its database.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Open connects a pool to url and pings it.
func Open(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	pool, err := OpenLazy(url, maxConns)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		cfg := pool.Config().ConnConfig
		pool.Close()
		return nil, fmt.Errorf("pinging %s: %w", redact(cfg.Host, cfg.Database), err)
	}
	return pool, nil
}

// OpenLazy is Open for a database the service can run without for a while: the pool connects
// at its first use, so the service starts (and answers what needs no such database) while it
// is down.
func OpenLazy(url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring %s: %w", redact(cfg.ConnConfig.Host, cfg.ConnConfig.Database), err)
	}
	return pool, nil
}

// Check is a readiness check for a pool.
func Check(pool *pgxpool.Pool) func(context.Context) error {
	return func(ctx context.Context) error { return pool.Ping(ctx) }
}

func redact(host, db string) string { return "postgres://" + host + "/" + db }

// ValidateURL checks that s is a postgres:// URL naming a host and a database, without echoing
// s (it may hold a password).
func ValidateURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("scheme %q, want postgres://", u.Scheme)
	}
	if u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return errors.New("needs a host and a database")
	}
	return nil
}

// RedactURL is s with its password hidden, for logs.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
