package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const schedulesPath = basePath + "/schedules"

const schedulesDoc = `
Manages scheduled exports.

  schedules list [--enabled true|false] [-o table|json]
  schedules create NAME (--cron EXPR | --every MINUTES) [--tz ZONE] [--entity products] [--format csv]
                   [--fields a,b] [--filter k=v] [--option k=v] [--misfire run_once|skip]
                   [--overlap skip|queue] [--retries N] [--retry-delay SECONDS] [--disabled]
  schedules get ID            the schedule as JSON
  schedules toggle ID [--on | --off]
  schedules run ID            one run now, outside the timetable; prints the job id
  schedules next ID [--count N]
  schedules runs ID [--limit N] [-o table|json]
  schedules delete ID

Times print in the schedule's zone with UTC beside them. A wall-clock time that does not exist
(clocks jump forward) fires at the first instant after the gap; one that occurs twice fires at
its first occurrence.

examples:
  exportctl schedules create "Nightly active" --cron "0 2 * * *" --tz Europe/Paris --filter status=active
  exportctl schedules create "Quarter-hourly" --every 15 --format json --option lines=true
  exportctl schedules next 01a2… --count 10`

// schedule is the part of a schedule the CLI shows.
type schedule struct {
	ID              string     `json:"id"`
	Name            string     `json:"name"`
	ScheduleType    string     `json:"schedule_type"`
	CronExpression  string     `json:"cron_expression"`
	IntervalMinutes int        `json:"interval_minutes"`
	Timezone        string     `json:"timezone"`
	Enabled         bool       `json:"enabled"`
	NextRunAt       *time.Time `json:"next_run_at"`
	Owner           string     `json:"owner"`
	ExportConfig    struct {
		Entity string `json:"entity"`
		Format string `json:"format"`
	} `json:"export_config"`
	Stats struct {
		Runs                int        `json:"runs"`
		Successes           int        `json:"successes"`
		Failures            int        `json:"failures"`
		LastRunAt           *time.Time `json:"last_run_at"`
		LastStatus          *string    `json:"last_status"`
		ConsecutiveFailures int        `json:"consecutive_failures"`
	} `json:"stats"`
}

func (s schedule) timetable() string {
	if s.ScheduleType == "interval" {
		return fmt.Sprintf("every %d min", s.IntervalMinutes)
	}
	return s.CronExpression
}

// zoned shows t in zone, with UTC beside it.
func zoned(t time.Time, zone string) string {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01-02 15:04 MST") + " (" + t.UTC().Format("15:04Z") + ")"
}

func (a *app) cmdSchedules(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(a.stderr, "usage: exportctl schedules SUBCOMMAND"+schedulesDoc)
		if len(args) == 0 {
			return usageError{}
		}
		return errHelp
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "list":
		return a.schedulesList(ctx, rest)
	case "create":
		return a.schedulesCreate(ctx, rest)
	case "get", "toggle", "run", "next", "runs", "delete":
		return a.scheduleOne(ctx, sub, rest)
	}
	return usagef("schedules: unknown subcommand %q (%s)", sub, strings.Join(schedulesSubs, ", "))
}

// schedulesSubs are the subcommands of schedules, as cmdSchedules dispatches them.
var schedulesSubs = []string{"list", "create", "get", "toggle", "run", "next", "runs", "delete"}

