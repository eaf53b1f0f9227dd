package ws

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// client is one connection as the hub sees it. Its outbox is filled by the hub goroutine only
// and drained by the connection's writer goroutine. Every other field but id and subject is
// owned by the hub goroutine.
type client struct {
	id      uint64
	subject string
	manager bool // MANAGE_EXPORTS: {"all": true} covers every user's jobs, not only its own
	base    int  // SendBuffer: the messages queued beyond which a client is too slow for pushes
	out     *outbox

	all     bool
	ids     map[string]struct{}
	pending *pending
}

func newClient(id uint64, p auth.Principal, buffer int) *client {
	return &client{id: id, subject: p.Subject, manager: p.Manager(), base: buffer, out: newOutbox(buffer),
		ids: map[string]struct{}{}}
}

// sees reports whether the job u belongs in c's {"all": true} (a job subscribed by id was
// checked when subscribed).
func (c *client) sees(u job.Progress) bool { return c.manager || u.Owner == c.subject }

func (c *client) subscribed(u job.Progress) bool {
	if c.all && c.sees(u) {
		return true
	}
	_, ok := c.ids[u.JobID]
	return ok
}

// pending is a subscription whose snapshots are being read. Updates for it are held back
// until the snapshots are queued, so a client never sees a snapshot older than an update it
// already received, and never misses an update that landed while the snapshot was read.
type pending struct {
	all bool
	ids map[string]struct{}
	buf []heldUpdate
}

func (p *pending) covers(c *client, u job.Progress) bool {
	if p == nil {
		return false
	}
	if p.all && c.sees(u) {
		return true
	}
	_, ok := p.ids[u.JobID]
	return ok
}

type heldUpdate struct {
	u   job.Progress
	msg []byte
}

// beginReq starts a pending subscription; the hub closes ready once updates for it are held,
// so the snapshot read that follows cannot miss one.
type beginReq struct {
	c     *client
	ids   []string
	all   bool
	ready chan struct{}
}

// completeReq ends a pending subscription: msgs (snapshots and errors, in order) are queued,
// held updates newer than their job's snapshot follow, then ids (or all) become live.
type completeReq struct {
	c         *client
	msgs      [][]byte
	snapshots map[string]time.Time // job id → updated_at of the snapshot sent
	ids       []string
	all       bool
}

type unsubscribeReq struct {
	c   *client
	ids []string
	all bool
}

// evictReq ends a client's connection with a close code (its token expired).
type evictReq struct {
	c    *client
	code int
	text string
}

// CloseTokenExpired is the close code of a connection whose token expired: the client gets a
// fresh token and reconnects.
const CloseTokenExpired = 4401

type replyReq struct {
	c   *client
	msg []byte
}

// Hub owns every subscription. One goroutine (Run) changes the maps; connections and the
// Kafka handler talk to it through channels. It never waits for a client: a client whose send
// buffer is full is dropped.
type Hub struct {
	log *slog.Logger
	m   *Metrics

	register    chan *client
	unregister  chan *client
	begin       chan beginReq
	complete    chan completeReq
	unsubscribe chan unsubscribeReq
	reply       chan replyReq
	evict       chan evictReq
	updates     chan queuedUpdate

	shutdownOnce sync.Once
	shutdown     chan struct{}
	done         chan struct{}

	// Owned by Run.
	clients  map[*client]struct{}
	all      map[*client]struct{}
	byJob    map[string]map[*client]struct{}
	pendings map[*client]struct{}
	closing  bool
}

// NewHub builds a hub; Run must be started for it to do anything.
func NewHub(log *slog.Logger, m *Metrics) *Hub {
	return &Hub{
		log:         log,
		m:           m,
		register:    make(chan *client),
		unregister:  make(chan *client),
		begin:       make(chan beginReq),
		complete:    make(chan completeReq),
		unsubscribe: make(chan unsubscribeReq),
		reply:       make(chan replyReq),
		evict:       make(chan evictReq),
		updates:     make(chan queuedUpdate, 64),
		shutdown:    make(chan struct{}),
		done:        make(chan struct{}),
		clients:     map[*client]struct{}{},
		all:         map[*client]struct{}{},
		byJob:       map[string]map[*client]struct{}{},
		pendings:    map[*client]struct{}{},
	}
}

