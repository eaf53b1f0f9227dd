package ws

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// FuzzClientMessage: whatever a client sends, the hub answers messages of the protocol (an
// error for anything it cannot take), never closes on it nor panics, and still answers a ping.
func FuzzClientMessage(f *testing.F) {
	for _, seed := range []string{
		`{"type":"subscribe","task_ids":["` + jobA + `"]}`, `{"type":"subscribe","all":true}`,
		`{"type":"unsubscribe","all":true}`, `{"type":"ping"}`, `{"type":"subscribe","task_ids":[]}`,
		`{"type":"subscribe","task_ids":["../../etc","", "` + jobA + `","` + jobA + `"]}`, `{"type":7}`,
		`[]`, `null`, `{"type":"subscribe","task_ids":"x"}`, "\xff\xfe", `{"type":"subscribe","all":"yes"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := newEnv(t, newFakeJobs(runningJob(jobA, 1)), Options{MaxIDs: 5})
		c := e.dial(t)
		c.send(string(data))
		c.send(map[string]any{"type": "ping"})
		for {
			if err := c.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			_, msg, err := c.conn.ReadMessage()
			if err != nil {
				if ce, ok := err.(*websocket.CloseError); ok {
					t.Fatalf("closed on %q: %v", data, ce)
				}
				t.Fatalf("no pong after %q: %v", data, err)
			}
			var m struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(msg, &m); err != nil {
				t.Fatalf("answer to %q is not JSON: %s", data, msg)
			}
			switch m.Type {
			case "pong":
				return
			case "snapshot", "error", "unsubscribed", "progress":
			default:
				t.Fatalf("answer to %q of unknown type: %s", data, msg)
			}
		}
	})
}
