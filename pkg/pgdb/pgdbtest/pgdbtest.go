// Package pgdbtest gives tests a throwaway database on the local stack's PostgreSQL server,
// dropped when the test ends. Without a reachable server the test is skipped, except in CI
// (CI set), where that is a failure: CI must test against the real server.
package pgdbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AdminURL is the server's maintenance database URL.
func AdminURL() string {
	if u := os.Getenv("PGDBTEST_ADMIN_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable"
}

// NewDatabase creates a database named after prefix and returns a pool on it.
func NewDatabase(t testing.TB, prefix string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL of the local stack unreachable in CI: %v", err)
		}
		t.Skipf("no PostgreSQL (run make up): %v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		admin.Close(ctx)
		t.Fatalf("creating database %s: %v", name, err)
	}
	admin.Close(ctx)
	url := strings.Replace(AdminURL(), "/postgres?", "/"+name+"?", 1)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			t.Errorf("dropping %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	return pool
}
