package fold

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
)

// TestFoldAgainstPostgres folds a job's life into a real jobs table: each change is pushed,
// and neither a late nor an older event moves the job backwards.
func TestFoldAgainstPostgres(t *testing.T) {
	t.Parallel()
	pool := pgdbtest.NewDatabase(t, "hub_fold") // skipped without the stack, fatal under CI
	ctx := t.Context()
	if err := jobstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	store := jobstore.New(pool)
	id := uuid.Must(uuid.NewV7()).String()
	now := time.Now().UTC().Truncate(time.Millisecond)
	if _, err := store.Create(ctx, events.ExportRequested{JobID: id, Entity: "products", Format: "csv",
		RequestedBy: "alice", RequestedAt: now}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	h := New(store, rec, slog.New(slog.NewTextHandler(t.Output(), nil)), nil)

	steps := []struct {
		name     string
		ev       events.Event
		wantPush string // "" for none
		want     func(jobstore.Job) bool
	}{
		{"started", events.ExportStarted{JobID: id, Attempt: 1, RowsTotal: 100, StartedAt: now}, "progress",
			func(j jobstore.Job) bool {
				return j.Status == jobstore.StatusRunning && j.RowsDone == 0 && *j.RowsTotal == 100
			}},
		{"progress 50", events.ExportProgress{JobID: id, Attempt: 1, RowsDone: 50, RowsTotal: 100, Progress: 50, BytesWritten: 500, At: now}, "progress",
			func(j jobstore.Job) bool { return j.RowsDone == 50 && j.Progress == 50 && j.BytesWritten == 500 }},
		{"progress 80", events.ExportProgress{JobID: id, Attempt: 1, RowsDone: 80, RowsTotal: 100, Progress: 80, At: now}, "progress",
			func(j jobstore.Job) bool { return j.RowsDone == 80 }},
		{"older progress 50 again", events.ExportProgress{JobID: id, Attempt: 1, RowsDone: 50, RowsTotal: 100, Progress: 50, At: now}, "",
			func(j jobstore.Job) bool { return j.RowsDone == 80 && j.Status == jobstore.StatusRunning }},
		{"completed", events.ExportCompleted{JobID: id, Rows: 100, Object: events.Object{Bucket: "exports", Key: "k.csv",
			SizeBytes: 1234, SHA256: "abc", ContentType: "text/csv", FileName: "catalog.csv"}, StartedAt: now, FinishedAt: now}, "completed",
			func(j jobstore.Job) bool {
				return j.Status == jobstore.StatusCompleted && j.RowsDone == 100 && j.Progress == 100 && j.File != nil && j.File.SizeBytes == 1234
			}},
		{"late progress after completion", events.ExportProgress{JobID: id, Attempt: 1, RowsDone: 90, RowsTotal: 100, Progress: 90, At: now}, "",
			func(j jobstore.Job) bool { return j.Status == jobstore.StatusCompleted && j.RowsDone == 100 }},
		{"failed after completion", events.ExportFailed{JobID: id, Code: "late", Message: "late", FailedAt: now}, "",
			func(j jobstore.Job) bool { return j.Status == jobstore.StatusCompleted && j.Error == nil }},
	}
	for _, st := range steps {
		env, err := events.Wrap(st.ev)
		if err != nil {
			t.Fatal(err)
		}
		before := len(rec.updates)
		if err := h.Handle(ctx, env); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		job, err := store.Get(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !st.want(job) {
			t.Errorf("%s: job is %+v", st.name, job)
		}
		pushed := rec.updates[before:]
		switch {
		case st.wantPush == "" && len(pushed) != 0:
			t.Errorf("%s: pushed %+v, want nothing", st.name, pushed)
		case st.wantPush != "" && len(pushed) != 1:
			t.Errorf("%s: pushed %d updates, want 1", st.name, len(pushed))
		case st.wantPush != "":
			u := pushed[0]
			if u.Type != st.wantPush || u.TaskID != id || u.Status != job.Status || u.RowsDone != job.RowsDone || !u.UpdatedAt.Equal(job.UpdatedAt) {
				t.Errorf("%s: pushed %+v for job %+v", st.name, u, job)
			}
			if st.wantPush == "completed" && (u.File == nil || u.File.FileName != "catalog.csv") {
				t.Errorf("%s: pushed file %+v", st.name, u.File)
			}
		}
	}

	// A repeat of the completion (at-least-once delivery) changes nothing and is pushed again
	// with the same state, which clients apply idempotently.
	env, _ := events.Wrap(steps[4].ev)
	before := len(rec.updates)
	if err := h.Handle(context.WithoutCancel(ctx), env); err != nil {
		t.Fatal(err)
	}
	if got := rec.updates[before:]; len(got) != 1 || got[0].Type != "completed" {
		t.Errorf("repeat pushed %+v", got)
	}
}

// TestFoldDeletedRunningJob: a running job deleted while clients watch it is pushed to them as
// cancelled (the delete cancelled it), although the API no longer shows it.
func TestFoldDeletedRunningJob(t *testing.T) {
	t.Parallel()
	pool := pgdbtest.NewDatabase(t, "hub_fold_delete")
	ctx := t.Context()
	if err := jobstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	store := jobstore.New(pool)
	id := uuid.Must(uuid.NewV7()).String()
	if _, err := store.Create(ctx, events.ExportRequested{JobID: id, Entity: "products", Format: "csv",
		RequestedBy: "alice", RequestedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Claim(ctx, id, "w", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Delete(ctx, id, "bob"); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	h := New(store, rec, slog.New(slog.NewTextHandler(t.Output(), nil)), nil)
	env, err := events.Wrap(events.ExportCancelled{JobID: id, CancelledBy: "bob", CancelledAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(ctx, env); err != nil {
		t.Fatal(err)
	}
	if len(rec.updates) != 1 || rec.updates[0].Type != "cancelled" || rec.updates[0].TaskID != id {
		t.Errorf("pushed %+v, want the deleted job as cancelled", rec.updates)
	}
}