// Run serves the hub until ctx is cancelled, then closes every client and discards the updates
// still queued (nobody is left to receive them), ending their spans.
func (h *Hub) Run(ctx context.Context) error {
	defer h.discardUpdates() // last: a Push that queues after this sees done closed
	defer close(h.done)
	defer h.closeAll(websocket.CloseGoingAway, "server shutting down")
	shutdown := h.shutdown
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-shutdown:
			shutdown = nil
			h.closing = true
			h.closeAll(websocket.CloseGoingAway, "server shutting down")
		case c := <-h.register:
			h.add(c)
		case c := <-h.unregister:
			h.remove(c, websocket.CloseNormalClosure, "")
		case r := <-h.begin:
			h.drainUpdates()
			h.holdUpdates(r)
		case r := <-h.complete:
			h.drainUpdates()
			h.completeSubscription(r)
		case r := <-h.unsubscribe:
			h.drainUpdates()
			h.unsubscribeClient(r)
		case r := <-h.reply:
			h.drainUpdates()
			if _, ok := h.clients[r.c]; ok {
				h.deliver(r.c, r.msg)
			}
		case r := <-h.evict:
			h.remove(r.c, r.code, r.text)
		case u := <-h.updates:
			h.broadcast(u)
		}
	}
}

// Shutdown closes every connection and refuses new ones, while Run keeps accepting updates.
// It does not wait; it suits http.Server.RegisterOnShutdown.
func (h *Hub) Shutdown() {
	h.shutdownOnce.Do(func() { close(h.shutdown) })
}

// queuedUpdate is a job's progress on its way to the clients, with its push span (nil:
// untraced).
type queuedUpdate struct {
	u    job.Progress
	span trace.Span
}

// Push hands an update to the hub. It returns nil once the hub has it, or when the hub has
// stopped (nobody is connected any more), and ctx's error if ctx ends first. With tracing on,
// the push is a "websocket push" span in the trace of ctx (the event's): from here until the
// update is queued to every client that sees it.
func (h *Hub) Push(ctx context.Context, u job.Progress) error {
	up := queuedUpdate{u: u}
	if telemetry.Enabled() {
		_, up.span = telemetry.Tracer("progress-hub").Start(ctx, "websocket push", trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(attribute.String("job_id", u.JobID), attribute.String("job.status", string(u.Status)),
				attribute.Int64("job.version", u.Version)))
	}
	select {
	case h.updates <- up:
		// Queued as the hub stopped (select picks at random among ready cases): its last
		// drain may be over already, so this one discards it.
		select {
		case <-h.done:
			h.discardUpdates()
		default:
		}
		return nil
	case <-h.done:
		up.end(0, 0)
		return nil
	case <-ctx.Done():
		up.end(0, 0)
		return ctx.Err()
	}
}

func (up queuedUpdate) end(delivered, held int) {
	if up.span == nil {
		return
	}
	up.span.SetAttributes(attribute.Int("websocket.clients_sent", delivered), attribute.Int("websocket.clients_held", held))
	up.span.End()
}

// discardUpdates ends the spans of the updates queued for a hub that stopped. It runs after
// done is closed, in Run and in any Push that queued meanwhile; each update is taken once.
func (h *Hub) discardUpdates() {
	for {
		select {
		case up := <-h.updates:
			up.end(0, 0)
		default:
			return
		}
	}
}

// beginSubscription asks the hub to hold updates for ids (or all) and waits until it does;
// false when the hub has stopped.
func (h *Hub) beginSubscription(c *client, ids []string, all bool) bool {
	r := beginReq{c: c, ids: ids, all: all, ready: make(chan struct{})}
	if !send(h, h.begin, r) {
		return false
	}
	select {
	case <-r.ready:
		return true
	case <-h.done:
		return false
	}
}

// send passes a request to the hub goroutine; false when the hub has stopped.
func send[T any](h *Hub, ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	case <-h.done:
		return false
	}
}

// drainUpdates broadcasts the updates already queued before a client's request is handled, so
// that every update whose Push returned first is handled first: select picks among ready
// channels at random, and an update left queued behind a snapshot could be older than it.
func (h *Hub) drainUpdates() {
	for n := len(h.updates); n > 0; n-- {
		h.broadcast(<-h.updates)
	}
}

func (h *Hub) add(c *client) {
	if h.closing {
		h.closeClient(c, websocket.CloseGoingAway, "server shutting down")
		return
	}
	h.clients[c] = struct{}{}
	h.m.clients.Inc()
}

// remove forgets c and closes its outbox, which ends its writer once the queue is written. Removing a client
// twice is harmless.
func (h *Hub) remove(c *client, code int, text string) {
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	delete(h.all, c)
	delete(h.pendings, c)
	for id := range c.ids {
		h.unindex(id, c)
	}
	h.m.clients.Dec()
	h.closeClient(c, code, text)
}

func (h *Hub) closeClient(c *client, code int, text string) {
	c.out.close(code, text)
}

