package retention_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
	"github.com/productsmanager/exportplatform/producer-api/internal/retention"
)

func newStore(t *testing.T) *jobstore.Store {
	t.Helper()
	pool := pgdbtest.NewDatabase(t, "retentiontest")
	if err := jobstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return jobstore.New(pool)
}

// completed creates a job completed with a stored file expiring at expires.
func completed(t *testing.T, s *jobstore.Store, objects objectstore.Store, expires time.Time) (string, string) {
	t.Helper()
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7()).String()
	if _, err := s.Create(ctx, events.ExportRequested{JobID: id, Entity: "products", Format: "csv", RequestedBy: "alice",
		RequestedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	key := "products/" + id + "/products.csv"
	if _, err := objects.Put(ctx, key, bytes.NewReader([]byte("sku\n")), "text/csv"); err != nil {
		t.Fatal(err)
	}
	finished := expires.Add(-30 * 24 * time.Hour)
	_, lease, err := s.Claim(ctx, id, jobstore.ClaimOptions{Owner: "w", TTL: time.Minute, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []job.Command{
		job.Start{Owner: "w", Attempt: lease.Attempt, At: finished},
		job.Complete{Owner: "w", Attempt: lease.Attempt, Object: events.Object{Key: key}, StartedAt: finished, ExpiresAt: expires, At: finished},
	} {
		if _, err := s.Do(ctx, id, c); err != nil {
			t.Fatal(err)
		}
	}
	return id, key
}

// flakyObjects refuses to delete one key until told otherwise.
type flakyObjects struct {
	*objectstore.Memory
	refuse string
}

func (f *flakyObjects) Delete(ctx context.Context, key string) error {
	if key == f.refuse {
		return errors.New("s3: service unavailable")
	}
	return f.Memory.Delete(ctx, key)
}

func TestSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	objects := &flakyObjects{Memory: objectstore.NewMemory()}
	expiry := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	soon, soonKey := completed(t, s, objects, expiry)
	later, laterKey := completed(t, s, objects, expiry.Add(24*time.Hour))
	gone, goneKey := completed(t, s, objects, expiry.Add(48*time.Hour))
	if _, err := s.Delete(ctx, gone, "bob", nil); err != nil {
		t.Fatal(err)
	}
	var now time.Time
	sw := retention.New(retention.Config{Now: func() time.Time { return now }}, s, objects,
		slog.New(slog.NewTextHandler(t.Output(), nil)), nil)

	// Before any expiry: only the deleted job's file goes, and this time the bucket refuses it.
	now = expiry.Add(-time.Second)
	objects.refuse = goneKey
	if n, err := sw.Sweep(ctx); n != 0 || err == nil {
		t.Errorf("sweep with the bucket refusing = %d, %v; want 0 and the error", n, err)
	}
	objects.refuse = ""
	if n, err := sw.Sweep(ctx); n != 1 || err != nil {
		t.Errorf("sweep before expiry = %d, %v; want the deleted job's file", n, err)
	}
	assertKeys(t, objects, soonKey, laterKey)

	// At the first expiry: that file goes and its job reads expired; the other stays completed.
	now = expiry
	if n, err := sw.Sweep(ctx); n != 1 || err != nil {
		t.Errorf("sweep at expiry = %d, %v; want 1", n, err)
	}
	assertKeys(t, objects, laterKey)
	if j, _ := s.Get(ctx, soon); j.Status != jobstore.StatusExpired {
		t.Errorf("expired job reads %s", j.Status)
	}
	if j, _ := s.Get(ctx, later); j.Status != jobstore.StatusCompleted {
		t.Errorf("unexpired job reads %s", j.Status)
	}
	if n, err := sw.Sweep(ctx); n != 0 || err != nil {
		t.Errorf("a second sweep = %d, %v; want nothing to do", n, err)
	}
}

func assertKeys(t *testing.T, objects objectstore.Store, want ...string) {
	t.Helper()
	keys, err := objects.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(want) {
		t.Fatalf("bucket holds %q, want %q", keys, want)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Errorf("bucket holds %q, want %q", keys, want)
		}
	}
}

// TestSweepOrphans: an object no job names (another attempt's file) goes once its job ended
// more than the grace ago; running jobs, recent ends, unknown jobs and other keys are kept.
func TestSweepOrphans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	objects := &flakyObjects{Memory: objectstore.NewMemory()}
	expiry := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	done, doneKey := completed(t, s, objects, expiry) // finished 30 days before expiry
	put := func(key string) {
		if _, err := objects.Put(ctx, key, bytes.NewReader([]byte("x")), "text/csv"); err != nil {
			t.Fatal(err)
		}
	}
	orphan := "products/" + done + "/1/products.csv"
	put(orphan)
	running := uuid.Must(uuid.NewV7()).String()
	if _, err := s.Create(ctx, events.ExportRequested{JobID: running, Entity: "products", Format: "csv", RequestedBy: "a", RequestedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Claim(ctx, running, jobstore.ClaimOptions{Owner: "w", TTL: time.Minute, MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	runningKey := "products/" + running + "/1/products.csv"
	put(runningKey)
	unknown := "products/" + uuid.Must(uuid.NewV7()).String() + "/1/products.csv"
	put(unknown)
	put("conformance-1/x.csv")

	sw := retention.New(retention.Config{}, s, objects, slog.New(slog.NewTextHandler(t.Output(), nil)), nil)
	finished := expiry.Add(-30 * 24 * time.Hour)
	if n, err := sw.SweepOrphans(ctx, finished.Add(30*time.Minute)); n != 0 || err != nil {
		t.Errorf("within the grace: removed %d, %v; want none", n, err)
	}
	if n, err := sw.SweepOrphans(ctx, finished.Add(2*time.Hour)); n != 1 || err != nil {
		t.Errorf("after the grace: removed %d, %v; want the other attempt's file", n, err)
	}
	keys, _ := objects.List(ctx, "")
	for _, k := range []string{doneKey, runningKey, unknown, "conformance-1/x.csv"} {
		if !slices.Contains(keys, k) {
			t.Errorf("%s was removed", k)
		}
	}
	if slices.Contains(keys, orphan) {
		t.Errorf("the orphan %s stays", orphan)
	}
}
