package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/jackc/pgx/v5"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// TestUI drives the web UI at `/` in headless Chromium, as a person would: it signs in with the
// #token= link that `make run` prints, starts a filtered CSV export from the form with chosen and
// reordered columns, watches the job's bar reach 100 % in the page, downloads the file through
// the page and checks it against the catalog, then starts a large Excel export and cancels it
// from the page. A screenshot of the job table lands in .stack/artifacts/ui-jobs.png.
func TestUI(t *testing.T) {
	s := getStack(t)
	bin := chromiumPath(t)
	s.seedOnce(t, 200000) // the cancelled export must run for several seconds

	downloads := t.TempDir()
	ctx := newBrowser(t, bin)
	pg := &uiPage{t: t, ctx: ctx}
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads, EventsEnabled: new(true),
	}); err != nil {
		t.Fatalf("allowing downloads: %v", err)
	}

	// Sign in through the link: the token leaves the address bar, the user shows.
	tok := s.token(t, "e2e-ui", auth.PermReadExports, auth.PermWriteExports)
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: wsSpy}); err != nil {
		t.Fatalf("installing the WebSocket spy: %v", err)
	}
	pg.do(chromedp.Navigate(s.api + "/#token=" + tok))
	pg.waitJS(`document.getElementById("conn").dataset.state === "live"`, 20*time.Second, "the live connection")
	if got := pg.str(`location.href`); strings.Contains(got, "token") {
		t.Errorf("the token is still in the address bar: %s", got)
	}
	if got := pg.str(`document.getElementById("who-name").textContent`); got != "E2E e2e-ui" {
		t.Errorf("signed-in name = %q, want E2E e2e-ui", got)
	}
	if got := pg.str(`sessionStorage.getItem("exportplatform.token")`); got != tok {
		t.Errorf("the token was not kept in sessionStorage")
	}

	// An error the API finds shows next to the input it names.
	pg.waitJS(`!!document.getElementById("fld-sku")`, 10*time.Second, "the field list")
	pg.do(chromedp.Steps(
		setValue("f-p-price_min", "60"),
		setValue("f-p-price_max", "50"),
		chromedp.Click(chromedp.ID("start")),
	))
	pg.waitJS(`document.getElementById("err-filters.price_min").textContent !== ""`, 10*time.Second, "the price_min error")
	if got := pg.str(`document.getElementById("f-p-price_min").getAttribute("aria-invalid")`); got != "true" {
		t.Errorf("price_min is not marked invalid (aria-invalid=%q)", got)
	}
	if got := pg.str(`document.getElementById("alert").textContent`); !strings.Contains(got, "filters.price_min") {
		t.Errorf("the alert does not name the field: %q", got)
	}

	// A CSV of active products priced 10 to 50, columns price, sku, name, status in that order:
	// price moved up with its button (keyboard-reachable), past description, brand, ean... .
	pg.do(chromedp.Steps(
		chromedp.Click(chromedp.ID("fields-none")),
		chromedp.Click(chromedp.ID("fld-sku")),
		chromedp.Click(chromedp.ID("fld-name")),
		chromedp.Click(chromedp.ID("fld-price")),
		chromedp.Click(chromedp.ID("fld-status")),
	))
	// With the keyboard: focus "Move price up" and press Enter until price leads; the focus
	// stays on the button as the item moves.
	up := `#field-list li[data-field="price"] button[data-move="-1"]`
	pg.do(chromedp.Focus(chromedp.CSS(up)))
	for i := 0; pg.str(`[...document.querySelectorAll("#field-list input:checked")][0].value`) != "price"; i++ {
		if i == 10 {
			t.Fatal("price did not move to the first column")
		}
		pg.do(chromedp.KeyEvent(kb.Enter))
		if !pg.truth(`document.activeElement === document.querySelector('` + up + `')`) {
			t.Fatal("the focus left the Move up button")
		}
	}
	pg.do(chromedp.Steps(
		setValue("f-p-status", "active"),
		setValue("f-p-price_min", ""),
		setValue("f-p-price_max", ""),
		chromedp.SendKeys(chromedp.ID("f-p-price_min"), "10"),
		chromedp.SendKeys(chromedp.ID("f-p-price_max"), "50"),
		chromedp.Click(chromedp.ID("start")),
	))
	id := pg.waitJob()
	t.Logf("CSV export %s started from the form", id)
	var seen []float64
	final := pg.waitRow(id, 2*time.Minute, func(r uiRow) bool {
		if len(seen) == 0 || seen[len(seen)-1] != r.Value {
			seen = append(seen, r.Value)
		}
		return r.Status == "completed" || r.Status == "failed" || r.Status == "cancelled"
	})
	t.Logf("the page's bar went through %v", seen)
	if final.Status != "completed" || final.Value != 100 || final.Pct != "100 %" || !final.Download {
		t.Fatalf("final row = %+v, want completed, bar at 100 %%, a Download button", final)
	}
	if got := pg.str(`document.getElementById("notice").textContent`); !strings.Contains(got, "completed") {
		t.Errorf("the live region did not announce the completion: %q", got)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] < seen[i-1] {
			t.Errorf("the bar went back: %v", seen)
		}
	}

	// Download through the page; the file is the filtered catalog.
	file, name := pg.download(id, downloads)
	if name != "products.csv" {
		t.Errorf("saved as %q, want products.csv (Content-Disposition)", name)
	}
	rows := checkUICSV(t, file)
	want := countSQL(t, s.catalogDB, `SELECT count(*) FROM products WHERE status = 'active' AND price >= 10 AND price <= 50`)
	if int64(len(rows)) != want {
		t.Errorf("the downloaded file has %d rows, the catalog %d for the same filter", len(rows), want)
	}

	// A large export, cancelled from the page while it runs.
	pg.do(chromedp.Steps(
		setValue("format", "excel"),
		chromedp.Click(chromedp.ID("fields-defaults")),
		setValue("f-p-status", ""),
		setValue("f-p-price_min", ""),
		setValue("f-p-price_max", ""),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("export-form").dataset.lastJobId = ""`),
		chromedp.Click(chromedp.ID("start")),
	))
	big := pg.waitJob()
	t.Logf("Excel export %s of every product started from the form", big)
	running := pg.waitRow(big, time.Minute, func(r uiRow) bool {
		return r.Status == "running" && r.Value > 0 || r.Status != "queued" && r.Status != "running"
	})
	if running.Status != "running" || !running.Cancel {
		t.Fatalf("the large export did not show running with a Cancel button: %+v", running)
	}
	artifacts := filepath.Join(s.root, ".stack", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	pg.screenshotViewport(filepath.Join(artifacts, "ui-running.png"))
	pg.do(chromedp.Click(chromedp.CSS(`tr[data-job-id="` + big + `"] button[data-action="cancel"]`)))
	ended := pg.waitRow(big, time.Minute, func(r uiRow) bool {
		return r.Status != "queued" && r.Status != "running"
	})
	if ended.Status != "cancelled" || ended.Cancel || ended.Download {
		t.Errorf("after Cancel the row is %+v, want cancelled without Cancel or Download", ended)
	}
	t.Logf("cancelled at %.1f %% (%s rows)", running.Value, ended.RowsText)

	// The connection drops: the page says so, reconnects by itself and subscribes again.
	pg.do(chromedp.Evaluate[chromedp.Void](`window.__ws.at(-1).close(4000, "test")`))
	pg.waitJS(`window.__ws.length === 2 && document.getElementById("conn").dataset.state === "live"`,
		30*time.Second, "the reconnection")
	if got := pg.str(`window.__states.join(" ")`); !strings.Contains(got, "live reconnecting") {
		t.Errorf("connection states shown: %q, want live, then reconnecting, then live", got)
	}
	if n := pg.num(`window.__sent.filter(m => JSON.parse(m).type === "subscribe" && JSON.parse(m).all).length`); n != 2 {
		t.Errorf("%v subscriptions sent over two connections, want 2", n)
	}
	pg.waitRow(big, 10*time.Second, func(r uiRow) bool { return r.Status == "cancelled" })

	// The finished table, on a laptop and on a phone.
	png := filepath.Join(artifacts, "ui-jobs.png")
	pg.screenshot(png)
	t.Logf("screenshot of the job table: %s", png)
	pg.do(chromedp.Steps(
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("jobs-heading").scrollIntoView()`),
	))
	phone := filepath.Join(artifacts, "ui-jobs-phone.png")
	pg.screenshotViewport(phone)
	t.Logf("screenshot on a phone-sized screen: %s", phone)
	if w := pg.num(`document.documentElement.scrollWidth`); w > 400 {
		t.Errorf("on a 390 px screen the page is %v px wide (it should not scroll sideways)", w)
	}

	// Delete asks for a second press, then the job leaves the table.
	pg.do(chromedp.EmulateViewport(1366, 900))
	del := chromedp.CSS(`tr[data-job-id="` + id + `"] button[data-action="delete"]`)
	pg.do(chromedp.Click(del))
	if got := pg.str(`document.querySelector('tr[data-job-id="` + id + `"] button[data-action="delete"]').textContent`); got != "Confirm delete" {
		t.Errorf("the first press on Delete shows %q, want Confirm delete", got)
	}
	pg.do(chromedp.Click(del))
	pg.waitJS(`!document.querySelector('tr[data-job-id="`+id+`"]')`, 10*time.Second, "the deleted job to leave the table")
	if code, body := s.do(t, "GET", "/api/v1/exports/download/"+id, tok, nil); code < 400 {
		t.Errorf("the deleted job's file still downloads: %d %.100s", code, body)
	}

	// Log out, try a token the API refuses (wrong signature), then paste the good one.
	pg.do(chromedp.Click(chromedp.ID("logout")))
	pg.waitJS(`getComputedStyle(document.getElementById("who")).display === "none" &&
		!document.getElementById("login").hidden && document.getElementById("jobs").hidden &&
		sessionStorage.getItem("exportplatform.token") === null`, 5*time.Second, "the signed-out page")
	forged, err := auth.Mint([]byte("not-the-secret"), auth.Principal{Subject: "mallory", Permissions: []string{auth.PermReadExports}}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pg.do(chromedp.Steps(setValue("token", forged), chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`))))
	pg.waitJS(`document.getElementById("alert").textContent.includes("paste a valid token")`, 10*time.Second,
		"the page to ask for a valid token")
	pg.do(chromedp.Steps(setValue("token", tok), chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`))))
	pg.waitJS(`document.getElementById("conn").dataset.state === "live" && document.getElementById("alert").hidden`,
		20*time.Second, "signing in again with a pasted token")

	pg.checkConsole()
}