func (a *app) schedulesList(ctx context.Context, args []string) error {
	fs := a.flagSet("schedules list", nil)
	fs.Usage = commandUsage(fs, "schedules list [flags]", "\nLists schedules, newest first.")
	enabled := fs.String("enabled", "", "only enabled (true) or disabled (false) schedules")
	asJSON := outputFlags(fs)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	q := url.Values{"limit": {"500"}}
	if *enabled != "" {
		q.Set("enabled", *enabled)
	}
	items, printed, err := listItems[schedule](ctx, a, c, schedulesPath+"?"+q.Encode(), "listing schedules", *asJSON)
	if err != nil || printed {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTIMETABLE\tZONE\tON\tNEXT RUN\tLAST\tRUNS\tOK\tFAILED\tEXPORT")
	for _, s := range items {
		next, last := "-", "-"
		if s.NextRunAt != nil {
			next = zoned(*s.NextRunAt, s.Timezone)
		}
		if s.Stats.LastStatus != nil {
			last = *s.Stats.LastStatus
		}
		on := "off"
		if s.Enabled {
			on = "on"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s %s\n", s.ID, cell(s.Name), s.timetable(), s.Timezone, on,
			next, last, s.Stats.Runs, s.Stats.Successes, s.Stats.Failures, s.ExportConfig.Format, s.ExportConfig.Entity)
	}
	return tw.Flush()
}

func (a *app) schedulesCreate(ctx context.Context, args []string) error {
	fs := a.flagSet("schedules create", nil)
	fs.Usage = commandUsage(fs, "schedules create NAME [flags]", "\nCreates a schedule; prints its id and next fire times on stderr.")
	cron := fs.String("cron", "", "a five-field cron expression or @hourly, @daily, @weekly, @monthly, @yearly")
	every := fs.Int("every", 0, "an interval in minutes (1 to 525600) instead of --cron")
	tz := fs.String("tz", "", "the IANA time zone of the timetable (default: the server's, Europe/Paris)")
	entity := fs.String("entity", "products", "what to export: products or suppliers")
	format := fs.String("format", "csv", "file format: csv, excel or json")
	fields := fs.String("fields", "", "columns, in order, comma-separated")
	var filters, options listFlag
	fs.Var(&filters, "filter", "a filter `key=value` (repeatable)")
	fs.Var(&options, "option", "an export option `key=value` (repeatable)")
	misfire := fs.String("misfire", "", "after downtime: run_once (default) or skip")
	overlap := fs.String("overlap", "", "while the previous run goes on: skip (default) or queue")
	retries := fs.Int("retries", 0, "retries of a failed run, 0 to 10")
	delay := fs.Int("retry-delay", 300, "seconds before a retry")
	disabled := fs.Bool("disabled", false, "create it switched off")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	body := map[string]any{"name": pos[0], "max_retries": *retries, "retry_delay_seconds": *delay, "enabled": !*disabled}
	switch {
	case *cron != "" && *every != 0:
		return usagef("schedules create: give --cron or --every, not both")
	case *cron != "":
		body["schedule_type"], body["cron_expression"] = "cron", *cron
	case *every != 0:
		body["schedule_type"], body["interval_minutes"] = "interval", *every
	default:
		return usagef("schedules create: give --cron EXPR or --every MINUTES")
	}
	for k, v := range map[string]string{"timezone": *tz, "misfire_policy": *misfire, "overlap_policy": *overlap} {
		if v != "" {
			body[k] = v
		}
	}
	cfg := map[string]any{"entity": *entity, "format": *format}
	if f := csvList(*fields); f != nil {
		cfg["fields"] = f
	}
	if cfg["filters"], err = buildObject("filter", filters, nil); err != nil {
		return err
	}
	if cfg["options"], err = buildObject("option", options, nil); err != nil {
		return err
	}
	for _, k := range []string{"filters", "options"} {
		if m, _ := cfg[k].(map[string]any); m == nil {
			delete(cfg, k)
		}
	}
	body["export_config"] = cfg
	c, err := a.client()
	if err != nil {
		return err
	}
	var s schedule
	if err := c.do(ctx, http.MethodPost, schedulesPath, body, &s); err != nil {
		return fmt.Errorf("creating the schedule: %w", err)
	}
	fmt.Fprintln(a.stdout, s.ID)
	if s.NextRunAt != nil {
		fmt.Fprintf(a.stderr, "schedule %q created; next run %s\n", s.Name, zoned(*s.NextRunAt, s.Timezone))
	} else {
		fmt.Fprintf(a.stderr, "schedule %q created (off)\n", s.Name)
	}
	return nil
}

func (a *app) scheduleOne(ctx context.Context, sub string, args []string) error {
	fs := a.flagSet("schedules "+sub, nil)
	fs.Usage = commandUsage(fs, "schedules "+sub+" ID [flags]", schedulesDoc)
	on := fs.Bool("on", false, "toggle: switch it on (whatever it is now)")
	off := fs.Bool("off", false, "toggle: switch it off (whatever it is now)")
	count := fs.Int("count", 5, "next: how many fire times, 1 to 1000")
	limit := fs.Int("limit", 50, "runs: how many log entries, 1 to 500")
	asJSON := outputFlags(fs) // runs
	c, id, err := a.jobCommand(fs, args)
	if err != nil {
		return err
	}
	path := schedulesPath + "/" + url.PathEscape(id)
	switch sub {
	case "get":
		var raw json.RawMessage
		if err := c.do(ctx, http.MethodGet, path, nil, &raw); err != nil {
			return fmt.Errorf("schedule %s: %w", id, err)
		}
		_, err := fmt.Fprintf(a.stdout, "%s\n", raw)
		return err
	case "toggle":
		var body any
		switch {
		case *on && *off:
			return usagef("schedules toggle: --on or --off, not both")
		case *on:
			body = map[string]bool{"enabled": true}
		case *off:
			body = map[string]bool{"enabled": false}
		}
		var s schedule
		if err := c.do(ctx, http.MethodPost, path+"/toggle", body, &s); err != nil {
			return fmt.Errorf("cannot toggle schedule %s: %w", id, err)
		}
		state := "off"
		if s.Enabled {
			state = "on"
			if s.NextRunAt != nil {
				state += ", next run " + zoned(*s.NextRunAt, s.Timezone)
			}
		}
		fmt.Fprintf(a.stdout, "schedule %s %s\n", id, state)
		return nil
	case "run":
		var acc struct {
			JobID string `json:"job_id"`
		}
		if err := c.do(ctx, http.MethodPost, path+"/run", nil, &acc); err != nil {
			return fmt.Errorf("cannot run schedule %s: %w", id, err)
		}
		fmt.Fprintln(a.stdout, acc.JobID)
		return nil
	case "next":
		var next struct {
			Runs []struct {
				At    time.Time `json:"at"`
				Local string    `json:"local"`
			} `json:"runs"`
		}
		if err := c.do(ctx, http.MethodGet, path+"/next?count="+strconv.Itoa(*count), nil, &next); err != nil {
			return fmt.Errorf("schedule %s: %w", id, err)
		}
		for _, r := range next.Runs {
			fmt.Fprintf(a.stdout, "%s  %s\n", r.Local, r.At.UTC().Format(time.RFC3339))
		}
		return nil
	case "runs":
		var raw json.RawMessage
		if err := c.do(ctx, http.MethodGet, path+"/runs?limit="+strconv.Itoa(*limit), nil, &raw); err != nil {
			return fmt.Errorf("schedule %s: %w", id, err)
		}
		if *asJSON {
			_, err := fmt.Fprintf(a.stdout, "%s\n", raw)
			return err
		}
		var page struct {
			Items []struct {
				ScheduledFor time.Time `json:"scheduled_for"`
				Local        string    `json:"scheduled_for_local"`
				Trigger      string    `json:"trigger"`
				Status       string    `json:"status"`
				Reason       string    `json:"reason"`
				JobIDs       []string  `json:"job_ids"`
			} `json:"items"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return fmt.Errorf("schedule %s: decoding the run log: %w", id, err)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FIRE TIME\tUTC\tTRIGGER\tSTATUS\tJOBS\tREASON")
		for _, r := range page.Items {
			jobs := "-"
			if len(r.JobIDs) > 0 {
				jobs = strings.Join(r.JobIDs, ",")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Local, r.ScheduledFor.UTC().Format(time.RFC3339), r.Trigger, r.Status, jobs, cell(r.Reason))
		}
		return tw.Flush()
	case "delete":
		if err := c.do(ctx, http.MethodDelete, path, nil, nil); err != nil {
			return fmt.Errorf("cannot delete schedule %s: %w", id, err)
		}
		fmt.Fprintf(a.stdout, "schedule %s deleted\n", id)
		return nil
	}
	return usagef("schedules: unknown subcommand %q", sub)
}
