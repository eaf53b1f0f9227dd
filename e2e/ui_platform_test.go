package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/ssh"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// uiPlatform is what the test reads back of a platform the page saved.
type uiPlatform struct {
	Name          string `json:"name"`
	Type          string `json:"type"`
	Version       int64  `json:"version"`
	DefaultConfig struct {
		Headers map[string]string `json:"headers"`
	} `json:"default_config"`
	Destination map[string]any `json:"destination"`
}

// TestUIPlatforms drives the Platforms view in headless Chromium: a platform saved without
// the SFTP server's host key shows the error next to that input; with it, the platform is
// listed, its connection test passes step by step, "Export now" starts an export whose row
// shows the file delivered to the SFTP server. Edit fills the form with the platform as stored
// (secret references included), shows a refused change next to its input and saves with PUT:
// the new name and directory are listed and stored, what the form does not show (a column
// title) kept and the version incremented; here with a key the server refuses,
// so the next export's delivery fails after its retries; the platform mended through Edit,
// "Retry delivery" on the job's row delivers the file into the new directory. Delete asks
// twice. A screenshot lands in .stack/artifacts/ui-platforms.png.
func TestUIPlatforms(t *testing.T) {
	s := getStack(t)
	bin := chromiumPath(t)
	s.seedOnce(t, formatsCatalog)
	ctx := newBrowser(t, bin)
	pg := &uiPage{t: t, ctx: ctx}
	// A user of its own: the page lists this run's jobs only (a failed delivery of an earlier
	// run's job would otherwise be the first row).
	tok := s.token(t, unique("e2e-ui-platforms"), auth.PermReadExports, auth.PermWriteExports)
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

	// Edit: the form holds the platform, in edit mode.
	getPlatform := func() uiPlatform {
		t.Helper()
		code, b := s.do(t, http.MethodGet, "/api/v1/exports/platforms/"+id, tok, nil)
		var p uiPlatform
		if code != http.StatusOK || json.Unmarshal(b, &p) != nil {
			t.Fatalf("GET platform = %d %s", code, b)
		}
		return p
	}
	edit := func() {
		t.Helper()
		button := `tr[data-platform-id="` + id + `"] [data-action=edit]`
		pg.waitJS(`!!document.querySelector('`+button+`')`, 5*time.Second, "the platform's Edit button")
		pg.do(chromedp.Click(chromedp.CSS(button)))
		pg.waitJS(`document.getElementById("p-save").textContent === "Save changes" && !document.getElementById("p-cancel-edit").hidden &&
			document.activeElement === document.getElementById("platform-form-heading")`, 5*time.Second, "the edit form")
	}
	createMode := `document.getElementById("p-save").textContent === "Create platform" && document.getElementById("p-cancel-edit").hidden &&
		document.getElementById("p-name").value === ""`
	// A column title the form does not show, set through the API meanwhile (version 2): Edit
	// reads the platform afresh, and its saves keep the title.
	code, b := s.do(t, http.MethodGet, "/api/v1/exports/platforms/"+id, tok, nil)
	var raw map[string]any
	if code != http.StatusOK || json.Unmarshal(b, &raw) != nil {
		t.Fatalf("GET platform = %d %s", code, b)
	}
	raw["default_config"] = map[string]any{"headers": map[string]string{"sku": "offer_id"}}
	if code, b := s.do(t, http.MethodPut, "/api/v1/exports/platforms/"+id, tok, raw); code != http.StatusOK {
		t.Fatalf("PUT platform = %d %s", code, b)
	}
	edit()
	if got := pg.str(`document.querySelector('tr[data-platform-id="` + id + `"]').getAttribute("aria-current")`); got != "true" {
		t.Errorf("the edited platform's row: aria-current %q", got)
	}
	for input, want := range map[string]string{"p-name": name, "p-type": "google_shopping", "p-dest": "sftp",
		"p-sftp-host": "127.0.0.1", "p-sftp-port": "2222", "p-sftp-user": dest["user"].(string),
		"p-sftp-key": dest["private_key_ref"].(string), "p-sftp-hostkey": dest["host_key"].(string),
		"p-sftp-dir": dest["directory"].(string)} {
		if got := pg.str(`document.getElementById("` + input + `").value`); got != want {
			t.Errorf("edit form: %s = %q, want %q", input, got, want)
		}
	}
	// Cancel goes back to an empty "New platform" form and changes nothing.
	pg.do(chromedp.Click(chromedp.ID("p-cancel-edit")))
	pg.waitJS(createMode+` && document.getElementById("platform-form-heading").textContent === "New platform"`, 5*time.Second, "the form back in create mode")
	if p := getPlatform(); p.Version != 2 || p.Name != name {
		t.Errorf("after Cancel: %+v, want version 2 named %q", p, name)
	}

	// A refused change shows next to its input, as on create; the platform stays as it was.
	edit()
	name2, dir2 := unique("UI Google edited"), unique("e2e-ui-edited")
	pg.do(chromedp.Steps(
		setValue("p-name", name2),
		setValue("p-sftp-dir", "../"+dir2),
		chromedp.Click(chromedp.ID("p-save")),
	))
	pg.waitJS(`document.getElementById("err-p-sftp-dir").textContent.includes("..") && document.getElementById("p-sftp-dir").getAttribute("aria-invalid") === "true"`,
		10*time.Second, "the directory's error")
	if p := getPlatform(); p.Version != 2 {
		t.Errorf("a refused edit changed the platform: %+v", p)
	}
	// Saved with a key the server does not accept, so that the next delivery fails.
	wrongKey := "file:" + wrongSFTPKey(t)
	pg.do(chromedp.Steps(
		setValue("p-sftp-dir", dir2),
		setValue("p-sftp-key", wrongKey),
		chromedp.Click(chromedp.ID("p-save")),
	))
	pg.waitJS(createMode+` && (document.querySelector('tr[data-platform-id="`+id+`"]') || {}).textContent.includes("`+name2+`")`,
		10*time.Second, "the edited platform's row")
	if text := pg.str(`document.querySelector('tr[data-platform-id="` + id + `"]').textContent`); !strings.Contains(text, "/"+dir2) || strings.Contains(text, name) {
		t.Errorf("edited platform row %q", text)
	}
	if p := getPlatform(); p.Name != name2 || p.Version != 3 || p.Type != "google_shopping" || p.DefaultConfig.Headers["sku"] != "offer_id" ||
		p.Destination["directory"] != dir2 || p.Destination["private_key_ref"] != wrongKey ||
		p.Destination["host_key"] != dest["host_key"] || p.Destination["port"] != float64(2222) {
		t.Errorf("after the edit, GET = %+v", p)
	}

	// Its export's delivery fails after the retries (2, 4, 8, 16 s here).
	pg.do(chromedp.Click(chromedp.CSS(`tr[data-platform-id="` + id + `"] [data-action=export]`)))
	pg.waitJS(`(document.querySelector("#job-rows tr[data-job-id]") || {dataset: {}}).dataset.jobId !== "`+job+`"`, 10*time.Second, "the second export's row")
	job2 := pg.str(`document.querySelector("#job-rows tr").dataset.jobId`)
	row2 := `document.querySelector('tr[data-job-id="` + job2 + `"]')`
	pg.waitJS(row2+`.querySelector(".delivery").dataset.status === "failed" && !`+row2+`.querySelector("[data-action=redeliver]").hidden`,
		2*time.Minute, "the delivery to fail and offer a retry")
	if text := pg.str(row2 + `.querySelector(".delivery").textContent`); !strings.Contains(text, "unable to authenticate") {
		t.Errorf("the failed delivery says %q", text)
	}

	// Mended through Edit (the wrong reference shows), then "Retry delivery".
	edit()
	if got := pg.str(`document.getElementById("p-sftp-key").value`); got != wrongKey {
		t.Errorf("edit form: the key reference %q, want %q", got, wrongKey)
	}
	pg.do(chromedp.Steps(setValue("p-sftp-key", dest["private_key_ref"].(string)), chromedp.Click(chromedp.ID("p-save"))))
	pg.waitJS(createMode, 10*time.Second, "the mended platform saved")
	if p := getPlatform(); p.Version != 4 || p.Destination["private_key_ref"] != dest["private_key_ref"] || p.DefaultConfig.Headers["sku"] != "offer_id" {
		t.Errorf("after mending, GET = %+v", p)
	}
	pg.do(chromedp.Click(chromedp.CSS(`tr[data-job-id="` + job2 + `"] [data-action=redeliver]`)))
	pg.waitJS(row2+`.querySelector(".delivery").textContent.startsWith("delivered to sftp://") && `+row2+`.querySelector("[data-action=redeliver]").hidden`,
		time.Minute, "the retried delivery")
	target := strings.TrimPrefix(pg.str(row2+`.querySelector(".delivery").textContent`), "delivered to ")
	code, b = s.do(t, http.MethodGet, "/api/v1/exports/"+job2, tok, nil)
	var j2 deliveryView
	if code != http.StatusOK || json.Unmarshal(b, &j2) != nil || j2.Delivery == nil || j2.File == nil {
		t.Fatalf("GET job %s = %d %s", job2, code, b)
	}
	server := "sftp://" + dest["user"].(string) + "@127.0.0.1:2222/"
	if j2.Delivery.Status != "delivered" || j2.Delivery.Target != target || !strings.HasPrefix(target, server+dir2+"/") {
		t.Errorf("retried delivery %+v (the row says %q), want delivered under %s", j2.Delivery, target, server+dir2)
	} else if got := s.sftpGet(t, strings.TrimPrefix(target, server)); sha(got) != j2.File.SHA256 || !strings.HasPrefix(string(got), "offer_id\ttitle\t") {
		t.Errorf("the delivered file: sha256 %s (announced %s), starting %q", sha(got), j2.File.SHA256, got[:min(len(got), 40)])
	}

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

// wrongSFTPKey writes a private key the SFTP server does not know and returns its path.
func wrongSFTPKey(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wrong_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
