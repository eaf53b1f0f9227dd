package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// TestUIShortIDs: job ids are UUIDv7, whose leading hex digits are a timestamp (alike for every
// job of the hour), so the page shows their random tail. Two jobs made back to back show
// different short ids, each with the full id in its title; clicking one puts the full id on the
// clipboard (read back through the Clipboard API, permission granted to the page); the form's
// "Export queued" message carries the new job's id the same way; a chosen file name shows
// beside the id. A screenshot lands in .stack/artifacts/ui-ids.png.
func TestUIShortIDs(t *testing.T) {
	s := getStack(t)
	bin := chromiumPath(t)
	ctx := newBrowser(t, bin)
	pg := &uiPage{t: t, ctx: ctx}
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: s.api,
		}); err != nil {
			t.Fatalf("granting %s: %v", name, err)
		}
	}
	// Headless, the page never has the focus the Clipboard API asks for: emulate it.
	if _, err := chromedp.Call(ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		t.Fatalf("emulating focus: %v", err)
	}
	tok := s.token(t, "e2e-ui-ids-"+time.Now().Format("150405.000"), auth.PermReadExports, auth.PermWriteExports)
	pg.do(chromedp.Navigate(s.api + "/#token=" + tok))
	pg.waitJS(`document.getElementById("conn").dataset.state === "live"`, 20*time.Second, "the live connection")

	// Two jobs, back to back; the second with a file name of its own.
	var ids []string
	for _, body := range []map[string]any{
		{"fields": []string{"sku"}, "filters": map[string]any{"search": "no-such-product-e2e-ids"}},
		{"fields": []string{"sku"}, "filters": map[string]any{"search": "no-such-product-e2e-ids"}, "file_name": "e2e-ids.csv"},
	} {
		ids = append(ids, s.requestExport(t, tok, "csv", "products", body).JobID)
	}
	type chip struct {
		Text  string `json:"text"`
		Title string `json:"title"`
		ID    string `json:"id"`
		File  string `json:"file"`
	}
	read := func(id string) chip {
		t.Helper()
		sel := `tr[data-job-id="` + id + `"]`
		pg.waitJS(`!!document.querySelector('`+sel+` button.id')`, 20*time.Second, "the row of "+id)
		c, err := chromedp.Run(ctx, chromedp.Evaluate[chip](`(() => {
			const b = document.querySelector('`+sel+` button.id');
			return { text: b.textContent, title: b.title, id: b.dataset.id, file: document.querySelector('`+sel+` .fname').textContent };
		})()`))
		if err != nil {
			t.Fatalf("reading the id of %s: %v", id, err)
		}
		return c
	}
	a, b := read(ids[0]), read(ids[1])
	t.Logf("jobs %s and %s show %q and %q", ids[0], ids[1], a.Text, b.Text)
	if a.Text == b.Text {
		t.Errorf("two jobs show the same short id %q", a.Text)
	}
	for i, c := range []chip{a, b} {
		if tail := strings.ReplaceAll(ids[i], "-", "")[24:]; c.Text != tail {
			t.Errorf("job %s shows %q, want its random tail %q", ids[i], c.Text, tail)
		}
		if c.Title != ids[i] || c.ID != ids[i] {
			t.Errorf("job %s: title %q, data-id %q; want the full id in both", ids[i], c.Title, c.ID)
		}
	}
	// The file name shows once the page has the whole job (a live update may come first).
	pg.waitJS(`document.querySelector('tr[data-job-id="`+ids[1]+`"] .fname').textContent === "e2e-ids.csv"`, 10*time.Second,
		"the chosen file name beside the id")
	if a := read(ids[0]); a.File != "" {
		t.Errorf("the first job shows the file name %q, want none (products.csv is the default)", a.File)
	}

	// Click to copy: the full id is on the clipboard, and the button says so.
	copyAndRead := func(sel, want string) {
		t.Helper()
		pg.do(chromedp.Click(chromedp.CSS(sel)))
		pg.waitJS(`!!document.querySelector('`+sel+`').dataset.copied`, 5*time.Second, "the copy of "+want)
		if got := pg.str(`document.querySelector('` + sel + `').dataset.copied`); got != "true" {
			t.Fatalf("copying %s: data-copied=%q (notice %q)", want, got, pg.str(`document.getElementById("notice").textContent`))
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("reading the clipboard: %v", err)
		}
		if got != want {
			t.Errorf("clipboard after clicking the short id of %s = %q", want, got)
		}
		if n := pg.str(`document.getElementById("notice").textContent`); !strings.Contains(n, want) {
			t.Errorf("the notice after copying does not name the id: %q", n)
		}
	}
	copyAndRead(`tr[data-job-id="`+ids[0]+`"] button.id`, ids[0])
	copyAndRead(`tr[data-job-id="`+ids[1]+`"] button.id`, ids[1])

	// A job started from the form: "Export queued (job …)" carries its id, copyable too.
	pg.waitJS(`!!document.getElementById("fld-sku")`, 10*time.Second, "the field list")
	pg.do(chromedp.Steps(
		setValue("f-p-search", "no-such-product-e2e-ids"),
		chromedp.Click(chromedp.ID("start")),
	))
	id := pg.waitJob()
	sel := `#form-status button.id`
	pg.waitJS(`document.querySelector('`+sel+`') && document.querySelector('`+sel+`').dataset.id === "`+id+`"`, 10*time.Second, "the queued message")
	if got := pg.str(`document.querySelector('` + sel + `').title`); got != id {
		t.Errorf("the queued message's id title = %q, want %s", got, id)
	}
	copyAndRead(sel, id)

	artifacts := filepath.Join(s.root, ".stack", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	pg.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("jobs-heading").scrollIntoView()`))
	pg.screenshotViewport(filepath.Join(artifacts, "ui-ids.png"))
	pg.checkConsole()
}