func (h *Hub) closeAll(code int, text string) {
	for c := range h.clients {
		h.remove(c, code, text)
	}
}

func (h *Hub) unindex(id string, c *client) {
	if subs := h.byJob[id]; subs != nil {
		delete(subs, c)
		if len(subs) == 0 {
			delete(h.byJob, id)
		}
	}
}

// deliver queues msg for c without waiting; a full outbox drops the client. msg is shared by
// every client it goes to (encoded once per update), never changed after. It reports whether
// c is still connected.
func (h *Hub) deliver(c *client, msg []byte) bool {
	if c.out.push(msg) {
		return true
	}
	h.drop(c)
	return false
}

func (h *Hub) drop(c *client) {
	h.m.dropped.Inc()
	h.log.Warn("dropping slow client", "client_id", c.id, "sub", c.subject, "buffer", c.out.limit)
	h.remove(c, websocket.CloseTryAgainLater, "too slow: send buffer full")
}

func (h *Hub) holdUpdates(r beginReq) {
	defer close(r.ready)
	if _, ok := h.clients[r.c]; !ok {
		return
	}
	p := &pending{all: r.all, ids: make(map[string]struct{}, len(r.ids))}
	for _, id := range r.ids {
		p.ids[id] = struct{}{}
	}
	r.c.pending = p
	h.pendings[r.c] = struct{}{}
}

func (h *Hub) completeSubscription(r completeReq) {
	c := r.c
	if _, ok := h.clients[c]; !ok {
		return
	}
	held := c.pending
	c.pending = nil
	delete(h.pendings, c)
	// The snapshots answer the client's own request: its buffer holds them besides the
	// SendBuffer pushes, and keeps room for one snapshot per job it follows (bounded by
	// MaxSubscribed), so a client re-subscribing to 500 jobs is not dropped as slow for it.
	c.out.setLimit(c.base + len(c.ids) + len(r.ids) + len(r.msgs))
	for _, msg := range r.msgs {
		if !h.deliver(c, msg) {
			return
		}
	}
	if r.all && !c.all {
		c.all = true
		h.all[c] = struct{}{}
	}
	for _, id := range r.ids {
		if _, ok := c.ids[id]; ok {
			continue
		}
		c.ids[id] = struct{}{}
		subs := h.byJob[id]
		if subs == nil {
			subs = map[*client]struct{}{}
			h.byJob[id] = subs
		}
		subs[c] = struct{}{}
	}
	if held == nil {
		return
	}
	for _, hu := range held.buf {
		if at, ok := r.snapshots[hu.u.JobID]; ok && !hu.u.UpdatedAt.After(at) {
			continue // the snapshot already shows it
		}
		if !c.subscribed(hu.u) {
			continue
		}
		if !h.deliver(c, hu.msg) {
			return
		}
		h.m.pushed.Inc()
	}
}

func (h *Hub) unsubscribeClient(r unsubscribeReq) {
	c := r.c
	if _, ok := h.clients[c]; !ok {
		return
	}
	if r.all {
		c.all = false
		delete(h.all, c)
		for id := range c.ids {
			h.unindex(id, c)
		}
		clear(c.ids)
	}
	for _, id := range r.ids {
		delete(c.ids, id)
		h.unindex(id, c)
	}
	h.deliver(c, encode(unsubscribedMessage{Type: typeUnsubscribed, TaskIDs: r.ids, All: r.all}))
}

func (h *Hub) broadcast(up queuedUpdate) {
	u := up.u
	msg := encode(u)
	var sent, held int
	defer func() { up.end(sent, held) }()
	for c := range h.pendings {
		if !c.pending.covers(c, u) {
			continue
		}
		if len(c.pending.buf) >= c.out.limit {
			h.drop(c)
			continue
		}
		c.pending.buf = append(c.pending.buf, heldUpdate{u: u, msg: msg})
		held++
	}
	for c := range h.all {
		if !c.sees(u) || c.pending.covers(c, u) {
			continue
		}
		if h.deliver(c, msg) {
			h.m.pushed.Inc()
			sent++
		}
	}
	for c := range h.byJob[u.JobID] {
		if c.all && c.sees(u) || c.pending.covers(c, u) {
			continue // delivered above, or held
		}
		if h.deliver(c, msg) {
			h.m.pushed.Inc()
			sent++
		}
	}
}

// encode marshals a message the hub built from known types; those cannot fail to encode.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Unreachable for the message types of this package; keep the connection useful anyway.
		b, _ = json.Marshal(errorMessage{Type: typeError, Error: errorBody{Code: "internal", Message: "encoding failed"}})
	}
	return b
}
