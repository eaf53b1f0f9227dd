// Package fold provides the progress-hub's Kafka handler: it turns each job event into the push
// its state calls for and hands it to the WebSocket hub. It folds nothing into any table: the
// job's one writer (pkg/jobstore, deciding with pkg/job) decided the state and put it in the
// event, so every replica pushes exactly what was decided, from the event, with no database
// round trip per event.
//
// Every replica reads every event (a group-less consumer), so each replica's clients see every
// state change. Events of one job arrive in order on exports.events; ExportRequested comes on
// exports.requested and may arrive after the job's first events, so a replica pushes a job's
// state only when its Version is newer than the last it pushed for that job.
//
// An event written before events carried their state (no `state`) is pushed from the job row
// instead, as earlier hubs did.
package fold

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// Store reads a job row, deleted or not, for events that carry no state.
type Store interface {
	GetAny(ctx context.Context, id string) (jobstore.Job, error)
}

// Pusher delivers an update to the subscribed clients; the WebSocket hub implements it.
type Pusher interface {
	Push(ctx context.Context, u job.Progress) error
}

// maxTracked bounds the versions remembered; past it the memory starts afresh (a late
// ExportRequested of a job then forgotten could show queued once, until its next event).
const maxTracked = 200_000

// Handler pushes the state each event announces. It is used by one consumer goroutine.
type Handler struct {
	store   Store
	push    Pusher
	log     *slog.Logger
	handled *prometheus.CounterVec
	pushed  map[string]int64 // job id → version last pushed
}

// New builds a handler; its metrics go to reg (nil: none).
func New(store Store, push Pusher, log *slog.Logger, reg prometheus.Registerer) *Handler {
	handled := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "progress_hub_events_total",
		Help: "Job events handled, by ce_type and outcome (pushed, stale, undecodable, unknown_job, ignored).",
	}, []string{"type", "outcome"})
	if reg != nil {
		reg.MustRegister(handled)
	}
	return &Handler{store: store, push: push, log: log, handled: handled, pushed: map[string]int64{}}
}

// Handle is the eventbus.Handler. Undecodable data is permanent (retrying cannot help).
func (h *Handler) Handle(ctx context.Context, env events.Envelope) error {
	if env.Type == events.TypeAccessed || env.Type == events.TypeDelivered || env.Type == events.TypeDeliveryFailed {
		// The audit's access events change no job's progress, nor do deliveries (the job's
		// REST view shows its delivery).
		h.handled.WithLabelValues(string(env.Type), "ignored").Inc()
		return nil
	}
	ev, err := events.DecodeAny(env)
	if err != nil {
		h.handled.WithLabelValues(string(env.Type), "undecodable").Inc()
		return eventbus.Permanent(fmt.Errorf("decoding event %s: %w", env.ID, err))
	}
	u, ok, err := h.update(ctx, ev)
	if err != nil {
		return err
	}
	if !ok {
		h.handled.WithLabelValues(string(env.Type), "unknown_job").Inc()
		return nil
	}
	if last := h.pushed[u.JobID]; u.Version != 0 && u.Version <= last {
		h.handled.WithLabelValues(string(env.Type), "stale").Inc()
		h.log.Debug("state older than the one pushed; not pushed", "job_id", u.JobID, "ce_id", env.ID,
			"ce_type", env.Type, "version", u.Version, "pushed_version", last)
		return nil
	}
	if err := h.push.Push(ctx, u); err != nil {
		return fmt.Errorf("pushing job %s: %w", u.JobID, err)
	}
	if len(h.pushed) >= maxTracked {
		clear(h.pushed)
	}
	h.pushed[u.JobID] = u.Version
	h.handled.WithLabelValues(string(env.Type), "pushed").Inc()
	return nil
}

// update is the push an event calls for; ok false for an event of an unknown job.
func (h *Handler) update(ctx context.Context, ev events.Event) (job.Progress, bool, error) {
	if e, ok := ev.(events.ExportRequested); ok {
		// The job's first state, as pkg/job.New makes it.
		return job.ProgressFromState(e.JobID, events.JobState{
			Version: 1, Status: string(jobstore.StatusQueued), Phase: events.PhaseQueued, UpdatedAt: e.RequestedAt,
			Owner: e.RequestedBy,
		}, nil), true, nil
	}
	st := events.StateOf(ev)
	var file *events.Object
	if e, ok := ev.(events.ExportCompleted); ok {
		file = &e.Object
	}
	if st != nil && st.Owner != "" {
		return job.ProgressFromState(ev.Key(), *st, file), true, nil
	}
	// An event without state or owner (sent before events carried them): the job's row.
	j, err := h.store.GetAny(ctx, ev.Key())
	if errors.Is(err, jobstore.ErrNotFound) {
		return job.Progress{}, false, nil // unknown job: nobody can be subscribed to it
	}
	if err != nil {
		return job.Progress{}, false, fmt.Errorf("reading job %s after %s: %w", ev.Key(), ev.EventType(), err)
	}
	return job.ProgressOf(j), true, nil
}
