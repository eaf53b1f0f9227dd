package fold

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/progress-hub/internal/progress"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const jobID = "0195a000-0000-7000-8000-0000000000aa"

var at = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeStore answers Apply with changed and Get with job.
type fakeStore struct {
	changed  bool
	applyErr error
	job      jobstore.Job
	getErr   error
	applied  []events.Event
}

func (f *fakeStore) Apply(_ context.Context, ev events.Event) (bool, error) {
	f.applied = append(f.applied, ev)
	return f.changed, f.applyErr
}

func (f *fakeStore) GetAny(context.Context, string) (jobstore.Job, error) { return f.job, f.getErr }

// recorder is a Pusher keeping what it was given.
type recorder struct {
	mu      sync.Mutex
	updates []progress.Update
	err     error
}

func (r *recorder) Push(_ context.Context, u progress.Update) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, u)
	return r.err
}

func wrap(t *testing.T, ev events.Event) events.Envelope {
	t.Helper()
	env, err := events.Wrap(ev)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func running(rows int64) jobstore.Job {
	total := int64(100)
	return jobstore.Job{ID: jobID, TaskID: jobID, Status: jobstore.StatusRunning, RowsDone: rows, RowsTotal: &total,
		Progress: float64(rows), UpdatedAt: at}
}

func completed() jobstore.Job {
	j := running(100)
	j.Status = jobstore.StatusCompleted
	j.File = &events.Object{Bucket: "exports", Key: "k", FileName: "f.csv", SizeBytes: 10}
	return j
}

func TestHandle(t *testing.T) {
	t.Parallel()
	started := events.ExportStarted{JobID: jobID, Attempt: 1, RowsTotal: 100, StartedAt: at}
	prog := events.ExportProgress{JobID: jobID, Attempt: 1, RowsDone: 50, RowsTotal: 100, Progress: 50, At: at}
	done := events.ExportCompleted{JobID: jobID, Rows: 100, FinishedAt: at}
	failedJob := running(10)
	failedJob.Status, failedJob.Error = jobstore.StatusFailed, &jobstore.JobError{Code: "catalog_unavailable", Message: "boom"}
	tests := []struct {
		name          string
		env           events.Envelope
		store         fakeStore
		wantType      string // "" for no push
		wantPermanent bool
		wantErr       bool
	}{
		{name: "started changes: progress, running", env: wrap(t, started), store: fakeStore{changed: true, job: running(0)}, wantType: "progress"},
		{name: "progress changes", env: wrap(t, prog), store: fakeStore{changed: true, job: running(50)}, wantType: "progress"},
		{name: "completed changes", env: wrap(t, done), store: fakeStore{changed: true, job: completed()}, wantType: "completed"},
		{name: "failed changes", env: wrap(t, events.ExportFailed{JobID: jobID, Code: "x"}), store: fakeStore{changed: true, job: failedJob}, wantType: "failed"},
		{name: "cancelled folded elsewhere is still pushed", env: wrap(t, events.ExportCancelled{JobID: jobID}),
			store: fakeStore{job: func() jobstore.Job { j := running(5); j.Status = jobstore.StatusCancelled; return j }()}, wantType: "cancelled"},
		{name: "progress folded elsewhere is still pushed", env: wrap(t, prog), store: fakeStore{job: running(50)}, wantType: "progress"},
		{name: "older progress is not pushed", env: wrap(t, prog), store: fakeStore{job: running(80)}},
		{name: "progress after completion is not pushed", env: wrap(t, prog), store: fakeStore{job: completed()}},
		{name: "started after progress is not pushed", env: wrap(t, started), store: fakeStore{job: running(80)}},
		{name: "requested, still queued", env: wrap(t, events.ExportRequested{JobID: jobID}),
			store: fakeStore{job: func() jobstore.Job { j := running(0); j.Status = jobstore.StatusQueued; return j }()}, wantType: "progress"},
		{name: "requested, already running", env: wrap(t, events.ExportRequested{JobID: jobID}), store: fakeStore{changed: true, job: running(0)}},
		{name: "unknown job", env: wrap(t, prog), store: fakeStore{getErr: jobstore.ErrNotFound}},
		{name: "undecodable data is permanent", env: events.Envelope{ID: "1", Type: events.TypeProgress, Key: jobID, Data: []byte("{")},
			wantErr: true, wantPermanent: true},
		{name: "unknown type is permanent", env: events.Envelope{ID: "1", Type: "com.example.other.v1", Key: jobID, Data: []byte("{}")},
			wantErr: true, wantPermanent: true},
		{name: "database error is retried", env: wrap(t, prog), store: fakeStore{applyErr: errors.New("connection refused")}, wantErr: true},
		{name: "read error is retried", env: wrap(t, prog), store: fakeStore{changed: true, getErr: errors.New("connection refused")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			store := tt.store
			err := New(&store, rec, slog.New(slog.DiscardHandler), nil).Handle(t.Context(), tt.env)
			if tt.env.Type == events.TypeRequested && len(store.applied) != 0 {
				t.Errorf("ExportRequested was applied")
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got := errors.Is(err, eventbus.ErrPermanent); got != tt.wantPermanent {
				t.Fatalf("permanent = %v (%v), want %v", got, err, tt.wantPermanent)
			}
			if tt.wantType == "" {
				if len(rec.updates) != 0 {
					t.Fatalf("pushed %+v, want nothing", rec.updates)
				}
				return
			}
			if len(rec.updates) != 1 {
				t.Fatalf("pushed %d updates, want 1", len(rec.updates))
			}
			u := rec.updates[0]
			if u.Type != tt.wantType || u.TaskID != jobID || u.JobID != jobID || u.Status != store.job.Status ||
				u.RowsDone != store.job.RowsDone || !u.UpdatedAt.Equal(store.job.UpdatedAt) {
				t.Errorf("pushed %+v for job %+v", u, store.job)
			}
			if (u.File != nil) != (tt.wantType == "completed") {
				t.Errorf("file %+v for type %s", u.File, u.Type)
			}
		})
	}
}

func TestHandlePushFailureIsRetried(t *testing.T) {
	t.Parallel()
	rec := &recorder{err: context.Canceled}
	h := New(&fakeStore{changed: true, job: running(50)}, rec, slog.New(slog.DiscardHandler), nil)
	err := h.Handle(t.Context(), wrap(t, events.ExportProgress{JobID: jobID, Attempt: 1, RowsDone: 50}))
	if err == nil || errors.Is(err, eventbus.ErrPermanent) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
}
