package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// TestUIPlatforms drives the Platforms view in headless Chromium: a platform saved without
// the SFTP server's host key shows the error next to that input; with it, the platform is
// listed, its connection test passes step by step, "Export now" starts an export whose row
// shows the file delivered to the SFTP server; delete asks twice. A screenshot lands in
// .stack/artifacts/ui-platforms.png.
func TestUIPlatforms(t *testing.T) {
	s := getStack(t)
	bin := chromiumPath(t)
	s.seedOnce(t, formatsCatalog)
	ctx := newBrowser(t, bin)
	pg := &uiPage{t: t, ctx: ctx}
	tok := s.token(t, "e2e-ui-platforms", auth.PermReadExports, auth.PermWriteExports)
	pg.do(chromedp.Navigate(s.api + "/#token=" + tok))
	pg.waitJS(`document.getElementById("conn").dataset.state === "live" && !document.getElementById("platforms").hidden`,
		20*time.Second, "the live connection and the platforms")

	dest := s.sftpDestination(t, unique("e2e-ui"), filepath.Join(s.root, ".stack/sftp/id_ed25519"))
	name := unique("UI Google")
	pg.do(chromedp.Steps(
		chromedp.SendKeys(chromedp.ID("p-name"), name),
		setValue("p-type", "google_shopping"),
		setValue("p-dest", "sftp"),
	))
	pg.do(chromedp.Steps(
		setValue("p-sftp-host", "127.0.0.1"),
		setValue("p-sftp-port", "2222"),
		setValue("p-sftp-user", dest["user"].(string)),
		setValue("p-sftp-key", dest["private_key_ref"].(string)),
		setValue("p-sftp-dir", dest["directory"].(string)),
		chromedp.Click(chromedp.ID("p-save")),
	))
	// Without the host key: the error is next to its input.
	pg.waitJS(`document.getElementById("err-p-sftp-hostkey").textContent.includes("host_key")`, 10*time.Second, "the host key error")
	if got := pg.str(`document.getElementById("p-sftp-hostkey").getAttribute("aria-invalid")`); got != "true" {
		t.Errorf("the host key input is not marked invalid (%q)", got)
	}
	pg.do(chromedp.Steps(setValue("p-sftp-hostkey", dest["host_key"].(string)), chromedp.Click(chromedp.ID("p-save"))))
	row := `[...document.querySelectorAll("#platform-rows tr")].find(tr => tr.textContent.includes("` + name + `"))`
	pg.waitJS(`!!`+row, 10*time.Second, "the new platform's row")
	id := pg.str(row + `.dataset.platformId`)
	t.Cleanup(func() { s.do(t, http.MethodDelete, "/api/v1/exports/platforms/"+id, tok, nil) })
	if text := pg.str(row + `.textContent`); !strings.Contains(text, "SFTP") || !strings.Contains(text, "google_shopping") {
		t.Errorf("platform row %q", text)
	}

	pg.do(chromedp.Click(chromedp.CSS(`tr[data-platform-id="` + id + `"] [data-action=test]`)))
	pg.waitJS(`document.getElementById("p-test-heading").dataset.ok === "1" && document.querySelectorAll("#p-test-steps li[data-ok='1']").length === 3`,
		30*time.Second, "a passing connection test of three steps")

	pg.do(chromedp.Click(chromedp.CSS(`tr[data-platform-id="` + id + `"] [data-action=export]`)))
	// The user has no other job: the first row is this export's (its notices come and go fast).
	pg.waitJS(`!!document.querySelector("#job-rows tr[data-job-id]")`, 10*time.Second, "the export's row")
	job := pg.str(`document.querySelector("#job-rows tr").dataset.jobId`)
	pg.waitJS(`(document.querySelector('tr[data-job-id="`+job+`"] .delivery') || {}).textContent.startsWith("delivered to sftp://")`,
		60*time.Second, "the job's row to show its delivery")

	artifacts := filepath.Join(s.root, ".stack", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(artifacts, "ui-platforms.png")
	pg.screenshot(png)
	t.Logf("screenshot of the platforms: %s", png)

	del := chromedp.CSS(`tr[data-platform-id="` + id + `"] [data-action=delete]`)
	pg.do(chromedp.Click(del))
	pg.waitJS(`document.querySelector('tr[data-platform-id="`+id+`"] [data-action=delete]').textContent === "Confirm delete"`, 5*time.Second, "the delete confirmation")
	pg.do(chromedp.Click(del))
	pg.waitJS(`!document.querySelector('tr[data-platform-id="`+id+`"]')`, 10*time.Second, "the deleted platform's row to go")
	if code, _ := s.do(t, http.MethodGet, "/api/v1/exports/platforms/"+id, tok, nil); code != http.StatusNotFound {
		t.Errorf("deleted in the page, GET = %d", code)
	}
	pg.checkConsole()
}
