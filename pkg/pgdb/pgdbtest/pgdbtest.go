// Package pgdbtest gives tests a throwaway database on the local stack's PostgreSQL server,
// dropped when the test ends. Without a reachable server the test is skipped, except in CI
// (CI set), where that is a failure: CI must test against the real server.
package pgdbtest

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

// DefaultServerURL is the local stack's server (CONTRACT §2); PGDBTEST_URL overrides it.
const DefaultServerURL = "postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable"

// ServerURL is the URL of the server the tests use (its maintenance database).
func ServerURL() string {
	if u := os.Getenv("PGDBTEST_URL"); u != "" {
		return u
	}
	return DefaultServerURL
}

// NewDatabaseURL creates a database named prefix_<random> and returns its URL; t.Cleanup drops
// it, closing whatever connections are left.
func NewDatabaseURL(t testing.TB, prefix string) string {
	t.Helper()
	admin := withDatabase(t, ServerURL(), "postgres")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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

// NewDatabase is NewDatabaseURL with a pool on it, closed before the database is dropped.
func NewDatabase(t testing.TB, prefix string) *pgxpool.Pool {
	t.Helper()
	u := NewDatabaseURL(t, prefix)
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
	t.Skipf("PostgreSQL of the local stack unreachable (start it with make up): %v", err)
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
