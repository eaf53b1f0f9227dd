package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

const jobsDoc = `
Lists export jobs, newest first, as a table; -o json prints the API's own answer, one JSON
document: {"items": [job...], "next_cursor": ...}. --all follows the pages to the end.`

const jobsGetDoc = `
Shows one export job as a table row; -o json prints the job as the API gives it.`

// jobsSubs are the subcommands of jobs; without one, jobs lists.
var jobsSubs = []string{"list", "get"}

func (a *app) cmdJobs(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "list":
			return a.jobsList(ctx, "jobs list", args[1:])
		case "get":
			return a.jobsGet(ctx, args[1:])
		}
	}
	return a.jobsList(ctx, "jobs", args)
}

func (a *app) jobsGet(ctx context.Context, args []string) error {
	fs := a.flagSet("jobs get", nil)
	fs.Usage = commandUsage(fs, "jobs get ID [flags]", jobsGetDoc)
	asJSON := outputFlags(fs)
	c, id, err := a.jobCommand(fs, args)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, basePath+"/"+url.PathEscape(id), nil, &raw); err != nil {
		return fmt.Errorf("reading export %s: %w", id, err)
	}
	if *asJSON {
		_, err := fmt.Fprintf(a.stdout, "%s\n", raw) // the answer, as it came
		return err
	}
	var j job
	if err := json.Unmarshal(raw, &j); err != nil {
		return fmt.Errorf("reading export %s: decoding the answer: %w", id, err)
	}
	return writeTable(a, []job{j})
}

func (a *app) jobsList(ctx context.Context, name string, args []string) error {
	fs := a.flagSet(name, nil)
	fs.Usage = commandUsage(fs, name+" [flags]", jobsDoc)
	status := fs.String("status", "", "only jobs in this status: queued, running, completed, failed, cancelled, expired")
	entity := fs.String("entity", "", "only jobs of this entity: products or suppliers")
	format := fs.String("format", "", "only jobs of this format: csv, excel or json")
	limit := fs.Int("limit", 0, "jobs per page, 1 to 500 (default: the server's, 50)")
	all := fs.Bool("all", false, "follow next_cursor to list every job")
	asJSON := outputFlags(fs)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"status": *status, "entity": *entity, "format": *format} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *limit != 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}

	var items []json.RawMessage
	var raw json.RawMessage
	for {
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor *string           `json:"next_cursor"`
		}
		path := basePath
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		if err := c.do(ctx, http.MethodGet, path, nil, &raw); err != nil {
			return fmt.Errorf("listing jobs: %w", err)
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return fmt.Errorf("listing jobs: decoding the answer: %w", err)
		}
		items = append(items, page.Items...)
		if !*all || page.NextCursor == nil || *page.NextCursor == "" {
			break
		}
		q.Set("cursor", *page.NextCursor)
	}
	if *asJSON {
		if !*all {
			_, err := fmt.Fprintf(a.stdout, "%s\n", raw) // the answer, as it came
			return err
		}
		if items == nil {
			items = []json.RawMessage{}
		}
		b, err := json.Marshal(map[string]any{"items": items, "next_cursor": ""}) // every page read: none next, as the API says it
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", b)
		return err
	}
	jobs := make([]job, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it, &jobs[i]); err != nil {
			return fmt.Errorf("listing jobs: decoding a job: %w", err)
		}
	}
	return writeTable(a, jobs)
}

// writeTable prints jobs as aligned columns.
func writeTable(a *app, jobs []job) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tFORMAT\tENTITY\tPROGRESS\tROWS\tCREATED\tBY\tFILE")
	for _, j := range jobs {
		rows := strconv.FormatInt(j.RowsDone, 10)
		if j.RowsTotal != nil {
			rows += "/" + strconv.FormatInt(*j.RowsTotal, 10)
		}
		file := "-"
		if j.File != nil {
			file = fmt.Sprintf("%s (%s)", j.File.FileName, humanBytes(j.File.SizeBytes))
		}
		status := j.Status
		if j.Status == statusRunning && j.Phase != "" {
			status += "/" + j.Phase
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f%%\t%s\t%s\t%s\t%s\n", j.id(), status, j.Format, j.Entity,
			j.Progress, rows, j.CreatedAt.Local().Format(time.DateTime), cell(j.RequestedBy), file)
	}
	return tw.Flush()
}

// cell keeps a table cell on one line and never empty.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	return s
}

// jobCommand parses the one job ID of a command and makes the API client.
func (a *app) jobCommand(fs *flag.FlagSet, args []string) (*client, string, error) {
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return nil, "", err
	}
	c, err := a.client()
	if err != nil {
		return nil, "", err
	}
	return c, pos[0], nil
}

func (a *app) cmdCancel(ctx context.Context, args []string) error {
	fs := a.flagSet("cancel", nil)
	fs.Usage = commandUsage(fs, "cancel ID", "Cancels a queued or running export job. A job that has already ended is an error.")
	c, id, err := a.jobCommand(fs, args)
	if err != nil {
		return err
	}
	var j job
	if err := c.do(ctx, http.MethodPost, basePath+"/"+url.PathEscape(id)+"/cancel", nil, &j); err != nil {
		return fmt.Errorf("cannot cancel export %s: %w", id, err)
	}
	fmt.Fprintf(a.stdout, "export %s %s\n", id, firstNonEmpty(j.Status, statusCancelled))
	return nil
}

func (a *app) cmdDelete(ctx context.Context, args []string) error {
	fs := a.flagSet("delete", nil)
	fs.Usage = commandUsage(fs, "delete ID", "Deletes an export job and its file, cancelling the job if it is queued or running.")
	c, id, err := a.jobCommand(fs, args)
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodDelete, basePath+"/"+url.PathEscape(id), nil, nil); err != nil {
		return fmt.Errorf("cannot delete export %s: %w", id, err)
	}
	fmt.Fprintf(a.stdout, "export %s deleted\n", id)
	return nil
}

const tokenDoc = `
Prints a token signed (HS256) with $JWT_SECRET, else the local stack's default secret, for
--token, $EXPORT_TOKEN or curl -H "Authorization: Bearer $(exportctl token)".`

func (a *app) cmdToken(_ context.Context, args []string) error {
	fs := a.flagSet("token", nil)
	fs.Usage = commandUsage(fs, "token [flags]", tokenDoc)
	sub := fs.String("sub", "", "subject, the user id (default $USER)")
	name := fs.String("name", "", "display name (omitted when empty)")
	perms := fs.String("perms", auth.PermReadExports+","+auth.PermWriteExports, "comma-separated permissions")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	p := auth.Principal{Subject: firstNonEmpty(*sub, localUser(a.getenv)), Name: *name, Permissions: csvList(*perms)}
	if p.Permissions == nil {
		p.Permissions = []string{}
	}
	secret := firstNonEmpty(a.getenv("JWT_SECRET"), defaultSecret)
	tok, err := auth.Mint([]byte(secret), p, *ttl, a.now())
	if err != nil {
		return usagef("token: %v", err)
	}
	_, err = fmt.Fprintln(a.stdout, tok)
	return err
}
