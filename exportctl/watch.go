package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// wsIdle is how long the WebSocket may stay silent (no message, no ping) before it counts as
// broken; the hub pings far more often.
const wsIdle = 75 * time.Second

// watch follows job id until it ends and returns its final state, calling show with every
// state seen. It follows the WebSocket and falls back to polling the progress endpoint if the
// WebSocket cannot be used. The final state of a completed job carries its file.
func (a *app) watch(ctx context.Context, c *client, id string, show func(job)) (job, error) {
	j, err := a.watchWS(ctx, c, id, show)
	if err == nil || ctx.Err() != nil {
		return j, err
	}
	var ae *apiError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			return j, err // polling would be refused the same way
		}
	}
	fmt.Fprintf(a.stderr, "exportctl: progress WebSocket unavailable (%v); polling\n", err)
	return a.poll(ctx, c, id, show)
}

// wsURL is the progress WebSocket of the API at base.
func wsURL(base string) string {
	u := base + basePath + "/ws"
	switch {
	case strings.HasPrefix(u, "https://"):
		return "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		return "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u
}

func (a *app) watchWS(ctx context.Context, c *client, id string, show func(job)) (job, error) {
	dialer := websocket.Dialer{HandshakeTimeout: 15 * time.Second, Proxy: http.ProxyFromEnvironment}
	// The token goes in the header, which proxies do not log; ?access_token= is for browsers.
	h := http.Header{"Authorization": {"Bearer " + c.token}}
	conn, resp, err := dialer.DialContext(ctx, wsURL(c.base), h)
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			defer resp.Body.Close()
			return job{}, fmt.Errorf("dialing: %w", c.decodeError(resp))
		}
		return job{}, fmt.Errorf("dialing: %w", err)
	}
	defer conn.Close()
	// Reading blocks; closing the connection is what unblocks it when ctx ends.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	conn.SetReadLimit(1 << 20)
	alive := func() error { return conn.SetReadDeadline(time.Now().Add(wsIdle)) }
	_ = alive()
	conn.SetPingHandler(func(data string) error {
		_ = alive()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := conn.WriteJSON(map[string]any{"type": "subscribe", "task_ids": []string{id}}); err != nil {
		return job{}, fmt.Errorf("subscribing: %w", err)
	}
	var last job
	for {
		_, data, err := conn.ReadMessage()
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
		if err != nil {
			return last, fmt.Errorf("reading: %w", err)
		}
		_ = alive()
		var m struct {
			Type  string          `json:"type"`
			Job   json.RawMessage `json:"job"`
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
				TaskID  string `json:"task_id"`
			} `json:"error"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return last, fmt.Errorf("decoding a message: %w", err)
		}
		var j job
		switch m.Type {
		case "snapshot":
			err = json.Unmarshal(m.Job, &j)
		case "progress", statusCompleted, statusFailed, statusCancelled, statusExpired:
			err = json.Unmarshal(data, &j)
		case "error":
			if m.Error == nil {
				return last, errors.New("the hub answered an error")
			}
			if m.Error.Code == "not_found" {
				return last, &apiError{Status: http.StatusNotFound, Code: m.Error.Code, Message: m.Error.Message}
			}
			return last, fmt.Errorf("the hub answered: %s (%s)", m.Error.Message, m.Error.Code)
		default: // pong, unsubscribed, and whatever a newer hub sends
			continue
		}
		if err != nil {
			return last, fmt.Errorf("decoding a %s message: %w", m.Type, err)
		}
		if j.id() != id || (!last.UpdatedAt.IsZero() && j.UpdatedAt.Before(last.UpdatedAt)) {
			continue // another job, or older than what was shown (updates may cross)
		}
		last = j
		show(j)
		if terminal(j.Status) {
			if j.Status == statusCompleted && j.File == nil {
				return c.getJob(ctx, id)
			}
			return j, nil
		}
	}
}

// pollOutage is how long polling goes on through network errors (an API restarting) before
// giving up.
const pollOutage = 30 * time.Second

// poll follows the job through GET /progress/{id} until it ends.
func (a *app) poll(ctx context.Context, c *client, id string, show func(job)) (job, error) {
	t := time.NewTicker(a.pollEvery)
	defer t.Stop()
	var failingSince time.Time
	for {
		var j job
		err := c.do(ctx, http.MethodGet, basePath+"/progress/"+url.PathEscape(id), nil, &j)
		var ae *apiError
		switch {
		case ctx.Err() != nil:
			return j, ctx.Err()
		case err == nil:
			failingSince = time.Time{}
			show(j)
			if terminal(j.Status) {
				if j.Status == statusCompleted {
					return c.getJob(ctx, id) // the progress answer has no file
				}
				return j, nil
			}
		case errors.As(err, &ae) && ae.Status < 500:
			return j, err // an answer that asking again will not change
		case failingSince.IsZero():
			failingSince = a.now()
		case a.now().Sub(failingSince) > pollOutage:
			return j, fmt.Errorf("following export %s: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-t.C:
		}
	}
}
