package api_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/productsmanager/exportplatform/pkg/auth"
	"github.com/productsmanager/exportplatform/producer-api/internal/api"
)

// fakeHub is a WebSocket echo server standing in for the progress hub; it records the
// requests it upgraded.
type fakeHub struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []*http.Request
}

func newFakeHub(t *testing.T) *fakeHub {
	t.Helper()
	h := &fakeHub{}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.got = append(h.got, r.Clone(r.Context()))
		h.mu.Unlock()
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade answered the error
		}
		defer conn.Close()
		for {
			typ, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if err := conn.WriteMessage(typ, append([]byte("echo:"), msg...)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *fakeHub) requests() []*http.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*http.Request(nil), h.got...)
}

func TestWebSocketProxy(t *testing.T) {
	t.Parallel()
	hub := newFakeHub(t)
	hubURL, _ := url.Parse(hub.srv.URL)
	e := newEnv(t, newFakeJobs(), func(d *api.Deps) { d.HubURL = hubURL })
	wsBase := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/api/v1/exports/ws"
	tok := token(t, "alice", auth.PermReadExports)

	tests := []struct {
		name   string
		url    string
		header http.Header
	}{
		{"bearer header", wsBase, http.Header{"Authorization": {"Bearer " + tok}}},
		{"access_token query", wsBase + "?access_token=" + url.QueryEscape(tok), nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, resp, err := websocket.DefaultDialer.DialContext(t.Context(), tt.url, tt.header)
			if err != nil {
				t.Fatalf("dial through the proxy: %v (response %v)", err, resp)
			}
			defer conn.Close()
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Errorf("handshake status %d", resp.StatusCode)
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			for _, msg := range []string{`{"type":"subscribe","all":true}`, "second message"} {
				if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					t.Fatal(err)
				}
				typ, back, err := conn.ReadMessage()
				if err != nil {
					t.Fatalf("read through the proxy: %v", err)
				}
				if typ != websocket.TextMessage || string(back) != "echo:"+msg {
					t.Errorf("got %d %q, want the hub's echo of %q", typ, back, msg)
				}
			}
			reqs := hub.requests()
			if len(reqs) != i+1 {
				t.Fatalf("hub saw %d upgrades, want %d", len(reqs), i+1)
			}
			r := reqs[i]
			// The hub checks the token again: it must reach it unchanged.
			if r.URL.Path != "/api/v1/exports/ws" {
				t.Errorf("hub got path %q", r.URL.Path)
			}
			gotTok, err := auth.TokenFromRequest(r, true)
			if err != nil || gotTok != tok {
				t.Errorf("hub got token %q (%v), want the client's", gotTok, err)
			}
		})
	}

	t.Run("no token never reaches the hub", func(t *testing.T) {
		before := len(hub.requests())
		_, resp, err := websocket.DefaultDialer.DialContext(t.Context(), wsBase, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial without token: err %v, response %v", err, resp)
		}
		if n := len(hub.requests()); n != before {
			t.Errorf("hub contacted for an unauthenticated upgrade")
		}
	})
}

func TestWebSocketProxyHubDown(t *testing.T) {
	t.Parallel()
	// A hub that is gone: its address refuses connections.
	gone := httptest.NewServer(http.NotFoundHandler())
	hubURL, _ := url.Parse(gone.URL)
	gone.Close()
	e := newEnv(t, newFakeJobs(), func(d *api.Deps) { d.HubURL = hubURL })
	r := e.do(t, "GET", "/api/v1/exports/ws", token(t, "alice", auth.PermReadExports), nil)
	r.checkError(t, http.StatusBadGateway, "hub_unavailable", "")
}
