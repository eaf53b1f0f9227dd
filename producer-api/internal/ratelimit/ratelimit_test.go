package ratelimit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLimitSharedByReplicas: two limiters on one database (two replicas) let through exactly
// the limit of one user's concurrent requests in a window, count users and classes apart, and
// start again in the next window.
func TestLimitSharedByReplicas(t *testing.T) {
	t.Parallel()
	pool := pgdbtest.NewDatabase(t, "ratelimit")
	if err := jobstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 10, 0, 30, 0, time.UTC)
	clock := func() time.Time { return now }
	replicas := []*Limiter{New(pool, map[string]int{Exports: 50, Reads: 1000}), New(pool, map[string]int{Exports: 50, Reads: 1000})}
	for _, l := range replicas {
		l.now = clock
	}
	var mu sync.Mutex
	allowed, refused := 0, 0
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			d, err := replicas[i%2].Take(t.Context(), "alice", Exports)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if d.Allowed {
				allowed++
			} else {
				refused++
				if d.Remaining != 0 || d.Limit != 50 || !d.Reset.Equal(time.Date(2026, 12, 4, 10, 1, 0, 0, time.UTC)) {
					t.Errorf("refusal %+v", d)
				}
				if ra := d.RetryAfter(now); ra != 30*time.Second {
					t.Errorf("retry after %s, want 30s", ra)
				}
			}
		})
	}
	wg.Wait()
	if allowed != 50 || refused != 10 {
		t.Fatalf("allowed %d, refused %d; want 50 and 10", allowed, refused)
	}
	if d, err := replicas[0].Take(t.Context(), "bob", Exports); err != nil || !d.Allowed || d.Remaining != 49 {
		t.Errorf("another user: %+v %v", d, err)
	}
	if d, err := replicas[0].Take(t.Context(), "alice", Reads); err != nil || !d.Allowed || d.Remaining != 999 {
		t.Errorf("another class: %+v %v", d, err)
	}
	if d, err := replicas[0].Take(t.Context(), "alice", "unlimited"); err != nil || !d.Allowed {
		t.Errorf("a class without a limit: %+v %v", d, err)
	}
	now = now.Add(30 * time.Second) // the next window
	if d, err := replicas[1].Take(t.Context(), "alice", Exports); err != nil || !d.Allowed || d.Remaining != 49 {
		t.Errorf("next window: %+v %v", d, err)
	}
	now = now.Add(2 * time.Hour)
	if n, err := replicas[0].Sweep(t.Context(), time.Hour); err != nil || n != 4 {
		t.Errorf("sweep removed %d windows (%v), want 4", n, err)
	}
}

// TestSlotsSharedByReplicas: a user's stream slots are counted across replicas (each with its
// own pool, as two processes), other users are not affected, and a released slot is free again.
func TestSlotsSharedByReplicas(t *testing.T) {
	t.Parallel()
	u := pgdbtest.NewDatabaseURL(t, "slots")
	open := func() *pgxpool.Pool {
		pool, err := pgxpool.New(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return pool
	}
	a, b := NewSlots(open(), 2), NewSlots(open(), 2)
	rel1, ok1, err1 := a.Acquire(t.Context(), "alice")
	rel2, ok2, err2 := b.Acquire(t.Context(), "alice")
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		t.Fatalf("two slots: %v %v %v %v", ok1, ok2, err1, err2)
	}
	if _, ok, err := a.Acquire(t.Context(), "alice"); ok || err != nil {
		t.Fatalf("a third slot: %v %v", ok, err)
	}
	relBob, ok, err := b.Acquire(t.Context(), "bob")
	if !ok || err != nil {
		t.Fatalf("bob: %v %v", ok, err)
	}
	relBob()
	rel2()
	rel3, ok, err := a.Acquire(t.Context(), "alice")
	if !ok || err != nil {
		t.Fatalf("after a release: %v %v", ok, err)
	}
	rel3()
	rel1()
}
