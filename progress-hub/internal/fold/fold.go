// Package fold provides the progress-hub's Kafka handlers: they fold each job event of
// exports.events into the job row (jobstore's idempotent, monotonic Apply) and hand the job's
// new state to the WebSocket hub. ExportRequested (exports.requested) folds into nothing, since
// the row was written with it, but is pushed while the job is still queued, so clients
// following every job see new ones appear.
//
// Every hub replica reads every event (a group-less consumer, Handle: fold, then push to its
// own clients), and the replicas also share one consumer group (Folder: fold only, a little
// later) whose committed offsets make sure an event produced while no hub ran is still folded
// once one starts. So an event is folded several times, which Apply makes harmless: the first
// fold changes the row, the others change nothing.
//
// Delivery is at least once, so the handlers are idempotent: a repeat changes nothing in the
// database. Handle pushes when the job row reflects the event, whether its own Apply changed
// the row or someone else folded the same event first (another hub replica, the shared group,
// a writer updating the row with its outbox event, or this handler before a retry). A stale
// event (one a later event superseded) is folded into nothing and pushed to no one.
package fold

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/progress-hub/internal/progress"
)

// Store is the part of the job store the handler needs; *jobstore.Store implements it.
type Store interface {
	Apply(ctx context.Context, ev events.Event) (bool, error)
	// GetAny reads the job row, deleted or not: a job deleted while it ran is pushed as
	// cancelled to those who watched it.
	GetAny(ctx context.Context, id string) (jobstore.Job, error)
}

// Pusher delivers an update to the subscribed clients; the WebSocket hub implements it.
type Pusher interface {
	Push(ctx context.Context, u progress.Update) error
}

// Handler folds events and pushes the resulting job states.
type Handler struct {
	store  Store
	push   Pusher
	log    *slog.Logger
	folded *prometheus.CounterVec
}

// New builds a handler; its metrics go to reg (nil: none).
func New(store Store, push Pusher, log *slog.Logger, reg prometheus.Registerer) *Handler {
	folded := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "progress_hub_events_total",
		Help: "Job events handled, by consumer (broadcast: fold and push; group: fold only), ce_type and outcome (changed, unchanged, pushed_unchanged, undecodable).",
	}, []string{"consumer", "type", "outcome"})
	if reg != nil {
		reg.MustRegister(folded)
	}
	return &Handler{store: store, push: push, log: log, folded: folded}
}

// Handle is the eventbus.Handler. Undecodable data is permanent (retrying cannot help); a
// database error is returned for a retry.
func (h *Handler) Handle(ctx context.Context, env events.Envelope) error {
	ev, err := events.DecodeAny(env)
	if err != nil {
		h.folded.WithLabelValues("broadcast", string(env.Type), "undecodable").Inc()
		return eventbus.Permanent(fmt.Errorf("decoding event %s: %w", env.ID, err))
	}
	var changed bool
	if _, ok := ev.(events.ExportRequested); !ok { // Create wrote the row of a requested job
		if changed, err = h.store.Apply(ctx, ev); err != nil {
			return fmt.Errorf("folding %s of job %s: %w", env.Type, ev.Key(), err)
		}
	}
	job, err := h.store.GetAny(ctx, ev.Key())
	if errors.Is(err, jobstore.ErrNotFound) {
		// Unknown job: nobody can be subscribed to it.
		h.folded.WithLabelValues("broadcast", string(env.Type), outcome(changed, false)).Inc()
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading job %s after %s: %w", ev.Key(), env.Type, err)
	}
	push := changed || reflects(job, ev)
	h.folded.WithLabelValues("broadcast", string(env.Type), outcome(changed, push)).Inc()
	if !push {
		h.log.Debug("stale event, nothing to push", "job_id", job.ID, "ce_id", env.ID, "ce_type", env.Type)
		return nil
	}
	if err := h.push.Push(ctx, progress.FromJob(job)); err != nil {
		return fmt.Errorf("pushing job %s: %w", job.ID, err)
	}
	return nil
}

// Folder is the eventbus.Handler of the group every replica shares: it folds each event and
// pushes nothing (each replica's Handle pushes, having read the same event itself). Its
// committed offsets are what folds the events produced while no hub was running.
//
// It holds each event until delay after its ce_time (at most delay), so that in the usual case
// the replicas' Handle folds first and this fold finds nothing to change. Folding ahead of
// them would make their Handle see a row that moved past an event and skip its push as stale:
// clients would miss intermediate progress.
func (h *Handler) Folder(delay time.Duration) eventbus.Handler {
	return func(ctx context.Context, env events.Envelope) error {
		if wait := min(time.Until(env.Time.Add(delay)), delay); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		return h.fold(ctx, env)
	}
}

func (h *Handler) fold(ctx context.Context, env events.Envelope) error {
	ev, err := events.DecodeAny(env)
	if err != nil {
		h.folded.WithLabelValues("group", string(env.Type), "undecodable").Inc()
		return eventbus.Permanent(fmt.Errorf("decoding event %s: %w", env.ID, err))
	}
	changed, err := h.store.Apply(ctx, ev)
	if err != nil {
		return fmt.Errorf("folding %s of job %s: %w", env.Type, ev.Key(), err)
	}
	h.folded.WithLabelValues("group", string(env.Type), outcome(changed, false)).Inc()
	return nil
}

func outcome(changed, pushed bool) string {
	switch {
	case changed:
		return "changed"
	case pushed:
		return "pushed_unchanged"
	}
	return "unchanged"
}

// reflects reports whether job is in the state ev leads to, so an event that someone else
// already folded is still pushed, while a superseded one is not.
func reflects(job jobstore.Job, ev events.Event) bool {
	switch e := ev.(type) {
	case events.ExportRequested:
		return job.Status == jobstore.StatusQueued
	case events.ExportStarted:
		return job.Status == jobstore.StatusRunning && job.RowsDone == 0
	case events.ExportProgress:
		return job.Status == jobstore.StatusRunning && job.RowsDone == e.RowsDone
	case events.ExportCompleted:
		return job.Status == jobstore.StatusCompleted
	case events.ExportFailed:
		return job.Status == jobstore.StatusFailed
	case events.ExportCancelled:
		return job.Status == jobstore.StatusCancelled
	}
	return false
}
