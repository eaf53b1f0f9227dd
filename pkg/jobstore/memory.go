package jobstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// Memory is the in-memory twin of Store: the same commands, decided by the same job.Apply, with
// an outbox that only accumulates, for unit tests of the components that send commands. The
// conformance suite (jobstoretest) runs against both.
type Memory struct {
	mu     sync.Mutex
	jobs   map[string]Job
	traces map[string][2]string // job id → the traceparent and tracestate it was requested under
	outbox []OutboxMessage
	now    func() time.Time
	// Before, when set, is called before each command is decided; an error it returns is what
	// the command returns (a database outage, say), with nothing changed.
	Before func(id string, c job.Command) error
}

// NewMemory is an empty in-memory job store.
func NewMemory() *Memory {
	return &Memory{jobs: map[string]Job{}, traces: map[string][2]string{}, now: func() time.Time { return time.Now().UTC() }}
}

// Create stores a queued job and its ExportRequested.
func (m *Memory) Create(ctx context.Context, req events.ExportRequested) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.create(ctx, req)
}

func (m *Memory) create(ctx context.Context, req events.ExportRequested) (Job, error) {
	if _, ok := m.jobs[req.JobID]; ok || !ValidID(req.JobID) {
		return Job{}, errors.New("inserting job " + req.JobID + ": invalid or duplicate id")
	}
	j, evs := job.New(req)
	if err := m.append(ctx, evs); err != nil {
		return Job{}, err
	}
	m.jobs[j.ID] = j
	// The job keeps the trace context it was requested under, as Store's row does.
	if tp, ts := telemetry.TraceParent(ctx); tp != "" {
		m.traces[j.ID] = [2]string{tp, ts}
	}
	return m.view(j), nil
}

// CreateWithin is Create bounded by the requester's active jobs, as Store.CreateWithin.
func (m *Memory) CreateWithin(ctx context.Context, req events.ExportRequested, maxActive int) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if maxActive > 0 {
		active := 0
		for _, j := range m.jobs {
			if j.RequestedBy == req.RequestedBy && !j.Deleted() && !j.Status.Terminal() {
				active++
			}
		}
		if active >= maxActive {
			return Job{}, fmt.Errorf("%w: %d queued or running, at most %d", ErrTooManyActive, active, maxActive)
		}
	}
	return m.create(ctx, req)
}

// Get returns a job that has not been deleted.
func (m *Memory) Get(ctx context.Context, id string) (Job, error) {
	j, err := m.GetAny(ctx, id)
	if err == nil && j.Deleted() {
		return Job{}, ErrNotFound
	}
	return j, err
}

// GetAny is Get with deleted jobs too.
func (m *Memory) GetAny(_ context.Context, id string) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return Job{}, ErrNotFound
	}
	return m.view(j), nil
}

// Do decides c with job.Apply and stores the result and its events.
func (m *Memory) Do(ctx context.Context, id string, c job.Command) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.do(ctx, id, c)
}

func (m *Memory) do(ctx context.Context, id string, c job.Command) (Job, error) {
	cur, ok := m.jobs[id]
	if !ok {
		return Job{}, ErrNotFound
	}
	if m.Before != nil {
		if err := m.Before(id, c); err != nil {
			return Job{}, err
		}
	}
	next, evs, err := job.Apply(cur, c)
	if err != nil {
		return m.view(cur), err
	}
	if err := m.append(ctx, evs); err != nil {
		return Job{}, err
	}
	m.jobs[id] = next
	return m.view(next), nil
}

// Claim takes the lease of one job, like Store.Claim.
func (m *Memory) Claim(ctx context.Context, id string, o ClaimOptions) (Job, Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	before := m.jobs[id]
	j, err := m.do(ctx, id, o.command(m.now()))
	if errors.Is(err, job.ErrNotClaimable) || errors.Is(err, ErrNotFound) {
		return Job{}, Lease{}, ErrNotClaimed
	}
	if err != nil {
		return Job{}, Lease{}, err
	}
	if !j.Holds(o.Owner, j.Attempt) {
		return Job{}, Lease{}, ErrNotClaimed
	}
	return j, Lease{JobID: j.ID, Owner: o.Owner, Attempt: j.Attempt, Rescued: rescues(before)}, nil
}

