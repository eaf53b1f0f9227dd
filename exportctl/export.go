package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// errInterrupted ends a command stopped by Ctrl-C (exit status 130).
var errInterrupted = errors.New("interrupted")

// exportRequest is the body of POST /api/v1/exports/{format}/{entity} (CONTRACT §4).
type exportRequest struct {
	Fields        []string       `json:"fields,omitempty"`
	ExcludeFields []string       `json:"exclude_fields,omitempty"`
	Filters       map[string]any `json:"filters,omitempty"`
	Options       map[string]any `json:"options,omitempty"`
	FileName      string         `json:"file_name,omitempty"`
	// With a platform, entity and format may come from it (POST /create).
	Entity     string `json:"entity,omitempty"`
	Format     string `json:"format,omitempty"`
	PlatformID string `json:"platform_id,omitempty"`
}

type exportFlags struct {
	entity, format string
	formatSet      bool
	body           exportRequest
	out            string
	detach         bool
}

const exportDoc = `
Requests an export of ENTITY (products or suppliers), follows its progress and downloads the
file, checking its SHA-256, to --out (default: the file name the server gives, here). Ctrl-C
cancels the export on the server, unless --detach, which prints the job id and returns at once.

--filter and --option take key=value and may be repeated. Values are typed: 3,7 is the list
[3, 7], 10 and 9.5 are numbers, true and false booleans; quote a value to keep it text
(--filter 'search="12"'). A key given twice collects both values in a list.

examples:
  exportctl export products --format csv --fields sku,name --filter status=active --out catalog.csv
  exportctl export products --filter category_id=3,7 --filter price_min=10 --option delimiter=';'
  ID=$(exportctl export products --format excel --detach) && exportctl download "$ID"`

func (a *app) parseExport(args []string) (exportFlags, error) {
	var f exportFlags
	fs := a.flagSet("export", nil)
	fs.Usage = commandUsage(fs, "export ENTITY [flags]", exportDoc)
	fs.StringVar(&f.format, "format", "csv", "file format: csv, excel or json")
	fields := fs.String("fields", "", "columns, in order, comma-separated (default: the entity's default fields)")
	exclude := fs.String("exclude-fields", "", "columns to leave out, comma-separated")
	var filters, filterJSON, options, optionJSON listFlag
	fs.Var(&filters, "filter", "a filter `key=value` (repeatable)")
	fs.Var(&filterJSON, "filter-json", "filters as a JSON `object` (repeatable; merged last)")
	fs.Var(&options, "option", "an export option `key=value` (repeatable)")
	fs.Var(&optionJSON, "option-json", "options as a JSON `object` (repeatable; merged last)")
	fs.StringVar(&f.body.FileName, "file-name", "", "the file name the server stores and offers")
	fs.StringVar(&f.out, "out", "", "the file, or directory, to write to; - for stdout (default: the server's file name, here)")
	fs.BoolVar(&f.detach, "detach", false, "print the job id and return without waiting")
	fs.StringVar(&f.body.PlatformID, "platform", "", "a platform `ID` whose configuration the export takes (ENTITY and flags override it)")
	pos, err := parse(fs, args, 0, 1)
	if err != nil {
		return f, err
	}
	if len(pos) == 1 {
		f.entity = pos[0]
	} else if f.body.PlatformID == "" {
		return f, usagef("export: missing argument ENTITY (products or suppliers), unless --platform gives it")
	}
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "format" {
			f.formatSet = true
		}
	})
	f.body.Fields, f.body.ExcludeFields = csvList(*fields), csvList(*exclude)
	if f.body.Filters, err = buildObject("filter", filters, filterJSON); err != nil {
		return f, err
	}
	if f.body.Options, err = buildObject("option", options, optionJSON); err != nil {
		return f, err
	}
	if f.detach && f.out != "" {
		return f, usagef("export: --out and --detach do not go together (download later with exportctl download ID --out FILE)")
	}
	return f, nil
}

func (a *app) cmdExport(ctx context.Context, args []string) error {
	f, err := a.parseExport(args)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var acc struct {
		TaskID string `json:"task_id"`
		Status string `json:"status"`
	}
	path := basePath + "/" + url.PathEscape(f.format) + "/" + url.PathEscape(f.entity)
	if f.body.PlatformID != "" {
		// The platform gives what the command line leaves out.
		path, f.body.Entity = basePath+"/create", f.entity
		if f.formatSet {
			f.body.Format = f.format
		}
	}
	if err := c.do(ctx, http.MethodPost, path, f.body, &acc); err != nil {
		return fmt.Errorf("requesting the export: %w", err)
	}
	if f.detach {
		fmt.Fprintln(a.stdout, acc.TaskID)
		return nil
	}
	if f.body.PlatformID != "" {
		fmt.Fprintf(a.stderr, "export %s requested (platform %s); Ctrl-C cancels it\n", acc.TaskID, f.body.PlatformID)
	} else {
		fmt.Fprintf(a.stderr, "export %s requested (%s %s); Ctrl-C cancels it\n", acc.TaskID, f.format, f.entity)
	}

	j, err := a.follow(ctx, c, acc.TaskID)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return a.cancelOnInterrupt(ctx, c, acc.TaskID)
	}
	if err != nil {
		return err
	}
	if err := endError(j); err != nil {
		return err
	}
	return a.save(ctx, c, j, f.out)
}

// follow watches the job with a progress view on stderr.
func (a *app) follow(ctx context.Context, c *client, id string) (job, error) {
	view := a.newProgressView(a.stderr, id)
	j, err := a.watch(ctx, c, id, view.show)
	view.end()
	return j, err
}

// cancelOnInterrupt asks the server to cancel a job whose wait was interrupted: the request
// must outlive the interrupted context.
func (a *app) cancelOnInterrupt(ctx context.Context, c *client, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	fmt.Fprintf(a.stderr, "exportctl: interrupted; cancelling export %s\n", id)
	var j job
	err := c.do(ctx, http.MethodPost, basePath+"/"+url.PathEscape(id)+"/cancel", nil, &j)
	if err != nil {
		return fmt.Errorf("%w; cancelling export %s: %w", errInterrupted, id, err)
	}
	return fmt.Errorf("%w: export %s cancelled", errInterrupted, id)
}
