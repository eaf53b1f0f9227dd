package fold

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Pusher keeping what it was given.
type recorder struct {
	mu      sync.Mutex
	updates []job.Progress
	err     error
}

func (r *recorder) Push(_ context.Context, u job.Progress) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.updates = append(r.updates, u)
	return nil
}

func (r *recorder) got() []job.Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]job.Progress(nil), r.updates...)
}

// life runs a job through its writer (the in-memory repository deciding with pkg/job) and
// returns the store and the envelopes it wrote, in order: what the relay puts on Kafka.
func life(t *testing.T) (*jobstore.Memory, string, []events.Envelope) {
	t.Helper()
	ctx := context.Background()
	m := jobstore.NewMemory()
	id := uuid.Must(uuid.NewV7()).String()
	now := time.Now().UTC()
	if _, err := m.Create(ctx, events.ExportRequested{JobID: id, Entity: "products", Format: "csv", RequestedBy: "alice", RequestedAt: now}); err != nil {
		t.Fatal(err)
	}
	_, lease, err := m.Claim(ctx, id, jobstore.ClaimOptions{Owner: "w", TTL: time.Minute, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	a := lease.Attempt
	for _, c := range []job.Command{
		job.Start{Owner: "w", Attempt: a, RowsTotal: 100, At: now},
		job.Report{Owner: "w", Attempt: a, RowsDone: 50, BytesWritten: 500, Phase: events.PhaseWriting, At: now},
		job.Report{Owner: "w", Attempt: a, RowsDone: 100, BytesWritten: 1000, Phase: events.PhaseUploading, At: now},
		job.Complete{Owner: "w", Attempt: a, Rows: 100, StartedAt: now, ExpiresAt: now.Add(time.Hour), At: now,
			Object: events.Object{Bucket: "exports", Key: "products/x/1/catalog.csv", SizeBytes: 1000, SHA256: "ab", FileName: "catalog.csv"}},
	} {
		if _, err := m.Do(ctx, id, c); err != nil {
			t.Fatal(err)
		}
	}
	msgs, _ := m.Pending(ctx, id)
	envs := make([]events.Envelope, len(msgs))
	for i, msg := range msgs {
		envs[i] = msg.Envelope
	}
	return m, id, envs
}

func newHandler(t *testing.T, store Store, rec *recorder) *Handler {
	return New(store, rec, slog.New(slog.NewTextHandler(t.Output(), nil)), nil)
}

// TestPushesWhatTheWriterDecided: every state change is pushed once, in order, with the state
// the event carries (no database read); a redelivered or late event pushes nothing.
func TestPushesWhatTheWriterDecided(t *testing.T) {
	t.Parallel()
	m, id, envs := life(t)
	rec := &recorder{}
	h := newHandler(t, failingStore{}, rec) // any read would fail the test
	for _, env := range envs {
		if err := h.Handle(t.Context(), env); err != nil {
			t.Fatal(err)
		}
	}
	// Redelivery of everything (a consumer restarted from an older offset): nothing new.
	for _, env := range envs {
		if err := h.Handle(t.Context(), env); err != nil {
			t.Fatal(err)
		}
	}
	got := rec.got()
	wantTypes := []string{"progress", "progress", "progress", "progress", "completed"}
	if len(got) != len(wantTypes) {
		t.Fatalf("%d pushes, want %d: %+v", len(got), len(wantTypes), got)
	}
	for i, u := range got {
		if u.Type != wantTypes[i] || u.JobID != id || u.TaskID != id || (i > 0 && u.Version <= got[i-1].Version) {
			t.Errorf("push %d: %s v%d for %s", i, u.Type, u.Version, u.JobID)
		}
	}
	final, _ := m.Get(t.Context(), id)
	last := got[len(got)-1]
	if last.Version != final.Version || last.Status != jobstore.StatusCompleted || last.Progress != 100 ||
		last.File == nil || last.File.ObjectKey != "products/x/1/catalog.csv" || last.File.SHA256 != "ab" {
		t.Errorf("last push %+v (file %+v), want the completed job with its file's object_key", last, last.File)
	}
	if got[2].Phase != events.PhaseWriting || got[2].RowsDone != 50 || got[3].Phase != events.PhaseUploading {
		t.Errorf("progress pushes %+v %+v", got[2], got[3])
	}
}

// TestLateRequestIsNotPushed: ExportRequested travels on its own topic and may arrive after
// the job's first events: it must not show the running job as queued again.
func TestLateRequestIsNotPushed(t *testing.T) {
	t.Parallel()
	_, _, envs := life(t)
	rec := &recorder{}
	h := newHandler(t, failingStore{}, rec)
	for _, env := range append(envs[1:3], envs[0]) {
		if err := h.Handle(t.Context(), env); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range rec.got() {
		if u.Status == jobstore.StatusQueued {
			t.Errorf("a late ExportRequested was pushed: %+v", u)
		}
	}
}

// TestEventWithoutStateReadsTheRow: an event from before events carried their state is pushed
// from the job row; of an unknown job, it is dropped.
func TestEventWithoutStateReadsTheRow(t *testing.T) {
	t.Parallel()
	m, id, _ := life(t)
	rec := &recorder{}
	h := newHandler(t, m, rec)
	old := events.ExportProgress{JobID: id, Attempt: 1, RowsDone: 10, RowsTotal: 100, At: time.Now()}
	env, _ := events.Wrap(old)
	if err := h.Handle(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	if got := rec.got(); len(got) != 1 || got[0].Status != jobstore.StatusCompleted {
		t.Errorf("pushed %+v, want the row's state", got)
	}
	unknown, _ := events.Wrap(events.ExportProgress{JobID: uuid.Must(uuid.NewV7()).String(), Attempt: 1})
	if err := h.Handle(t.Context(), unknown); err != nil || len(rec.got()) != 1 {
		t.Errorf("an unknown job's event: %v, %d pushes", err, len(rec.got()))
	}
}

func TestHandleErrors(t *testing.T) {
	t.Parallel()
	_, _, envs := life(t)
	bad := envs[1]
	bad.Data = []byte("{not json")
	h := newHandler(t, failingStore{}, &recorder{})
	if err := h.Handle(t.Context(), bad); !errors.Is(err, eventbus.ErrPermanent) {
		t.Errorf("undecodable event: %v, want permanent", err)
	}
	// A push that fails is retried (the error is returned), and then pushed.
	rec := &recorder{err: context.DeadlineExceeded}
	h = newHandler(t, failingStore{}, rec)
	if err := h.Handle(t.Context(), envs[1]); err == nil {
		t.Fatal("a failed push returned nil")
	}
	rec.mu.Lock()
	rec.err = nil
	rec.mu.Unlock()
	if err := h.Handle(t.Context(), envs[1]); err != nil || len(rec.got()) != 1 {
		t.Errorf("the retried push: %v, %d pushes", err, len(rec.got()))
	}
}

type failingStore struct{}

func (failingStore) GetAny(context.Context, string) (jobstore.Job, error) {
	return jobstore.Job{}, errors.New("the hub read the database for an event that carries its state")
}
