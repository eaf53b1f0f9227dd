// Package pgtest gives tests a throwaway PostgreSQL database on the server of the local stack
// (ANALYTICS_DATABASE_URL, or its default), dropped when the test ends.
//
// Without a reachable server the test is skipped, unless CI is set: there the stack is part
// of the run, and its absence is a failure.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is the analytics database of the local stack (CONTRACT §2).
const DefaultURL = "postgres://postgres@127.0.0.1:55432/db_analytics?sslmode=disable"

// ServerURL is the URL whose server the tests use.
func ServerURL() string {
	if u := os.Getenv("ANALYTICS_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// NewDatabase creates a database named prefix_<random> and returns its URL; t.Cleanup drops
// it, closing whatever connections are left.
func NewDatabase(t testing.TB, prefix string) string {
	t.Helper()
	admin := withDatabase(t, ServerURL(), "postgres")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		unreachable(t, err)
	}
	defer conn.Close(context.Background())

	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + "_" + hex.EncodeToString(b[:])
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("dropping database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	return withDatabase(t, ServerURL(), name)
}

// NewPool is NewDatabase with a pool on it, closed before the database is dropped.
func NewPool(t testing.TB, prefix string) *pgxpool.Pool {
	t.Helper()
	u := NewDatabase(t, prefix)
	pool, err := pgxpool.New(context.Background(), u)
	if err != nil {
		t.Fatalf("opening %s: %v", prefix, err)
	}
	t.Cleanup(pool.Close) // cleanups run last-in first-out: before the drop
	return pool
}

// Reachable skips (or, under CI, fails) the test when the server does not answer.
func Reachable(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		unreachable(t, err)
	}
	_ = conn.Close(ctx)
}

func unreachable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("PostgreSQL of the local stack unreachable with CI set: %v", err)
	}
	t.Skipf("PostgreSQL of the local stack unreachable (start it with `make infra`): %v", err)
}

func withDatabase(t testing.TB, raw, db string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parsing database url: %v", err)
	}
	u.Path = "/" + db
	return u.String()
}
