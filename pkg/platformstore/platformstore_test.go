package platformstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
	"github.com/productsmanager/exportplatform/pkg/platform"
	"github.com/productsmanager/exportplatform/pkg/platformstore"
	"github.com/productsmanager/exportplatform/pkg/schedstore"
	"github.com/productsmanager/exportplatform/pkg/schedule"
)

func id(t *testing.T) string {
	t.Helper()
	u, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// TestPlatformLifecycle: names are unique per owner whatever their case; lists page newest
// first per owner; a change is saved under the lock with its version; a platform a schedule
// uses cannot be deleted (the error names the schedule) and can once it is not; each change
// writes its audit event with it.
func TestPlatformLifecycle(t *testing.T) {
	t.Parallel()
	pool := pgdbtest.NewDatabase(t, "platformstoretest")
	ctx := context.Background()
	if err := jobstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	st := platformstore.New(pool)
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	mk := func(name, owner string, at time.Time) platform.Platform {
		spec := platform.Spec{Name: name, Type: platform.GoogleShopping, DefaultConfig: export.Request{Compression: "gzip"}}
		if err := spec.Normalize(); err != nil {
			t.Fatal(err)
		}
		return platform.New(id(t), spec, owner, at)
	}
	audit := func(action string) *events.Accessed {
		return &events.Accessed{ID: id(t), Action: action, ActorID: "alice", At: now}
	}
	a, err := st.Create(ctx, mk("Google feed", "alice", now), audit(events.ActionPlatformCreated))
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != 1 || len(a.ScheduleIDs) != 0 || a.DefaultConfig.Compression != "gzip" || a.Destination.Type != platform.Storage {
		t.Errorf("created %+v", a)
	}
	if _, err := st.Create(ctx, mk("GOOGLE FEED", "alice", now), nil); !errors.Is(err, platformstore.ErrNameTaken) {
		t.Errorf("same name, same owner: %v", err)
	}
	if _, err := st.Create(ctx, mk("Google feed", "bob", now), nil); err != nil {
		t.Errorf("same name, another owner: %v", err)
	}
	for i := range 3 {
		if _, err := st.Create(ctx, mk("feed "+string(rune('a'+i)), "alice", now.Add(time.Duration(i+1)*time.Minute)), nil); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	cursor := ""
	for {
		page, next, err := st.List(ctx, platformstore.ListFilter{Owner: "alice", Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			names = append(names, p.Name)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	if want := []string{"feed c", "feed b", "feed a", "Google feed"}; !slices.Equal(names, want) {
		t.Errorf("alice's platforms %v, want %v", names, want)
	}

	changed, err := st.Change(ctx, a.ID, audit(events.ActionPlatformUpdated), func(p *platform.Platform) error {
		p.Name, p.UpdatedAt = "Google Shopping FR", now.Add(time.Hour)
		return nil
	})
	if err != nil || changed.Version != 2 || changed.Name != "Google Shopping FR" {
		t.Fatalf("change: %+v %v", changed, err)
	}
	if _, err := st.Change(ctx, a.ID, nil, func(p *platform.Platform) error { p.Name = "feed a"; return nil }); !errors.Is(err, platformstore.ErrNameTaken) {
		t.Errorf("renamed onto another: %v", err)
	}

	// A schedule ties itself to the platform: the platform cannot go.
	spec := schedule.Spec{Name: "nightly", CronExpression: "0 2 * * *", Enabled: true, PlatformID: &a.ID,
		ExportConfig: schedule.ExportConfig{Entity: "products", Format: "csv"}}
	if err := spec.Normalize(now); err != nil {
		t.Fatal(err)
	}
	sc, err := schedule.New(id(t), spec, "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	scheds := schedstore.New(pool)
	if _, err := scheds.Create(ctx, sc, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Get(ctx, a.ID); !slices.Equal(got.ScheduleIDs, []string{sc.ID}) {
		t.Errorf("schedule_ids %v", got.ScheduleIDs)
	}
	var inUse *platformstore.InUseError
	if err := st.Delete(ctx, a.ID, audit(events.ActionPlatformDeleted), nil); !errors.As(err, &inUse) || !slices.Equal(inUse.ScheduleIDs, []string{sc.ID}) {
		t.Fatalf("deleting a used platform: %v", err)
	}
	refused := errors.New("not yours")
	if err := st.Delete(ctx, a.ID, nil, func(platform.Platform) error { return refused }); !errors.Is(err, refused) {
		t.Errorf("check: %v", err)
	}
	if err := scheds.Delete(ctx, sc.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, a.ID, audit(events.ActionPlatformDeleted), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, a.ID); !errors.Is(err, platformstore.ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	var actions []string
	rows, _ := pool.Query(ctx, `SELECT convert_from(data, 'UTF8')::jsonb->>'action' FROM outbox WHERE key = $1 ORDER BY id`, "access:"+a.ID)
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		actions = append(actions, s)
	}
	rows.Close()
	if want := []string{events.ActionPlatformCreated, events.ActionPlatformUpdated, events.ActionPlatformDeleted}; !slices.Equal(actions, want) {
		t.Errorf("audited %v, want %v (a refused delete writes none)", actions, want)
	}
}
