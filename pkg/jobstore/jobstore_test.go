package jobstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/jobstore/jobstoretest"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
)

func newStore(t *testing.T) *jobstore.Store {
	t.Helper()
	pool := pgdbtest.NewDatabase(t, "jobstoretest")
	if err := jobstore.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return jobstore.New(pool)
}

func request(t *testing.T) events.ExportRequested {
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return events.ExportRequested{
		JobID: id.String(), Entity: "products", Format: "csv", Fields: []string{"sku"},
		Filters: map[string]any{"status": "active"}, RequestedBy: "alice",
		RequestedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	jobstoretest.Run(t, func(t *testing.T) jobstoretest.Repository { return newStore(t) })
}

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	jobstoretest.Run(t, func(*testing.T) jobstoretest.Repository { return jobstore.NewMemory() })
}

// TestRelayOutbox: a row leaves the outbox only once published or moved aside as
// undeliverable; a transient failure keeps it; one relay at a time.
func TestRelayOutbox(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	reqs := []events.ExportRequested{request(t), request(t), request(t)}
	for _, req := range reqs {
		if _, err := s.Create(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	backlog := func() int64 {
		st, err := s.Outbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Backlog
	}
	// Kafka away: everything stays.
	res, err := s.RelayOutbox(ctx, 10, func(_ context.Context, m []jobstore.OutboxMessage) []error {
		errs := make([]error, len(m))
		for i := range errs {
			errs[i] = errors.New("kafka down")
		}
		return errs
	})
	if err != nil || res.Failed != 3 || backlog() != 3 {
		t.Fatalf("failing publish: %+v %v, backlog %d", res, err, backlog())
	}
	// The middle one is refused for good: it moves aside, the others go.
	var got []jobstore.OutboxMessage
	res, err = s.RelayOutbox(ctx, 10, func(_ context.Context, m []jobstore.OutboxMessage) []error {
		got = m
		return []error{nil, fmt.Errorf("%w: MESSAGE_TOO_LARGE", jobstore.ErrUndeliverable), nil}
	})
	if err != nil || res.Relayed != 2 || res.Dead != 1 {
		t.Fatalf("relay = %+v, %v", res, err)
	}
	if got[0].Topic != events.TopicRequested || got[0].Envelope.ID != events.ID(reqs[0]) || got[0].Envelope.Key != reqs[0].JobID {
		t.Errorf("relayed %+v", got[0])
	}
	st, _ := s.Outbox(ctx)
	if st.Backlog != 0 || st.Dead != 1 {
		t.Errorf("after relay: %+v", st)
	}
	// Another relay's lock makes this one step aside.
	if _, err := s.Create(ctx, request(t)); err != nil {
		t.Fatal(err)
	}
	inside := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := s.RelayOutbox(ctx, 10, func(_ context.Context, m []jobstore.OutboxMessage) []error {
			close(inside)
			<-release
			return make([]error, len(m))
		})
		done <- err
	}()
	<-inside
	res, err = s.RelayOutbox(ctx, 10, func(context.Context, []jobstore.OutboxMessage) []error {
		t.Error("a second relay published while the first held the lock")
		return nil
	})
	if err != nil || !res.Busy {
		t.Errorf("second relay: %+v %v, want busy", res, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if backlog() != 0 {
		t.Errorf("backlog %d after the first relay finished", backlog())
	}
}

// TestRelayOutboxKeepsAKeysOrder: a row acknowledged behind a failed row of the same key
// stays, so the key's newest event is sent again after the older one; other keys go on, and a
// publish that answers too few errors deletes nothing it did not answer for.
func TestRelayOutboxKeepsAKeysOrder(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	a, b := request(t), request(t)
	for _, req := range []events.ExportRequested{a, b} {
		if _, err := s.Create(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Cancel(ctx, a.JobID, "alice"); err != nil {
		t.Fatal(err)
	}
	// Rows: a requested, b requested, a cancelled. The first fails, the others are acknowledged.
	res, err := s.RelayOutbox(ctx, 10, func(_ context.Context, m []jobstore.OutboxMessage) []error {
		if len(m) != 3 || m[0].Envelope.Key != a.JobID || m[1].Envelope.Key != b.JobID || m[2].Envelope.Key != a.JobID {
			t.Fatalf("outbox order: %+v", m)
		}
		return []error{errors.New("NOT_LEADER_FOR_PARTITION"), nil, nil}
	})
	if err != nil || res.Relayed != 1 || res.Failed != 2 {
		t.Fatalf("relay = %+v, %v; want 1 relayed (b), 2 kept (a's)", res, err)
	}
	var types []events.Type
	res, err = s.RelayOutbox(ctx, 10, func(_ context.Context, m []jobstore.OutboxMessage) []error {
		for _, msg := range m {
			if msg.Envelope.Key != a.JobID {
				t.Errorf("relayed again: %s of %s", msg.Envelope.Type, msg.Envelope.Key)
			}
			types = append(types, msg.Envelope.Type)
		}
		return []error{nil} // one answer for two rows
	})
	if err != nil || res.Relayed != 1 || res.Failed != 1 {
		t.Fatalf("relay = %+v, %v; want 1 relayed, 1 kept for want of an answer", res, err)
	}
	if !slices.Equal(types, []events.Type{events.TypeRequested, events.TypeCancelled}) {
		t.Errorf("a's events relayed as %v", types)
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	var ids []string
	for range 7 {
		req := request(t)
		if _, err := s.Create(ctx, req); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, req.JobID)
	}
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		jobs, next, err := s.List(ctx, jobstore.ListFilter{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			seen = append(seen, j.ID)
		}
		if page == 0 {
			// a job created while paging appears on no later page and breaks nothing
			if _, err := s.Create(ctx, request(t)); err != nil {
				t.Fatal(err)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != len(ids) {
		t.Fatalf("paged through %d jobs, want %d", len(seen), len(ids))
	}
	for i := range ids {
		if seen[i] != ids[len(ids)-1-i] {
			t.Fatalf("order %v, want newest first %v", seen, ids)
		}
	}
	if _, _, err := s.List(ctx, jobstore.ListFilter{Cursor: "garbage!"}); !errors.Is(err, jobstore.ErrBadCursor) {
		t.Errorf("bad cursor = %v", err)
	}
	if _, err := s.Get(ctx, "not-a-uuid"); !errors.Is(err, jobstore.ErrNotFound) {
		t.Errorf("Get(not-a-uuid) = %v", err)
	}
}
