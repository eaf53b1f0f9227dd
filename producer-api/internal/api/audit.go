package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/server"
	"github.com/productsmanager/exportplatform/producer-api/internal/auditlog"
)

// Auditor queues audit events for the outbox relay; *jobstore.Store implements it.
type Auditor interface {
	Audit(ctx context.Context, evs ...events.Event) error
}

// access completes an audit event with the request's caller, client, a fresh id and the time.
func (a *api) access(r *http.Request, ev events.Accessed) events.Accessed {
	if p, ok := auth.FromContext(r.Context()); ok && ev.ActorID == "" {
		ev.ActorID, ev.ActorName, ev.Manager = p.Subject, p.Name, p.Manager()
	}
	if ev.ResourceID == "" {
		ev.ResourceID, ev.ResourceType = r.URL.Path, "api"
	}
	ev.ID, ev.At = uuid.NewString(), a.Now().UTC()
	ev.ClientIP, ev.UserAgent = a.Proxies.ClientIP(r), clip(r.UserAgent(), 256)
	return ev
}

// refused audits a refusal (401, 403, another's resource, 429) of the request: one by one up
// to a bound per client address and window, then summarised (pkg/refusals), so that a flood
// of bad requests cannot flood the audit.
func (a *api) refused(r *http.Request, ev events.Accessed) {
	if a.Refusals == nil {
		a.audit(r, ev)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if a.Refusals.Refused(ctx, a.access(r, ev)) {
		a.Notify()
	}
}

// changeAudit is the audit event of a change the request makes (action), for the repository
// to write in the change's own transaction; nil when the API audits nothing.
func (a *api) changeAudit(r *http.Request, action string) *events.Accessed {
	if a.Auditor == nil {
		return nil
	}
	return ptr(a.access(r, events.Accessed{Action: action}))
}

// audit records an access of the request's caller (CONTRACT §7) through the outbox, so it
// reaches the audit sink like every job event. A failure to queue it is logged and does not
// fail the request: the act it records already happened. An act that changes stored state
// writes its audit event in its own transaction instead (a job's delete: job.Delete.Audit).
func (a *api) audit(r *http.Request, ev events.Accessed) {
	if a.Auditor == nil {
		return
	}
	ev = a.access(r, ev)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := a.Auditor.Audit(ctx, ev); err != nil {
		a.Log.Error("queueing an audit event failed", "action", ev.Action, "resource_id", ev.ResourceID, "err", err)
		return
	}
	a.Notify()
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func ptr[T any](v T) *T { return &v }

// listAudit answers GET /audit (MANAGE_EXPORTS): audit rows newest first, filtered by actor,
// action, resource, risk and occurred_at range (since, until: RFC 3339, as CONTRACT §4 names
// them; from and to, their first names, are still read), paged by cursor.
func (a *api) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !knownParams(w, q, "actor", "action", "resource", "risk", "since", "until", "from", "to", "limit", "cursor") {
		return
	}
	f := auditlog.Filter{Actor: q.Get("actor"), Action: q.Get("action"), Resource: q.Get("resource"),
		Risk: q.Get("risk"), Cursor: q.Get("cursor")}
	switch f.Risk {
	case "", "low", "medium", "high":
	default:
		server.WriteError(w, http.StatusBadRequest, "invalid_argument", fmt.Sprintf("unknown risk %q (one of low, medium, high)", f.Risk), "risk")
		return
	}
	for name, alias := range map[string]string{"since": "from", "until": "to"} {
		if q.Has(name) && q.Has(alias) {
			server.WriteError(w, http.StatusBadRequest, "invalid_argument",
				fmt.Sprintf("%s and %s are the same bound: give one", name, alias), alias)
			return
		}
	}
	var since, until time.Time
	if !timeParams(w, q, map[string]*time.Time{"since": &since, "until": &until, "from": &f.From, "to": &f.To}) {
		return
	}
	if q.Has("since") {
		f.From = since
	}
	if q.Has("until") {
		f.To = until
	}
	limit, ok := intParam(w, "limit", q.Get("limit"), 50, 500)
	if !ok {
		return
	}
	f.Limit = limit
	if a.AuditLog == nil {
		server.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the audit log is not configured on this server", "")
		return
	}
	rows, next, err := a.AuditLog.List(r.Context(), f)
	if errors.Is(err, auditlog.ErrBadCursor) {
		server.WriteError(w, http.StatusBadRequest, "invalid_argument", "cursor is not one this API returned", "cursor")
		return
	}
	if err != nil {
		a.internal(w, r, "reading the audit log", err)
		return
	}
	server.WriteJSON(w, http.StatusOK, map[string]any{"items": rows, "next_cursor": next})
}
