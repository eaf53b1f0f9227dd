package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// closeWait bounds the close frame written when the hub ends a connection.
const closeWait = time.Second

// conn is one connection's reader side: the state only its reader goroutine touches.
type conn struct {
	s    *Server
	ws   *websocket.Conn
	c    *client
	p    auth.Principal
	who  visitor
	log  *slog.Logger
	subs map[string]struct{} // task ids subscribed, to enforce MaxSubscribed
}

// serve registers the connection with the hub and reads until the client leaves or the hub
// closes it. Writing is the outbox's: a writer goroutine runs only while messages are queued.
// serve returns once the hub has closed the connection and its close frame is written (or the
// connection broke).
func (s *Server) serve(ctx context.Context, ws *websocket.Conn, p auth.Principal, who visitor) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := newClient(s.nextID.Add(1), p, s.opts.SendBuffer)
	log := s.log.With("client_id", c.id, "sub", p.Subject)
	c.out.run = func() { s.flush(ws, c.out, log) }
	if !send(s.hub, s.hub.register, c) {
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(closeWait))
		ws.Close()
		return
	}
	log.Debug("client connected")
	ping := startPinger(s.opts.PingInterval, c.out)
	// The token's expiry ends the connection (close code 4401): a connection is no longer-lived
	// than the right to open it.
	if !p.Expires.IsZero() {
		expiry := time.AfterFunc(time.Until(p.Expires), func() {
			log.Info("closing connection: token expired", "expired_at", p.Expires)
			send(s.hub, s.hub.evict, evictReq{c: c, code: CloseTokenExpired, text: "token expired"})
		})
		defer expiry.Stop()
	}
	cn := &conn{s: s, ws: ws, c: c, p: p, who: who, log: log, subs: map[string]struct{}{}}
	cn.read(ctx)
	ping.stop()
	send(s.hub, s.hub.unregister, c)
	<-c.out.done
	ws.Close()
	log.Debug("client disconnected")
}

// pinger queues a ping every interval: a timer, not a goroutine, per connection.
type pinger struct {
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func startPinger(every time.Duration, out *outbox) *pinger {
	p := &pinger{}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t = time.AfterFunc(every, func() {
		out.ping()
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.stopped {
			p.t.Reset(every)
		}
	})
	return p
}

func (p *pinger) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.t.Stop()
}

// flush is the connection's writer while its outbox has messages: the only goroutine writing
// data frames and pings at a time. It ends when the queue is empty, after the close frame once
// the hub closed the outbox, or when a write fails (closing the connection, which ends the
// reader).
func (s *Server) flush(ws *websocket.Conn, out *outbox, log *slog.Logger) {
	var batch [][]byte
	for {
		var closed, more bool
		batch, closed, more = out.next(batch)
		if !more {
			return
		}
		for _, msg := range batch {
			if err := s.writeOne(ws, msg); err != nil {
				log.Debug("write failed", "err", err)
				out.fail()
				ws.Close()
				return
			}
		}
		if closed {
			code, text := out.closeFrame()
			_ = ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(code, text), time.Now().Add(closeWait))
			out.finish()
			ws.Close()
			return
		}
	}
}

// writeOne writes one queued message: a text frame, or a ping for nil.
func (s *Server) writeOne(ws *websocket.Conn, msg []byte) error {
	if err := ws.SetWriteDeadline(time.Now().Add(s.opts.WriteWait)); err != nil {
		return err
	}
	if msg == nil {
		return ws.WriteMessage(websocket.PingMessage, nil)
	}
	return ws.WriteMessage(websocket.TextMessage, msg)
}

// read handles client messages until the connection fails or closes. Any message, and any
// pong, proves the client alive and extends the read deadline.
func (cn *conn) read(ctx context.Context) {
	ws, opts := cn.ws, cn.s.opts
	ws.SetReadLimit(opts.ReadLimit)
	alive := func() error { return ws.SetReadDeadline(time.Now().Add(opts.PongWait)) }
	if alive() != nil {
		return
	}
	ws.SetPongHandler(func(string) error { return alive() })
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			cn.log.Debug("read ended", "err", err) // the client left, timed out, or the writer closed
			return
		}
		if alive() != nil {
			return
		}
		if !cn.handleAside(ctx, data) {
			return
		}
	}
}

