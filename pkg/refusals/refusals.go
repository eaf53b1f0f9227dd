// Package refusals audits refused requests (401, 403, another user's resource, 429) without
// letting a flood of them flood the audit. Each refusal would otherwise be an outbox row, a
// Kafka record and an audit row: a client sending bad tokens as fast as it can would turn a
// cheap refusal into three writes. Per client address and window, the first Limit refusals
// are audited one by one; the others are counted, and when the window ends one summary event
// says how many there were (events.Accessed.Suppressed). Nothing goes unrecorded, and the
// audit of one client costs at most Limit+1 events a window.
//
// The counts live in the process: each replica bounds its own share. A replica that stops
// flushes its open windows first (Run); one killed loses at most a window of counts, which
// its log and the refusal metrics still show.
package refusals

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/productsmanager/exportplatform/pkg/events"
)

// Auditor queues audit events; *jobstore.Store implements it.
type Auditor interface {
	Audit(ctx context.Context, evs ...events.Event) error
}

// Defaults of Options.
const (
	DefaultLimit      = 20
	DefaultWindow     = time.Minute
	DefaultMaxClients = 100_000
)

// Options tune a Gate; zero values take the defaults.
type Options struct {
	Limit      int           // refusals of one client audited one by one per window
	Window     time.Duration // the counting window
	MaxClients int           // client addresses counted at once; refusals of others share one tally
	Now        func() time.Time
}

// Overflow is the client address of the tally shared by clients beyond MaxClients.
const Overflow = "*"

// Gate decides which refusals are audited one by one and summarises the others.
type Gate struct {
	aud  Auditor
	log  *slog.Logger
	opts Options

	mu      sync.Mutex
	clients map[string]*tally
}

type tally struct {
	start      time.Time
	audited    int
	suppressed int64
	last       events.Accessed // the newest suppressed refusal: its actor and reason go in the summary
}

// New builds a gate writing to aud.
func New(aud Auditor, log *slog.Logger, opts Options) *Gate {
	if opts.Limit <= 0 {
		opts.Limit = DefaultLimit
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = DefaultMaxClients
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Gate{aud: aud, log: log, opts: opts, clients: map[string]*tally{}}
}

// Refused records the refusal ev (its ClientIP set): audited now when its client has audited
// fewer than Limit refusals this window, counted for the window's summary otherwise. It reports
// whether it was audited now. A failure to queue the event is logged: the refusal happened.
func (g *Gate) Refused(ctx context.Context, ev events.Accessed) bool {
	if !g.admit(ev) {
		return false
	}
	if err := g.aud.Audit(ctx, ev); err != nil {
		g.log.Error("queueing an audit event failed", "action", ev.Action, "resource_id", ev.ResourceID, "err", err)
	}
	return true
}

func (g *Gate) admit(ev events.Accessed) bool {
	now := g.opts.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	client := ev.ClientIP
	t, ok := g.clients[client]
	if !ok {
		if len(g.clients) >= g.opts.MaxClients {
			client = Overflow
			t = g.clients[client]
		}
		if t == nil {
			t = &tally{start: now}
			g.clients[client] = t
		}
	}
	if t.audited < g.opts.Limit && client != Overflow {
		t.audited++
		return true
	}
	t.suppressed++
	t.last = ev
	return false
}

// Flush audits the summary of every window that ended by now (every window when all is set)
// and forgets those clients. It returns how many summaries it queued.
func (g *Gate) Flush(ctx context.Context, all bool) int {
	now := g.opts.Now()
	var out []events.Event
	g.mu.Lock()
	for client, t := range g.clients {
		if !all && now.Sub(t.start) < g.opts.Window {
			continue
		}
		delete(g.clients, client)
		if t.suppressed == 0 {
			continue
		}
		out = append(out, events.Accessed{
			ID: uuid.NewString(), Action: events.ActionDenied, ResourceType: "api", ResourceID: "refusals:" + client,
			ActorID: t.last.ActorID, ActorName: t.last.ActorName, Status: t.last.Status, Reason: t.last.Reason,
			ClientIP: t.last.ClientIP, UserAgent: t.last.UserAgent, Suppressed: t.suppressed, At: now.UTC(),
		})
	}
	g.mu.Unlock()
	if len(out) == 0 {
		return 0
	}
	if err := g.aud.Audit(ctx, out...); err != nil {
		g.log.Error("queueing refusal summaries failed", "summaries", len(out), "err", err)
		return 0
	}
	g.log.Warn("refusals summarised", "clients", len(out))
	return len(out)
}

// Run flushes the ended windows every tenth of a window until ctx ends, then every open one.
func (g *Gate) Run(ctx context.Context) error {
	t := time.NewTicker(g.opts.Window / 10)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			g.Flush(flush, true)
			return nil
		case <-t.C:
			g.Flush(ctx, false)
		}
	}
}
