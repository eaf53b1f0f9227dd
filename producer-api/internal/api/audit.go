package api

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// Auditor queues audit events for the outbox relay; *jobstore.Store implements it.
type Auditor interface {
	Audit(ctx context.Context, evs ...events.Event) error
}

// audit records an access of the request's caller (CONTRACT §7) through the outbox, so it
// reaches the audit sink like every job event. A failure to queue it is logged and does not
// fail the request: the act it records already happened.
func (a *api) audit(r *http.Request, ev events.Accessed) {
	if a.Auditor == nil {
		return
	}
	if p, ok := auth.FromContext(r.Context()); ok && ev.ActorID == "" {
		ev.ActorID, ev.ActorName, ev.Manager = p.Subject, p.Name, p.Manager()
	}
	if ev.ResourceID == "" {
		ev.ResourceID, ev.ResourceType = r.URL.Path, "api"
	}
	ev.ID, ev.At = uuid.NewString(), a.Now().UTC()
	ev.ClientIP, ev.UserAgent = clientIP(r), clip(r.UserAgent(), 256)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := a.Auditor.Audit(ctx, ev); err != nil {
		a.Log.Error("queueing an audit event failed", "action", ev.Action, "resource_id", ev.ResourceID, "err", err)
		return
	}
	a.Notify()
}

// jobAccess is the audit event of an act on job.
func jobAccess(action string, job jobstore.Job) events.Accessed {
	return events.Accessed{Action: action, ResourceType: "job", ResourceID: job.ID, Owner: job.RequestedBy,
		Entity: job.Entity, Format: job.Format, Fields: job.Fields, Filters: job.Filters}
}

// clientIP is the address the request came from (a proxy's, behind one).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func ptr[T any](v T) *T { return &v }
