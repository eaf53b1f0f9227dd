package api_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestWebUI checks the page at `/`: served without a token, as HTML, with a policy that allows
// exactly its own inline script and stylesheet (by hash) and requests to its own origin, and
// with nothing in it that reaches another host (the UI must work offline, without a CDN).
func TestWebUI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs())
	r := e.do(t, "GET", "/", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET / without a token = %d %s", r.status, r.body)
	}
	if got := r.header.Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-cache",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	page := string(r.body)

	scripts := regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`).FindAllStringSubmatch(page, -1)
	styles := regexp.MustCompile(`(?s)<style([^>]*)>(.*?)</style>`).FindAllStringSubmatch(page, -1)
	if len(scripts) != 1 || len(styles) != 1 {
		t.Fatalf("want one inline script and one stylesheet, got %d and %d", len(scripts), len(styles))
	}
	if scripts[0][1] != "" || styles[0][1] != "" {
		t.Errorf("the script and style elements take no attributes (no src): %q %q", scripts[0][1], styles[0][1])
	}
	js, css := scripts[0][2], styles[0][2]
	if !strings.Contains(js, "new WebSocket(") || !strings.Contains(css, "@media") {
		t.Errorf("the inlined script or stylesheet is not the UI's")
	}

	csp := parseCSP(t, r.header.Get("Content-Security-Policy"))
	host := strings.TrimPrefix(e.srv.URL, "http://")
	for dir, want := range map[string]string{
		"default-src":               "'none'",
		"script-src":                hashSource(js),
		"style-src":                 hashSource(css),
		"connect-src":               "'self' ws://" + host + " wss://" + host,
		"img-src":                   "'self' data:",
		"base-uri":                  "'none'",
		"form-action":               "'none'",
		"frame-ancestors":           "'none'",
		"require-trusted-types-for": "'script'",
	} {
		if got := csp[dir]; got != want {
			t.Errorf("CSP %s = %q, want %q", dir, got, want)
		}
	}
	if strings.Contains(r.header.Get("Content-Security-Policy"), "unsafe") {
		t.Errorf("CSP allows something unsafe: %s", r.header.Get("Content-Security-Policy"))
	}

	// Nothing from another host: no absolute URL anywhere, no src attribute, only in-page or
	// data: links; no inline handlers or style attributes (the policy would block them).
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|\burl\(`).FindString(page); m != "" {
		t.Errorf("the page names another host or resource: %q", m)
	}
	for _, m := range regexp.MustCompile(`(?i)\s(src|href|action)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if v := m[2]; !strings.HasPrefix(v, "#") && !strings.HasPrefix(v, "data:") {
			t.Errorf("%s=%q points outside the page", m[1], v)
		}
	}
	html := strings.Replace(strings.Replace(page, js, "", 1), css, "", 1)
	if m := regexp.MustCompile(`(?i)<[^>]+\s(on[a-z]+|style)\s*=`).FindString(html); m != "" {
		t.Errorf("inline handler or style attribute, blocked by the policy: %q", m)
	}
	// Every form control has a label: an id that some label's for names (or aria-label).
	labels := map[string]bool{}
	for _, m := range regexp.MustCompile(`<label[^>]*\sfor="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		labels[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`).FindAllString(html, -1) {
		id := regexp.MustCompile(`\sid="([^"]+)"`).FindStringSubmatch(m)
		if strings.Contains(m, "aria-label=") || id != nil && labels[id[1]] {
			continue
		}
		t.Errorf("form control without a label: %s", m)
	}

	// Revalidation by ETag.
	req, err := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("If-None-Match", r.header.Get("ETag"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified || r.header.Get("ETag") == "" {
		t.Errorf("If-None-Match %q: %d, want 304", r.header.Get("ETag"), resp.StatusCode)
	}

	// The page is all there is: other paths stay the API's JSON 404.
	e.do(t, "GET", "/app.js", "", nil).checkError(t, 404, "not_found", "")
}

// TestWebUIPolicyHost: a Host header that is not a plain host[:port] is not repeated in the
// policy (connect-src keeps 'self' alone).
func TestWebUIPolicyHost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeJobs())
	for host, want := range map[string]string{
		"localhost:8080":   "'self' ws://localhost:8080 wss://localhost:8080",
		"[::1]:8080":       "'self' ws://[::1]:8080 wss://[::1]:8080",
		"evil; script-src": "'self'",
		"a b":              "'self'",
	} {
		u, _ := url.Parse(e.srv.URL + "/")
		req := &http.Request{Method: "GET", URL: u, Host: host, Header: http.Header{}}
		resp, err := http.DefaultClient.Do(req.WithContext(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadRequest {
			continue // net/http refused the Host itself: nothing to check
		}
		csp := parseCSP(t, resp.Header.Get("Content-Security-Policy"))
		if got := csp["connect-src"]; got != want {
			t.Errorf("Host %q: connect-src = %q, want %q", host, got, want)
		}
		if n := len(strings.Split(resp.Header.Get("Content-Security-Policy"), "script-src")); n != 2 {
			t.Errorf("Host %q: script-src appears %d times", host, n-1)
		}
	}
}

func parseCSP(t *testing.T, h string) map[string]string {
	t.Helper()
	if h == "" {
		t.Fatal("no Content-Security-Policy header")
	}
	out := map[string]string{}
	for _, d := range strings.Split(h, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		if _, dup := out[name]; dup {
			t.Errorf("CSP directive %s given twice", name)
		}
		out[name] = value
	}
	return out
}

func hashSource(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}
