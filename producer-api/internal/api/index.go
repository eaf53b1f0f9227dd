package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The web UI (CONTRACT §2: at `/`) is four embedded files, ui/index.html, ui/app.css,
// ui/app.js and ui/apidoc.js (the API reference page, #api), kept apart for editing and served
// as ONE document: the stylesheet and the two scripts, as one script, are inlined at start-up and the Content-Security-Policy allows exactly those two by their
// SHA-256 hashes. So the page needs no route besides `/`, loads nothing from anywhere (it works
// offline, no CDN), and no other script or style (an injected one included) can run.
//
//go:embed ui/index.html ui/app.css ui/app.js ui/apidoc.js
var uiFiles embed.FS

// Markers in ui/index.html replaced by the inlined stylesheet and script.
const (
	cssMarker = "<!-- ui:css -->"
	jsMarker  = "<!-- ui:js -->"
)

// uiPage is the assembled document and the policy that goes with it.
type uiPage struct {
	html      []byte
	scriptSrc string // 'sha256-…' of the inline script
	styleSrc  string // 'sha256-…' of the inline stylesheet
	etag      string
}

var loadUI = sync.OnceValues(func() (uiPage, error) { return buildUI(uiFiles) })

// buildUI inlines app.css and app.js into index.html.
func buildUI(fsys embed.FS) (uiPage, error) {
	read := func(name string) (string, error) {
		b, err := fsys.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("reading embedded %s: %w", name, err)
		}
		return string(b), nil
	}
	page, err := read("ui/index.html")
	if err != nil {
		return uiPage{}, err
	}
	css, err := read("ui/app.css")
	if err != nil {
		return uiPage{}, err
	}
	js, err := read("ui/app.js")
	if err != nil {
		return uiPage{}, err
	}
	apidoc, err := read("ui/apidoc.js")
	if err != nil {
		return uiPage{}, err
	}
	js += "\n" + apidoc // each file is its own strict-mode IIFE
	// Text that would end (or confuse the parsing of) its element early.
	if strings.Contains(strings.ToLower(js), "</script") || strings.Contains(js, "<!--") {
		return uiPage{}, errors.New("ui/app.js and ui/apidoc.js must not contain </script or <!--")
	}
	if strings.Contains(strings.ToLower(css), "</style") {
		return uiPage{}, errors.New("ui/app.css must not contain </style")
	}
	for _, m := range []string{cssMarker, jsMarker} {
		if strings.Count(page, m) != 1 {
			return uiPage{}, fmt.Errorf("ui/index.html must hold %q once", m)
		}
	}
	page = strings.Replace(page, cssMarker, "<style>"+css+"</style>", 1)
	page = strings.Replace(page, jsMarker, "<script>"+js+"</script>", 1)
	sum := sha256.Sum256([]byte(page))
	return uiPage{
		html:      []byte(page),
		scriptSrc: cspHash(js),
		styleSrc:  cspHash(css),
		etag:      `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`,
	}, nil
}

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// plainHost is a Host header safe to repeat in the policy.
var plainHost = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// csp is the page's policy: nothing but its own inline script and style (by hash), requests to
// this origin only (fetch and the progress WebSocket), no framing, no plugins, no form posts.
func (p uiPage) csp(host string) string {
	connect := "'self'"
	// CSP Level 3 lets 'self' match ws: and wss: on the same host, older browsers do not:
	// name the WebSocket origin explicitly too.
	if plainHost.MatchString(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src " + p.scriptSrc,
		"style-src " + p.styleSrc,
		"connect-src " + connect,
		"img-src 'self' data:",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
		"require-trusted-types-for 'script'",
	}, "; ")
}

// index serves the web UI. It needs no token: the page asks for one and sends it with each
// API call itself.
func index(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	p, err := loadUI()
	if err != nil {
		http.Error(w, "the web UI is broken: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", p.csp(r.Host))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", p.etag)
	h.Set("Content-Type", "text/html; charset=utf-8")
	// ServeContent answers If-None-Match with 304 from the ETag set above.
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(p.html))
}
