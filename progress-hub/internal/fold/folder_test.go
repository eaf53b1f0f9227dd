package fold

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// TestFolderFoldsLateAndPushesNothing: the shared group's handler holds an event until delay
// after its ce_time (at most delay), folds it, and pushes nothing; an old event is folded at
// once; a cancelled context leaves the event for a retry.
func TestFolderFoldsLateAndPushesNothing(t *testing.T) {
	t.Parallel()
	const delay = 150 * time.Millisecond
	tests := []struct {
		name     string
		age      time.Duration // how old the event is when handled
		cancel   bool
		minWait  time.Duration
		maxWait  time.Duration
		wantErr  error
		wantFold bool
	}{
		{name: "fresh event waits", age: 0, minWait: delay - 20*time.Millisecond, maxWait: delay + time.Second, wantFold: true},
		{name: "old event folds at once", age: time.Hour, maxWait: 100 * time.Millisecond, wantFold: true},
		{name: "future ce_time waits at most delay", age: -time.Hour, minWait: delay - 20*time.Millisecond, maxWait: delay + time.Second, wantFold: true},
		{name: "cancelled while waiting", age: 0, cancel: true, maxWait: time.Second, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := fakeStore{changed: true, job: running(5)}
			rec := &recorder{}
			h := New(&store, rec, slog.New(slog.DiscardHandler), nil).Folder(delay)
			env := wrap(t, events.ExportProgress{JobID: jobID, Attempt: 1, RowsDone: 5, RowsTotal: 10, At: at})
			env.Time = time.Now().Add(-tt.age)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			start := time.Now()
			err := h(ctx, env)
			took := time.Since(start)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if took < tt.minWait || took > tt.maxWait {
				t.Errorf("took %s, want between %s and %s", took, tt.minWait, tt.maxWait)
			}
			if got := len(store.applied) == 1; got != tt.wantFold {
				t.Errorf("folded %v, want %v", got, tt.wantFold)
			}
			if len(rec.updates) != 0 {
				t.Errorf("pushed %v: the group's fold pushes nothing", rec.updates)
			}
		})
	}
}