// handleAside runs handle on a goroutine of its own and waits for it: a subscription's
// database read and encoding grow a stack to tens of KiB, and the reader's stack, parked for
// the connection's whole life, would keep that size. Messages stay handled in order.
func (cn *conn) handleAside(ctx context.Context, data []byte) bool {
	res := make(chan bool, 1)
	go func() { res <- cn.handle(ctx, data) }()
	return <-res
}

// handle answers one client message; false when the hub has stopped.
func (cn *conn) handle(ctx context.Context, data []byte) bool {
	var m clientMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return cn.reply(errorMsg(codeInvalidArgument, "message is not a JSON object of the protocol: "+err.Error(), "", ""))
	}
	switch m.Type {
	case typeSubscribe, typeUnsubscribe:
	case typePing:
		return cn.reply(encode(pongMessage{Type: typePong}))
	case "":
		return cn.reply(errorMsg(codeInvalidArgument, "message has no type", "", "type"))
	default:
		return cn.reply(errorMsg(codeInvalidArgument, fmt.Sprintf("unknown message type %q", m.Type), "", "type"))
	}
	ids := dedupe(m.TaskIDs)
	switch {
	case !m.All && len(ids) == 0:
		return cn.reply(errorMsg(codeInvalidArgument, m.Type+" needs task_ids or \"all\": true", "", "task_ids"))
	case len(ids) > cn.s.opts.MaxIDs:
		return cn.reply(errorMsg(codeInvalidArgument, fmt.Sprintf("at most %d task_ids per message", cn.s.opts.MaxIDs), "", "task_ids"))
	}
	if m.Type == typeUnsubscribe {
		if m.All {
			clear(cn.subs)
		}
		for _, id := range ids {
			delete(cn.subs, id)
		}
		return send(cn.s.hub, cn.s.hub.unsubscribe, unsubscribeReq{c: cn.c, ids: ids, all: m.All})
	}
	if m.All {
		if !cn.subscribeAll(ctx) {
			return false
		}
	}
	if len(ids) > 0 {
		return cn.subscribe(ctx, ids)
	}
	return true
}

func (cn *conn) reply(msg []byte) bool {
	return send(cn.s.hub, cn.s.hub.reply, replyReq{c: cn.c, msg: msg})
}

// subscribe sends a snapshot (or an error) for each id and makes the found ones live.
func (cn *conn) subscribe(ctx context.Context, ids []string) bool {
	hub := cn.s.hub
	if !hub.beginSubscription(cn.c, ids, false) {
		return false
	}
	done := completeReq{c: cn.c, snapshots: make(map[string]time.Time, len(ids))}
	for _, id := range ids {
		if _, ok := cn.subs[id]; !ok && len(cn.subs) >= cn.s.opts.MaxSubscribed {
			done.msgs = append(done.msgs, errorMsg(codeResourceExhausted,
				fmt.Sprintf("a connection follows at most %d jobs", cn.s.opts.MaxSubscribed), id, "task_ids"))
			continue
		}
		job, err := cn.get(ctx, id)
		if err == nil && !cn.p.Reaches(job.RequestedBy) {
			// Another user's job is answered as one that does not exist.
			cn.log.Warn("subscription to another user's job refused", "job_id", id)
			cn.s.audit(cn.who, cn.p, events.Accessed{Action: events.ActionDenied, ResourceType: "job", ResourceID: id,
				Owner: job.RequestedBy, Status: http.StatusNotFound, Reason: "not_owner"})
			err = jobstore.ErrNotFound
		}
		switch {
		case errors.Is(err, jobstore.ErrNotFound):
			done.msgs = append(done.msgs, errorMsg(codeNotFound, "no export job "+id, id, "task_ids"))
		case err != nil:
			cn.log.Warn("reading job for snapshot", "job_id", id, "err", err)
			done.msgs = append(done.msgs, errorMsg(codeUnavailable, "could not read job "+id+"; subscribe again", id, ""))
		default:
			done.msgs = append(done.msgs, encode(snapshotMessage{Type: typeSnapshot, Job: job}))
			done.snapshots[id] = job.UpdatedAt
			done.ids = append(done.ids, id)
			cn.subs[id] = struct{}{}
		}
	}
	return send(hub, hub.complete, done)
}