// wsSpy runs in the page before its own script: it keeps the page's WebSockets and what they
// sent (so the test can drop the connection), and the connection states the page showed.
const wsSpy = `(() => {
	const W = window.WebSocket;
	window.__ws = []; window.__sent = []; window.__states = [];
	window.WebSocket = class extends W {
		constructor(...a) { super(...a); window.__ws.push(this); }
		send(d) { window.__sent.push(String(d)); return super.send(d); }
	};
	document.addEventListener("DOMContentLoaded", () => {
		const c = document.getElementById("conn");
		new MutationObserver(() => {
			if (window.__states.at(-1) !== c.dataset.state) window.__states.push(c.dataset.state);
		}).observe(c, {attributes: true, attributeFilter: ["data-state"]});
	});
})()`

// setValue sets a form control as typing or choosing would, events included (SetValue with ""
// leaves "undefined" in a number input).
func setValue(id, v string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const e = document.getElementById(%q);
		e.value = %q;
		e.dispatchEvent(new Event("input", {bubbles: true}));
		e.dispatchEvent(new Event("change", {bubbles: true}));
	})()`, id, v))
}

// chromiumPath finds Debian's chromium (dev/lib/gocheck.sh installs it). Under CI a missing
// browser fails the test; elsewhere it skips it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (dev/lib/gocheck.sh installs it: apt-get install chromium)")
	}
	t.Skip("chromium is not installed: apt-get install chromium (or set CHROMIUM)")
	return ""
}

// newBrowser starts headless Chromium (no sandbox: CI runs as root) for the test's lifetime.
func newBrowser(t *testing.T, bin string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1366, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 8*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	return ctx
}

// uiPage is the tab under test, with what its console said.
type uiPage struct {
	t   *testing.T
	ctx context.Context

	once     sync.Once
	mu       sync.Mutex
	problems []string
}

func (p *uiPage) do(a chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	p.watchConsole()
	if err := chromedp.Do(p.ctx, a); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

// watchConsole records the page's errors: uncaught exceptions, console errors, and the
// browser's own (a Content-Security-Policy violation among them).
func (p *uiPage) watchConsole() {
	p.once.Do(func() {
		msgs := chromedp.Console(p.ctx)
		go func() {
			for m, err := range msgs {
				if err != nil {
					return
				}
				// The refused requests are the test's own: price_min above price_max, a forged
				// token (its API calls and its WebSocket).
				if strings.Contains(m.Text, "status of 400 (Bad Request)") || strings.Contains(m.Text, "status of 401 (Unauthorized)") ||
					strings.Contains(m.Text, "WebSocket connection to") && (strings.Contains(m.Text, "HTTP Authentication failed") ||
						strings.Contains(m.Text, "closed before the connection is established")) {
					continue
				}
				if m.Type == chromedp.ConsoleException || m.Type == "error" || m.Type == "warning" ||
					strings.Contains(m.Text, "Content Security Policy") {
					p.mu.Lock()
					p.problems = append(p.problems, string(m.Type)+": "+m.Text)
					p.mu.Unlock()
				}
			}
		}()
	})
}

func (p *uiPage) checkConsole() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.problems {
		p.t.Errorf("browser console: %s", m)
	}
}

func (p *uiPage) str(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[*string](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	if v == nil {
		return ""
	}
	return *v
}

func (p *uiPage) truth(expr string) bool {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func (p *uiPage) num(expr string) float64 {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[float64](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript condition in the page until it holds.
func (p *uiPage) waitJS(cond string, timeout time.Duration, what string) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](cond))
		if err != nil {
			p.t.Fatalf("evaluating %s: %v", cond, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waited %s for %s; page says: %q / %q", timeout, what,
				p.str(`document.getElementById("alert").textContent`), p.str(`document.getElementById("conn").textContent`))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitJob waits for the form to report the job it started and returns its id.
func (p *uiPage) waitJob() string {
	p.t.Helper()
	p.waitJS(`!!document.getElementById("export-form").dataset.lastJobId || !document.getElementById("alert").hidden`,
		20*time.Second, "the export to be accepted")
	id := p.str(`document.getElementById("export-form").dataset.lastJobId || ""`)
	if id == "" {
		p.t.Fatalf("the export was refused: %s", p.str(`document.getElementById("alert").textContent`))
	}
	return id
}

// uiRow is what the page shows of one job.
type uiRow struct {
	Status   string  `json:"status"`
	Value    float64 `json:"value"`
	Pct      string  `json:"pct"`
	Phase    string  `json:"phase"`
	RowsText string  `json:"rows"`
	Download bool    `json:"download"`
	Cancel   bool    `json:"cancel"`
}

// waitRow polls the job's row in the DOM until done says so.
func (p *uiPage) waitRow(id string, timeout time.Duration, done func(uiRow) bool) uiRow {
	p.t.Helper()
	expr := `(() => {
		const tr = document.querySelector('tr[data-job-id="` + id + `"]');
		if (!tr) return null;
		const q = (s) => tr.querySelector(s);
		return { status: q(".status").textContent, value: q("progress").value, pct: q(".pct").textContent,
			phase: tr.cells[5].textContent, rows: tr.cells[6].textContent,
			download: !q('[data-action="download"]').hidden, cancel: !q('[data-action="cancel"]').hidden };
	})()`
	deadline := time.Now().Add(timeout)
	var last uiRow
	for {
		r, err := chromedp.Run(p.ctx, chromedp.Evaluate[*uiRow](expr))
		if err != nil {
			p.t.Fatalf("reading the row of %s: %v", id, err)
		}
		if r != nil {
			last = *r
			if done(last) {
				return last
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("job %s: after %s the page shows %+v", id, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// download clicks the row's Download button and returns the saved file and its name.
func (p *uiPage) download(id, dir string) ([]byte, string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	begins := chromedp.BrowserEvents(ctx, browser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	p.do(chromedp.Click(chromedp.CSS(`tr[data-job-id="` + id + `"] button[data-action="download"]`)))
	var name, guid string
	for ev, err := range begins {
		if err != nil {
			p.t.Fatalf("no download began: %v", err)
		}
		name, guid = ev.SuggestedFilename, ev.GUID
		break
	}
	for ev, err := range progress {
		if err != nil {
			p.t.Fatalf("download %s did not finish: %v", name, err)
		}
		if ev.GUID != guid {
			continue
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			p.t.Fatalf("download %s was cancelled", name)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		p.t.Fatalf("reading the downloaded file: %v", err)
	}
	p.t.Logf("downloaded %s through the page (%d bytes)", name, len(b))
	return b, name
}

func (p *uiPage) screenshot(path string) {
	p.t.Helper()
	p.save(path, chromedp.FullScreenshot(100))
}

func (p *uiPage) screenshotViewport(path string) {
	p.t.Helper()
	p.save(path, chromedp.CaptureScreenshot())
}

func (p *uiPage) save(path string, shot chromedp.Action[[]byte]) {
	p.t.Helper()
	img, err := chromedp.Run(p.ctx, shot)
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, img, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// checkUICSV parses the CSV the form asked for (BOM, header price, sku, name, status) and checks
// every row against the filter; it returns the data rows.
func checkUICSV(t *testing.T, data []byte) [][]string {
	t.Helper()
	data, ok := bytes.CutPrefix(data, []byte("\xEF\xBB\xBF"))
	if !ok {
		t.Errorf("no UTF-8 BOM (the form's default)")
	}
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("the downloaded file is not CSV: %v", err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != "price,sku,name,status" {
		t.Fatalf("header = %v, want the form's order price,sku,name,status", recs[:min(1, len(recs))])
	}
	for i, r := range recs[1:] {
		price, err := strconv.ParseFloat(r[0], 64)
		if err != nil || price < 10 || price > 50 || r[3] != "active" {
			t.Fatalf("row %d does not match the filter: %q", i+1, r)
		}
	}
	return recs[1:]
}

func countSQL(t *testing.T, dsn, query string) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, query).Scan(&n); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