// ClaimNext claims the oldest job waiting for a worker, like Store.ClaimNext.
func (m *Memory) ClaimNext(ctx context.Context, o ClaimOptions) (Job, Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	waiting := make([]Job, 0)
	for _, j := range m.jobs {
		if !j.Status.Terminal() && !j.Deleted() && (j.LeaseOwner == nil || j.LeaseExpiresAt.Before(now)) {
			waiting = append(waiting, j)
		}
	}
	slices.SortFunc(waiting, func(a, b Job) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
	for _, w := range waiting {
		j, err := m.do(ctx, w.ID, o.command(now))
		if err != nil {
			return Job{}, Lease{}, err
		}
		if j.Holds(o.Owner, j.Attempt) {
			return j, Lease{JobID: j.ID, Owner: o.Owner, Attempt: j.Attempt, Rescued: rescues(w)}, nil
		}
	}
	return Job{}, Lease{}, ErrNotClaimed
}

// ClaimDelivery is Store.ClaimDelivery.
func (m *Memory) ClaimDelivery(ctx context.Context, owner string, ttl time.Duration) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var due []Job
	for _, j := range m.jobs {
		if at := j.Delivery.DueAt(); at != nil && !at.After(now) && !j.Deleted() {
			due = append(due, j)
		}
	}
	slices.SortFunc(due, func(a, b Job) int {
		if c := a.Delivery.DueAt().Compare(*b.Delivery.DueAt()); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
	if len(due) == 0 {
		return Job{}, ErrNotClaimed
	}
	return m.do(ctx, due[0].ID, job.ClaimDelivery{Owner: owner, TTL: ttl, At: now})
}

// List is Store.List: jobs not deleted, newest first, filtered, paged by a (created_at, id)
// cursor.
func (m *Memory) List(_ context.Context, f ListFilter) ([]Job, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	var after time.Time
	var afterID string
	if f.Cursor != "" {
		t, id, err := DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		after, afterID = t, id
	}
	var out []Job
	for _, j := range m.jobs {
		switch {
		case j.Deleted(),
			f.Status != "" && j.Status != f.Status,
			f.Entity != "" && j.Entity != f.Entity,
			f.Format != "" && j.Format != f.Format,
			f.RequestedBy != "" && j.RequestedBy != f.RequestedBy,
			f.ScheduleID != "" && (j.ScheduleID == nil || *j.ScheduleID != f.ScheduleID),
			!f.ScheduledFor.IsZero() && (j.ScheduledFor == nil || !j.ScheduledFor.Equal(f.ScheduledFor)),
			!f.CreatedAfter.IsZero() && j.CreatedAt.Before(f.CreatedAfter),
			!f.CreatedBefore.IsZero() && !j.CreatedAt.Before(f.CreatedBefore),
			f.Cursor != "" && !(j.CreatedAt.Before(after) || j.CreatedAt.Equal(after) && j.ID < afterID):
			continue
		}
		out = append(out, m.view(j))
	}
	slices.SortFunc(out, func(a, b Job) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return compareStrings(b.ID, a.ID)
	})
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[len(out)-1]
		next = EncodeCursor(last.CreatedAt, last.ID)
	}
	return out, next, nil
}

// Cancel is Store.Cancel.
func (m *Memory) Cancel(ctx context.Context, id, by string) (Job, error) {
	j, err := m.Do(ctx, id, job.Cancel{By: by, Reason: "cancelled on request", At: m.now()})
	if errors.Is(err, ErrNotFound) {
		return Job{}, ErrNotFound
	}
	return j, err
}

// Delete is Store.Delete.
func (m *Memory) Delete(ctx context.Context, id, by string, audit *events.Accessed) (Job, error) {
	j, err := m.Do(ctx, id, job.Delete{By: by, At: m.now(), Audit: audit})
	if errors.Is(err, ErrNotFound) {
		return Job{}, ErrNotFound
	}
	return j, err
}

// Cancelled is Store.Cancelled.
func (m *Memory) Cancelled(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	return !ok || j.Status == StatusCancelled || j.Deleted(), nil
}

// FileRemoved is Store.FileRemoved.
func (m *Memory) FileRemoved(ctx context.Context, id string, now time.Time) error {
	if _, err := m.Do(ctx, id, job.RemoveFile{At: now}); err != nil && !errors.Is(err, job.ErrStale) {
		return err
	}
	return nil
}

// Pending returns the events written for key (every key when ""), oldest first. The twin's
// outbox keeps everything: nothing relays it.
func (m *Memory) Pending(_ context.Context, key string) ([]OutboxMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []OutboxMessage
	for _, msg := range m.outbox {
		if key == "" || msg.Envelope.Key == key {
			out = append(out, msg)
		}
	}
	return out, nil
}

// SetClock replaces the twin's clock (lease expiry, event times).
func (m *Memory) SetClock(now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = now
}

// append queues evs with the trace context of ctx, as Store's outbox rows keep it.
func (m *Memory) append(ctx context.Context, evs []events.Event) error {
	traceparent, tracestate := telemetry.TraceParent(ctx)
	for _, ev := range evs {
		env, err := events.Wrap(ev)
		if err != nil {
			return err
		}
		if len(env.Data) > MaxEventBytes {
			return ErrEventTooLarge
		}
		env.TraceParent, env.TraceState = traceparent, tracestate
		m.outbox = append(m.outbox, OutboxMessage{Topic: TopicOf(ev), Envelope: env})
	}
	return nil
}

// view is the job as Store reads it: its queue position computed, never stored.
func (m *Memory) view(j Job) Job {
	j.QueuePosition = nil
	if j.Status == StatusQueued && !j.Deleted() {
		n := int64(1)
		for _, o := range m.jobs {
			if o.Status == StatusQueued && !o.Deleted() && (o.CreatedAt.Before(j.CreatedAt) || o.CreatedAt.Equal(j.CreatedAt) && o.ID < j.ID) {
				n++
			}
		}
		j.QueuePosition = &n
	}
	return j
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Audit queues audit events, as Store.Audit.
func (m *Memory) Audit(ctx context.Context, evs ...events.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.append(ctx, evs)
}
