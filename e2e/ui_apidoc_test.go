package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestUIAPIDoc opens the web UI's API reference (#api) in headless Chromium, without signing in:
// the page fetches the running API's GET /api/v1/openapi.json and renders every operation
// grouped by tag, each with its method, path and summary; the export request's parameters,
// request body and responses, the job's schema, the security scheme, and a link to the AsyncAPI
// document. Under the page's Content-Security-Policy nothing is refused (checkConsole). A
// screenshot lands in .stack/artifacts/ui-apidoc.png.
func TestUIAPIDoc(t *testing.T) {
	s := getStack(t)
	bin := chromiumPath(t)

	// The document as the API serves it: what the page must show.
	code, raw := s.do(t, http.MethodGet, "/api/v1/openapi.json", "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json without a token = %d %.200s", code, raw)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("not an OpenAPI 3.1 document (%v): %.200s", err, raw)
	}
	var ops []string
	summaries := map[string]string{}
	for path, item := range doc.Paths {
		for method, rawOp := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				var op struct {
					Summary string `json:"summary"`
				}
				if err := json.Unmarshal(rawOp, &op); err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				key := strings.ToUpper(method) + " " + path
				ops = append(ops, key)
				summaries[key] = op.Summary
			}
		}
	}
	sort.Strings(ops)
	for _, want := range []string{"POST /api/v1/exports/{format}/{entity}", "GET /api/v1/exports/{id}", "GET /api/v1/exports"} {
		if _, ok := summaries[want]; !ok {
			t.Fatalf("the API's document has no %s (operations: %v)", want, ops)
		}
	}

	ctx := newBrowser(t, bin)
	pg := &uiPage{t: t, ctx: ctx}
	pg.do(chromedp.Navigate(s.api + "/#api"))
	pg.waitJS(`document.getElementById("apidoc").dataset.state === "ready" || document.getElementById("apidoc").dataset.state === "failed"`,
		20*time.Second, "the API document")
	if st := pg.str(`document.getElementById("apidoc").dataset.state`); st != "ready" {
		t.Fatalf("the page could not render the document: %s", pg.str(`document.getElementById("apidoc-status").textContent`))
	}
	// The reference shows alone, without a token; the exports' sections stay out of sight.
	if !pg.truth(`getComputedStyle(document.getElementById("apidoc")).display !== "none" &&
		getComputedStyle(document.getElementById("jobs")).display === "none" &&
		getComputedStyle(document.getElementById("login")).display === "none"`) {
		t.Error("#api does not show the reference alone")
	}

	// Every operation of the document, once, with its summary.
	var shown []string
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#apidoc-body details[data-op]")].map(d => d.dataset.op)`))
	if err != nil {
		t.Fatal(err)
	}
	shown = append(shown, got...)
	sort.Strings(shown)
	if strings.Join(shown, "\n") != strings.Join(ops, "\n") {
		t.Errorf("operations shown:\n%s\nthe document's:\n%s", strings.Join(shown, "\n"), strings.Join(ops, "\n"))
	}
	op := func(key string) string {
		return `document.querySelector('#apidoc-body details[data-op="` + key + `"]')`
	}
	for _, key := range []string{"POST /api/v1/exports/{format}/{entity}", "GET /api/v1/exports/{id}"} {
		method, path, _ := strings.Cut(key, " ")
		if got := pg.str(op(key) + `.querySelector(".method").textContent`); got != method {
			t.Errorf("%s: method shown %q", key, got)
		}
		if got := pg.str(op(key) + `.querySelector(".path").textContent`); got != path {
			t.Errorf("%s: path shown %q", key, got)
		}
		if got := pg.str(op(key) + `.querySelector(".op-summary").textContent`); got != summaries[key] || got == "" {
			t.Errorf("%s: summary shown %q, the document's %q", key, got, summaries[key])
		}
		if got := pg.str(op(key) + `.closest("[data-tag]").dataset.tag`); got != "exports" {
			t.Errorf("%s: shown under the tag %q, want exports", key, got)
		}
	}

	// The export request, opened: its path parameters, request body (the ExportRequest's
	// properties) and responses (202 and the errors), secured by the bearer token.
	post := op("POST /api/v1/exports/{format}/{entity}")
	pg.do(chromedp.Click(chromedp.CSS(`#apidoc-body details[data-op="POST /api/v1/exports/{format}/{entity}"] > summary`)))
	pg.waitJS(post+`.open`, 5*time.Second, "the export request's details")
	for _, check := range []struct{ what, expr string }{
		{"path parameter format, required", post + `.querySelector('tr[data-param="format"] .req') !== null`},
		{"path parameter entity", post + `.querySelector('tr[data-param="entity"]') !== null`},
		{"request body ExportRequest", post + `.querySelector('[data-part="request"] .schema-link').textContent === "ExportRequest"`},
		{"request body property fields", post + `.querySelector('[data-part="request"] tr[data-prop="fields"]') !== null`},
		{"request body property filters", post + `.querySelector('[data-part="request"] tr[data-prop="filters"]') !== null`},
		{"request example", post + `.querySelector('[data-part="request"] pre.example') !== null`},
		{"response 202 with its Accepted schema", post + `.querySelector('[data-status="202"]').textContent.includes("Accepted")`},
		{"response 202's job_id", post + `.querySelector('[data-status="202"] tr[data-prop="job_id"]') !== null`},
		{"response 400", post + `.querySelector('[data-status="400"]') !== null`},
		{"security bearer", post + `.querySelector(".op-security").textContent.includes("bearer")`},
	} {
		if !pg.truth(check.expr) {
			t.Errorf("the export request does not show its %s", check.what)
		}
	}
	// No part that does not apply shows as "null" or "undefined" text.
	if bad := pg.str(`(() => {
		const w = document.createTreeWalker(document.getElementById("apidoc-body"), NodeFilter.SHOW_TEXT);
		for (let n = w.nextNode(); n; n = w.nextNode()) {
			if (/^\s*(null|undefined|\[object Object\])\s*$/.test(n.textContent) && !n.parentElement.closest("code, pre, .type")) return n.parentElement.outerHTML.slice(0, 200);
		}
		return "";
	})()`); bad != "" {
		t.Errorf("stray text in the reference: %s", bad)
	}
	// The document endpoints are public.
	if got := pg.str(op("GET /api/v1/openapi.json") + `.querySelector(".op-security").textContent`); !strings.Contains(got, "public") {
		t.Errorf("GET /api/v1/openapi.json security shown %q, want public", got)
	}
	// The job's schema: its properties, required keys, enums resolved through $ref links.
	if !pg.truth(`!!document.querySelector('#api-schema-Job tr[data-prop="rows_total"]') &&
		!!document.querySelector('#api-schema-JobStatus .enum')`) {
		t.Error("the Job schema's rows_total or JobStatus's enum is not shown")
	}
	// A schema link opens its schema.
	pg.do(chromedp.Click(chromedp.CSS(`#apidoc-body details[data-op="POST /api/v1/exports/{format}/{entity}"] [data-part="request"] .schema-link`)))
	pg.waitJS(`location.hash === "#api-schema-ExportRequest" && document.getElementById("api-schema-ExportRequest").open`, 5*time.Second,
		"the ExportRequest schema to open")
	if got := pg.str(`document.getElementById("apidoc").hidden ? "hidden" : "shown"`); got != "shown" {
		t.Error("following a schema link left the reference")
	}

	// The AsyncAPI document is linked, and answers.
	href := pg.str(`document.querySelector("#asyncapi-link a").href`)
	if !strings.HasSuffix(href, "/api/v1/asyncapi.json") {
		t.Errorf("AsyncAPI link = %q", href)
	}
	if code, body := s.do(t, http.MethodGet, "/api/v1/asyncapi.json", "", nil); code != http.StatusOK || !strings.Contains(string(body), `"asyncapi"`) {
		t.Errorf("GET /api/v1/asyncapi.json = %d %.100s", code, body)
	}

	// The filter keeps what matches.
	pg.do(setValue("apidoc-filter", "schedules toggle"))
	if n := pg.num(`[...document.querySelectorAll("#apidoc-body details[data-op]")].filter(d => !d.hidden).length`); n != 1 {
		t.Errorf("filter %q leaves %v operations, want 1", "schedules toggle", n)
	}
	pg.do(setValue("apidoc-filter", ""))

	artifacts := filepath.Join(s.root, ".stack", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	// An operation's anchor opens it: the screenshot shows the export request.
	pg.do(chromedp.Steps(
		chromedp.Click(chromedp.ID("apidoc-collapse")),
		chromedp.Evaluate[chromedp.Void](`location.hash = "#api-op-createExport"`),
	))
	pg.waitJS(post+`.open && document.querySelectorAll("#apidoc-body details.op[open]").length === 1`, 5*time.Second,
		"the export request, opened by its anchor")
	opPNG := filepath.Join(artifacts, "ui-apidoc-op.png")
	pg.screenshotViewport(opPNG)
	png := filepath.Join(artifacts, "ui-apidoc.png")
	pg.do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	pg.screenshotViewport(png)
	full := filepath.Join(artifacts, "ui-apidoc-full.png")
	pg.screenshot(full)
	t.Logf("screenshots of the API reference: %s (its top), %s (the export request), %s (the whole page)", png, opPNG, full)

	// Back to the exports: the reference hides.
	pg.do(chromedp.Click(chromedp.ID("nav-exports")))
	pg.waitJS(`document.getElementById("apidoc").hidden && document.body.dataset.view === "app"`, 5*time.Second, "the exports view")
	pg.checkConsole()
}
