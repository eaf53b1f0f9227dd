package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gorilla/websocket"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// closeWait bounds the close frame written when the hub ends a connection.
const closeWait = time.Second

// conn is one connection's reader side: the state only its reader goroutine touches.
type conn struct {
	s    *Server
	ws   *websocket.Conn
	c    *client
	log  *slog.Logger
	subs map[string]struct{} // task ids subscribed, to enforce MaxSubscribed
}

// serve registers the connection with the hub, starts its writer and reads until the client
// leaves or the hub closes it. It returns once both goroutines have ended.
func (s *Server) serve(ctx context.Context, ws *websocket.Conn, p auth.Principal) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := newClient(s.nextID.Add(1), p.Subject, s.opts.SendBuffer)
	log := s.log.With("client_id", c.id, "sub", p.Subject)
	if !send(s.hub, s.hub.register, c) {
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(closeWait))
		ws.Close()
		return
	}
	log.Debug("client connected")
	written := make(chan struct{})
	go func() {
		defer close(written)
		s.write(ws, c, log)
	}()
	cn := &conn{s: s, ws: ws, c: c, log: log, subs: map[string]struct{}{}}
	cn.read(ctx)
	send(s.hub, s.hub.unregister, c)
	<-written
	log.Debug("client disconnected")
}

// write is the connection's only writer of data frames: queued messages and pings. It returns
// when the hub closes the send channel (after a close frame) or a write fails, closing the
// connection, which ends the reader.
func (s *Server) write(ws *websocket.Conn, c *client, log *slog.Logger) {
	ping := time.NewTicker(s.opts.PingInterval)
	defer func() {
		ping.Stop()
		ws.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			if !ok {
				_ = ws.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(c.closeCode, c.closeText), time.Now().Add(closeWait))
				return
			}
			if err := ws.SetWriteDeadline(time.Now().Add(s.opts.WriteWait)); err != nil {
				return
			}
			if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				log.Debug("write failed", "err", err)
				return
			}
		case <-ping.C:
			if err := ws.SetWriteDeadline(time.Now().Add(s.opts.WriteWait)); err != nil {
				return
			}
			if err := ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				log.Debug("ping failed", "err", err)
				return
			}
		}
	}
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
		if !cn.handle(ctx, data) {
			return
		}
	}
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
	done := completeReq{c: cn.c}
	jobs, err := cn.list(ctx)
	if err != nil {
		cn.log.Warn("listing jobs for snapshot", "err", err)
		done.msgs = append(done.msgs, errorMsg(codeUnavailable, "could not list jobs; subscribe again", "", ""))
		return send(hub, hub.complete, done)
	}
	done.snapshots = make(map[string]time.Time, len(jobs))
	for _, job := range jobs {
		done.msgs = append(done.msgs, encode(snapshotMessage{Type: typeSnapshot, Job: job}))
		done.snapshots[job.ID] = job.UpdatedAt
	}
	done.all = true
	return send(hub, hub.complete, done)
}

func (cn *conn) get(ctx context.Context, id string) (jobstore.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, cn.s.opts.ReadTimeout)
	defer cancel()
	return cn.s.jobs.Get(ctx, id)
}

func (cn *conn) list(ctx context.Context) ([]jobstore.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, cn.s.opts.ReadTimeout)
	defer cancel()
	jobs, _, err := cn.s.jobs.List(ctx, jobstore.ListFilter{Limit: cn.s.opts.AllSnapshots})
	return jobs, err
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
