package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// TestUISchedules drives the Schedules view in headless Chromium as a catalog manager would:
// types a cron expression and sees the next five fire times (and the error of a bad one next
// to its input), creates an every-minute schedule of one product's CSV, watches its fire
// appear in the job table and complete live, reads the run log, runs it now, switches it off
// and deletes it. A screenshot lands in .stack/artifacts/ui-schedules.png.
func TestUISchedules(t *testing.T) {
	s := getStack(t)
	bin := chromiumPath(t)
	s.seedOnce(t, 200000)
	conn := s.exportsConn(t)
	var sku string
	cat, err := pgx.Connect(context.Background(), s.catalogDB)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.QueryRow(context.Background(), `SELECT sku FROM products ORDER BY id LIMIT 1`).Scan(&sku); err != nil {
		t.Fatal(err)
	}
	cat.Close(context.Background())

	ctx := newBrowser(t, bin)
	pg := &uiPage{t: t, ctx: ctx}
	tok := s.token(t, "e2e-ui-sched", auth.PermReadExports, auth.PermWriteExports)
	pg.do(chromedp.Navigate(s.api + "/#token=" + tok))
	pg.waitJS(`document.getElementById("conn").dataset.state === "live"`, 20*time.Second, "the live connection")
	pg.waitJS(`!!document.getElementById("fld-sku") && !document.getElementById("schedules").hidden`, 10*time.Second, "the fields and the schedules")

	// The preview follows the typing: a bad expression is named next to its input...
	pg.do(chromedp.Steps(
		setValue("s-timezone", "Asia/Kolkata"),
		setValue("s-cron", ""),
		chromedp.SendKeys(chromedp.ID("s-cron"), "61 * * * *"),
	))
	pg.waitJS(`document.getElementById("err-s-cron").textContent.includes("cron")`, 10*time.Second, "the cron error")
	if got := pg.str(`document.getElementById("s-cron").getAttribute("aria-invalid")`); got != "true" {
		t.Errorf("the cron input is not marked invalid (%q)", got)
	}
	// ...and a good one shows its next five fire times, in the zone and in UTC.
	pg.do(chromedp.Steps(setValue("s-cron", ""), chromedp.SendKeys(chromedp.ID("s-cron"), "* * * * *")))
	pg.waitJS(`document.querySelectorAll("#s-next li[data-at]").length === 5 && document.getElementById("err-s-cron").textContent === ""`,
		10*time.Second, "five previewed fire times")
	first, err := time.Parse(time.RFC3339, pg.str(`document.querySelector("#s-next li").dataset.at`))
	if err != nil || first.Second() != 0 || time.Until(first) > time.Minute+5*time.Second || time.Until(first) < -5*time.Second {
		t.Errorf("first previewed fire time %s (%v), want the next minute", first, err)
	}
	if text := pg.str(`document.querySelector("#s-next li").textContent`); !strings.Contains(text, "UTC") || !strings.Contains(text, "GMT+5:30") {
		t.Errorf("previewed time %q does not show the zone and UTC", text)
	}

	// The export: one product's sku and name, chosen in the New export form.
	pg.do(chromedp.Steps(
		chromedp.Click(chromedp.ID("fields-none")),
		chromedp.Click(chromedp.ID("fld-sku")),
		chromedp.Click(chromedp.ID("fld-name")),
		setValue("f-p-search", sku),
		setValue("s-name", ""),
		chromedp.SendKeys(chromedp.ID("s-name"), "e2e UI every minute"),
		setValue("s-overlap", "queue"),
		chromedp.Click(chromedp.ID("s-save")),
	))
	pg.waitJS(`[...document.querySelectorAll("#schedule-rows tr")].some(tr => tr.textContent.includes("e2e UI every minute"))`,
		10*time.Second, "the new schedule's row")
	id := pg.str(`[...document.querySelectorAll("#schedule-rows tr")].find(tr => tr.textContent.includes("e2e UI every minute")).dataset.scheduleId`)
	t.Cleanup(func() { s.do(t, http.MethodDelete, "/api/v1/exports/schedules/"+id, tok, nil) })
	row := `document.querySelector('tr[data-schedule-id="` + id + `"]')`
	if got := pg.str(row + `.querySelector("[data-action=toggle]").getAttribute("aria-pressed")`); got != "true" {
		t.Errorf("the new schedule is not shown on (%q)", got)
	}
	sc := s.getSchedule(t, tok, id)
	if sc.Timezone != "Asia/Kolkata" || sc.NextRunAt == nil {
		t.Fatalf("created schedule %+v", sc)
	}

	// Its fire appears in the job table and completes there, live.
	job := waitScheduledJob(t, conn, id, *sc.NextRunAt, time.Until(*sc.NextRunAt)+30*time.Second)
	pg.waitRow(job, 60*time.Second, func(r uiRow) bool { return r.Status == "completed" })
	pg.waitJS(row+`.textContent.includes("completed") && `+row+`.textContent.includes("1 ok")`, 20*time.Second, "the schedule's last status")
	code, data := s.do(t, http.MethodGet, "/api/v1/exports/download/"+job, tok, nil) // the schedule owner's job
	if code != http.StatusOK {
		t.Fatalf("download = %d %.300s", code, data)
	}
	if !strings.Contains(string(data), sku) || strings.Count(string(data), "\n") != 2 {
		t.Errorf("the scheduled file is not the one product: %q", data)
	}

	// The run log names the fire time and its job.
	pg.do(chromedp.Click(chromedp.CSS(`tr[data-schedule-id="` + id + `"] [data-action=runs]`)))
	// Its job shows by the random tail of its id (a UUIDv7 starts with the time: alike for
	// every job of the hour), the full id in the title.
	tail := strings.ReplaceAll(job, "-", "")[24:]
	pg.waitJS(`!document.getElementById("run-log").hidden && [...document.querySelectorAll("#run-rows button.id")].some(b =>
		b.dataset.id === "`+job+`" && b.title === "`+job+`" && b.textContent === "`+tail+`")`,
		10*time.Second, "the run log")

	// Run now, outside the timetable: another job, shown in the table.
	before := countSQL(t, s.exportsDB, `SELECT count(*) FROM jobs WHERE schedule_id = '`+id+`'`)
	pg.do(chromedp.Click(chromedp.CSS(`tr[data-schedule-id="` + id + `"] [data-action=run]`)))
	pg.waitJS(`document.getElementById("notice").textContent.includes("started job")`, 10*time.Second, "the run-now notice")
	if after := countSQL(t, s.exportsDB, `SELECT count(*) FROM jobs WHERE schedule_id = '`+id+`'`); after != before+1 {
		t.Errorf("run now: %d jobs of the schedule, want %d", after, before+1)
	}

	// Off: the page and the API agree.
	pg.do(chromedp.Click(chromedp.CSS(`tr[data-schedule-id="` + id + `"] [data-action=toggle]`)))
	pg.waitJS(row+`.querySelector("[data-action=toggle]").getAttribute("aria-pressed") === "false"`, 10*time.Second, "the switched-off schedule")
	if got := s.getSchedule(t, tok, id); got.Enabled {
		t.Error("switched off in the page, still enabled in the API")
	}
	artifacts := filepath.Join(s.root, ".stack", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(artifacts, "ui-schedules.png")
	pg.screenshot(png)
	t.Logf("screenshot of the schedules: %s", png)

	// Delete asks twice.
	del := chromedp.CSS(`tr[data-schedule-id="` + id + `"] [data-action=delete]`)
	pg.do(chromedp.Click(del))
	pg.waitJS(row+`.querySelector("[data-action=delete]").textContent === "Confirm delete"`, 5*time.Second, "the delete confirmation")
	pg.do(chromedp.Click(del))
	pg.waitJS(`!`+row, 10*time.Second, "the deleted schedule's row to go")
	if code, _ := s.do(t, http.MethodGet, "/api/v1/exports/schedules/"+id, tok, nil); code != http.StatusNotFound {
		t.Errorf("deleted in the page, GET = %d", code)
	}
	pg.checkConsole()
}
