package outcomes

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/schedstore"
	"github.com/productsmanager/exportplatform/pkg/schedule"
)

type fakeStore struct {
	changes []schedstore.JobChange
	err     error
}

func (f *fakeStore) JobChanged(_ context.Context, c schedstore.JobChange, _ time.Time) (*schedstore.Moved, error) {
	f.changes = append(f.changes, c)
	return nil, f.err
}

func TestHandlerFoldsJobEnds(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	job := "0190a1b2-0000-7000-8000-000000000001"
	tests := []struct {
		ev   events.Event
		want schedule.JobStatus
	}{
		{events.ExportStarted{JobID: job, StartedAt: at}, schedule.JobRunning},
		{events.ExportCompleted{JobID: job, FinishedAt: at}, schedule.JobCompleted},
		{events.ExportFailed{JobID: job, FailedAt: at, Message: "bucket gone"}, schedule.JobFailed},
		{events.ExportCancelled{JobID: job, CancelledAt: at}, schedule.JobCancelled},
		{events.ExportProgress{JobID: job, At: at}, ""},
		{events.ExportRequested{JobID: job, RequestedAt: at}, ""},
	}
	for _, tt := range tests {
		st := &fakeStore{}
		h := Handler(st, time.Now, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		env, err := events.Wrap(tt.ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := h(context.Background(), env); err != nil {
			t.Fatalf("%T: %v", tt.ev, err)
		}
		if tt.want == "" {
			if len(st.changes) != 0 {
				t.Errorf("%T folded: %+v", tt.ev, st.changes)
			}
			continue
		}
		if len(st.changes) != 1 || st.changes[0].Status != tt.want || st.changes[0].JobID != job || !st.changes[0].At.Equal(at) {
			t.Errorf("%T: changes %+v, want one %s", tt.ev, st.changes, tt.want)
		}
	}
	// A store error is retried (not permanent); a malformed event is skipped (permanent).
	st := &fakeStore{err: errors.New("database down")}
	h := Handler(st, time.Now, slog.New(slog.DiscardHandler), nil)
	env, _ := events.Wrap(events.ExportFailed{JobID: job, FailedAt: at})
	if err := h(context.Background(), env); err == nil || errors.Is(err, eventbus.ErrPermanent) {
		t.Errorf("store error = %v, want a retryable error", err)
	}
	env.Data = []byte("{not json")
	if err := h(context.Background(), env); !errors.Is(err, eventbus.ErrPermanent) {
		t.Errorf("malformed event = %v, want permanent", err)
	}
}