// subscribeAll sends snapshots of the most recent jobs and makes every job live.
func (cn *conn) subscribeAll(ctx context.Context) bool {
	hub := cn.s.hub
	if !hub.beginSubscription(cn.c, nil, true) {
		return false
	}
	owner := cn.p.Subject // without MANAGE_EXPORTS, one's own jobs
	if cn.p.Manager() {
		owner = ""
	}
	f := cn.s.recentJobs(ctx, time.Now(), owner)
	done := completeReq{c: cn.c}
	if f.err != nil {
		done.msgs = [][]byte{errorMsg(codeUnavailable, "could not list jobs; subscribe again", "", "")}
		return send(hub, hub.complete, done)
	}
	done.msgs, done.snapshots, done.all = f.msgs, f.snapshots, true
	return send(hub, hub.complete, done)
}

// listing is one read of the most recent jobs (of one owner, or of everyone for managers),
// encoded once, shared by every {"all": true} subscription of that scope that began before
// the read did. A storm of reconnecting clients (a hub restart, 10,000 browsers) costs two
// queries at a time per scope, not one per client: a subscription that began after the read
// in flight started joins the next one, which starts when that read ends. Sharing is safe
// because the hub held each sharer's updates from before the read began, exactly as with a
// read of its own. msgs and snapshots are read-only once done is closed.
type listing struct {
	started   time.Time // set (under listMu) when the read starts
	sharers   int       // subscriptions served by it (under listMu)
	done      chan struct{}
	msgs      [][]byte
	snapshots map[string]time.Time
	err       error
}

// listings is one scope's reads: the one running, and the next, which the subscriptions that
// began after the running one started wait for.
type listings struct{ running, next *listing }

// recentJobs returns a listing of owner's jobs ("": everyone's) that started at or after
// begun: the one running if it did, else the next one.
func (s *Server) recentJobs(ctx context.Context, begun time.Time, owner string) *listing {
	s.listMu.Lock()
	l := s.listings[owner]
	if l == nil {
		l = &listings{}
		s.listings[owner] = l
	}
	var f *listing
	switch {
	case l.running == nil:
		f = &listing{started: time.Now(), done: make(chan struct{})}
		l.running = f
		go s.runListings(f, owner)
	case !l.running.started.Before(begun):
		f = l.running
	case l.next != nil:
		f = l.next
	default:
		f = &listing{done: make(chan struct{})}
		l.next = f
	}
	f.sharers++
	s.listMu.Unlock()
	select {
	case <-f.done:
		return f
	case <-ctx.Done():
		return &listing{err: ctx.Err()}
	}
}

// runListings reads f, then each next listing of owner's scope queued meanwhile, until none is.
func (s *Server) runListings(f *listing, owner string) {
	for f != nil {
		s.read(f, owner)
		close(f.done)
		s.listMu.Lock()
		l := s.listings[owner]
		f, l.next = l.next, nil
		l.running = f
		if f != nil {
			f.started = time.Now()
		} else {
			delete(s.listings, owner) // one scope per user must not pile up
		}
		s.listMu.Unlock()
	}
}

func (s *Server) read(f *listing, owner string) {
	// No client's context: every sharer waits for this read.
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ReadTimeout)
	defer cancel()
	jobs, _, err := s.jobs.List(ctx, jobstore.ListFilter{RequestedBy: owner, Limit: s.opts.AllSnapshots})
	if err != nil {
		s.log.Warn("listing jobs for snapshot", "err", err)
		f.err = err
		return
	}
	f.msgs = make([][]byte, 0, len(jobs))
	f.snapshots = make(map[string]time.Time, len(jobs))
	for _, job := range jobs {
		f.msgs = append(f.msgs, encode(snapshotMessage{Type: typeSnapshot, Job: job}))
		f.snapshots[job.ID] = job.UpdatedAt
	}
}

func (cn *conn) get(ctx context.Context, id string) (jobstore.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, cn.s.opts.ReadTimeout)
	defer cancel()
	return cn.s.jobs.Get(ctx, id)
}

// dedupe drops empty and repeated ids, keeping the first occurrence's order.
func dedupe(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if _, ok := seen[id]; ok || id == "" {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out
}
