package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// notAPI are the routes outside the REST API: the ops endpoints every service has, and the web
// UI's page. Nothing else may be missing from openapi.yaml.
var notAPI = []string{"/healthz", "/readyz", "/metrics", "/"}

// operations are the documented "METHOD /path" of openapi.yaml.
func operations(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := OpenAPI()
	if err != nil {
		t.Fatalf("openapi.yaml does not convert: %v", err)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	ops := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				ops[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	return ops
}

// bareDeps are the least a server needs to build its routes (no repository behind them).
func bareDeps(t *testing.T) Deps {
	t.Helper()
	v, err := auth.NewHS256Verifier([]byte("routes-doc-test-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	hub, _ := url.Parse("http://127.0.0.1:1")
	return Deps{Verifier: v, Registry: prometheus.NewRegistry(), HubURL: hub, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// routes are the router's "METHOD /path" with each {name:pattern} written {name}.
func routes(t *testing.T) map[string]bool {
	t.Helper()
	_, r := newRouter(bareDeps(t))
	out := map[string]bool{}
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil || route.GetHandler() == nil {
			return nil // a subrouter's prefix: its routes are walked on their own
		}
		tpl = bareVars(tpl)
		if slices.Contains(notAPI, tpl) {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			t.Errorf("route %s answers every method: give it Methods(…) and document each", tpl)
			return nil
		}
		for _, m := range methods {
			out[m+" "+tpl] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEveryRouteDocumented: a route without its operation in openapi.yaml fails, and so does an
// operation no route serves.
func TestEveryRouteDocumented(t *testing.T) {
	t.Parallel()
	ops, rs := operations(t), routes(t)
	if len(rs) < 30 {
		t.Fatalf("only %d routes walked: the walk is broken", len(rs))
	}
	var missing, phantom []string
	for r := range rs {
		if !ops[r] {
			missing = append(missing, r)
		}
	}
	for o := range ops {
		if !rs[o] {
			phantom = append(phantom, o)
		}
	}
	sort.Strings(missing)
	sort.Strings(phantom)
	for _, m := range missing {
		t.Errorf("route %s has no operation in openapi.yaml", m)
	}
	for _, p := range phantom {
		t.Errorf("openapi.yaml documents %s, which no route serves", p)
	}
}

// TestDocumentsServed: both documents are served as JSON without a token.
func TestDocumentsServed(t *testing.T) {
	t.Parallel()
	h := NewServer(bareDeps(t))
	for path, key := range map[string]string{"/api/v1/openapi.json": "openapi", "/api/v1/asyncapi.json": "asyncapi"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s = %d %s: %.300s", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		var doc map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatalf("GET %s: not JSON: %v", path, err)
		}
		if _, ok := doc[key]; !ok {
			t.Fatalf("GET %s: no %q version field", path, key)
		}
	}
}

// bareVars writes each {name:pattern} of a mux template {name} (patterns may hold braces).
func bareVars(tpl string) string {
	var b strings.Builder
	for i := 0; i < len(tpl); i++ {
		if tpl[i] != '{' {
			b.WriteByte(tpl[i])
			continue
		}
		depth, name, inName := 1, "", true
		for i++; i < len(tpl) && depth > 0; i++ {
			switch c := tpl[i]; {
			case c == '{':
				depth++
			case c == '}':
				depth--
			case c == ':' && depth == 1:
				inName = false
			case inName:
				name += string(c)
			}
		}
		i--
		b.WriteString("{" + name + "}")
	}
	return b.String()
}

func TestBareVars(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/a/{id:[0-9a-f]{8}-[0-9a-f]{4}}/cancel": "/a/{id}/cancel",
		"/{format:csv|excel|json}/{entity}":      "/{format}/{entity}",
		"/plain":                                 "/plain",
	} {
		if got := bareVars(in); got != want {
			t.Errorf("bareVars(%q) = %q, want %q", in, got, want)
		}
	}
}
