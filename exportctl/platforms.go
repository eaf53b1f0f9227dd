package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
)

const platformsPath = basePath + "/platforms"

const platformsDoc = `
Manages export platforms: preconfigured exports (a channel template or custom) and where their
files go (storage, s3, sftp, http), with an optional signed webhook.

  platforms list [-o table|json]
  platforms create NAME [--type custom|google_shopping|amazon|shopify|woocommerce|prestashop]
                   [--entity products] [--format csv] [--fields a,b] [--filter k=v] [--option k=v]
                   [--header field=title] [--compression gzip|zip]
                   [--destination-json '{"type": "sftp", …}']
                   [--webhook-url URL --webhook-secret-ref env:NAME]
  platforms get ID            the platform as JSON
  platforms test ID           connects to its destination, writes and removes a probe; exit 1 on failure
  platforms delete ID

Secrets are references (env:NAME, file:/path) resolved by the services, never values.

examples:
  exportctl platforms create "Google FR" --type google_shopping --compression gzip
  exportctl platforms create "Partner SFTP" --destination-json '{"type": "sftp", "host": "sftp.example.com",
      "user": "feeds", "private_key_ref": "file:/run/secrets/partner_key", "host_key": "ssh-ed25519 AAAA…"}'
  exportctl export --platform 01a2…     one export with the platform's configuration`

type platformRow struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	ScheduleIDs []string `json:"schedule_ids"`
	Destination struct {
		Type string `json:"type"`
	} `json:"destination"`
	Webhook *struct {
		URL string `json:"url"`
	} `json:"webhook"`
	DefaultConfig struct {
		Entity      string `json:"entity"`
		Format      string `json:"format"`
		Compression string `json:"compression"`
	} `json:"default_config"`
}

func (a *app) cmdPlatforms(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(a.stderr, "usage: exportctl platforms SUBCOMMAND"+platformsDoc)
		if len(args) == 0 {
			return usageError{}
		}
		return errHelp
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "list":
		return a.platformsList(ctx, rest)
	case "create":
		return a.platformsCreate(ctx, rest)
	case "get", "test", "delete":
		return a.platformOne(ctx, sub, rest)
	}
	return usagef("platforms: unknown subcommand %q (%s)", sub, strings.Join(platformsSubs, ", "))
}

// platformsSubs are the subcommands of platforms, as cmdPlatforms dispatches them.
var platformsSubs = []string{"list", "create", "get", "test", "delete"}

func (a *app) platformsList(ctx context.Context, args []string) error {
	fs := a.flagSet("platforms list", nil)
	fs.Usage = commandUsage(fs, "platforms list [flags]", "\nLists platforms, newest first.")
	asJSON := outputFlags(fs)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	items, printed, err := listItems[platformRow](ctx, a, c, platformsPath+"?limit=500", "listing platforms", *asJSON)
	if err != nil || printed {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tEXPORT\tDESTINATION\tWEBHOOK\tSCHEDULES")
	for _, p := range items {
		exp := strings.TrimSpace(p.DefaultConfig.Format + " " + p.DefaultConfig.Entity + " " + p.DefaultConfig.Compression)
		hook := "-"
		if p.Webhook != nil {
			hook = p.Webhook.URL
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", p.ID, cell(p.Name), p.Type, cell(exp), p.Destination.Type, cell(hook), len(p.ScheduleIDs))
	}
	return tw.Flush()
}

func (a *app) platformsCreate(ctx context.Context, args []string) error {
	fs := a.flagSet("platforms create", nil)
	fs.Usage = commandUsage(fs, "platforms create NAME [flags]", platformsDoc)
	typ := fs.String("type", "custom", "custom or a channel template: google_shopping, amazon, shopify, woocommerce, prestashop")
	entity := fs.String("entity", "", "what to export (a template sets it): products or suppliers")
	format := fs.String("format", "", "file format (a template sets it): csv, excel or json")
	fields := fs.String("fields", "", "columns, in order, comma-separated")
	compression := fs.String("compression", "", "gzip, or zip (CSV and JSON)")
	dest := fs.String("destination-json", "", "where files go, as a JSON `object` (default: storage)")
	hookURL := fs.String("webhook-url", "", "a URL notified of each job (signed, Standard Webhooks)")
	hookSecret := fs.String("webhook-secret-ref", "", "the webhook's signing secret, as env:NAME or file:/path")
	var filters, options, headers listFlag
	fs.Var(&filters, "filter", "a default filter `key=value` (repeatable)")
	fs.Var(&options, "option", "a default export option `key=value` (repeatable)")
	fs.Var(&headers, "header", "a column title `field=title` (repeatable)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	cfg := map[string]any{}
	for k, v := range map[string]string{"entity": *entity, "format": *format, "compression": *compression} {
		if v != "" {
			cfg[k] = v
		}
	}
	if f := csvList(*fields); f != nil {
		cfg["fields"] = f
	}
	for name, l := range map[string]listFlag{"filters": filters, "options": options} {
		m, err := buildObject(strings.TrimSuffix(name, "s"), l, nil)
		if err != nil {
			return err
		}
		if len(m) > 0 {
			cfg[name] = m
		}
	}
	if len(headers) > 0 {
		h := map[string]string{}
		for _, kv := range headers {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usagef("platforms create: --header wants field=title, not %q", kv)
			}
			h[k] = v
		}
		cfg["headers"] = h
	}
	body := map[string]any{"name": pos[0], "type": *typ, "default_config": cfg}
	if *dest != "" {
		var d map[string]any
		if err := json.Unmarshal([]byte(*dest), &d); err != nil {
			return usagef("platforms create: --destination-json is not a JSON object: %v", err)
		}
		body["destination"] = d
	}
	if *hookURL != "" || *hookSecret != "" {
		body["webhook"] = map[string]any{"url": *hookURL, "secret_ref": *hookSecret}
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var p platformRow
	if err := c.do(ctx, http.MethodPost, platformsPath, body, &p); err != nil {
		return fmt.Errorf("creating the platform: %w", err)
	}
	fmt.Fprintln(a.stdout, p.ID)
	fmt.Fprintf(a.stderr, "platform %q created (%s, delivers to %s)\n", p.Name, p.Type, p.Destination.Type)
	return nil
}

// errProbe fails `platforms test` whose probe failed (exit 1), after its report.
var errProbe = errors.New("the destination's test failed")

func (a *app) platformOne(ctx context.Context, sub string, args []string) error {
	fs := a.flagSet("platforms "+sub, nil)
	fs.Usage = commandUsage(fs, "platforms "+sub+" ID", platformsDoc)
	c, id, err := a.jobCommand(fs, args)
	if err != nil {
		return err
	}
	path := platformsPath + "/" + url.PathEscape(id)
	switch sub {
	case "get":
		var raw json.RawMessage
		if err := c.do(ctx, http.MethodGet, path, nil, &raw); err != nil {
			return fmt.Errorf("platform %s: %w", id, err)
		}
		_, err := fmt.Fprintf(a.stdout, "%s\n", raw)
		return err
	case "test":
		var res struct {
			OK     bool   `json:"ok"`
			Target string `json:"target"`
			Steps  []struct {
				Step       string `json:"step"`
				OK         bool   `json:"ok"`
				Error      string `json:"error"`
				DurationMS int64  `json:"duration_ms"`
			} `json:"steps"`
		}
		if err := c.do(ctx, http.MethodPost, path+"/test", nil, &res); err != nil {
			return fmt.Errorf("testing platform %s: %w", id, err)
		}
		for _, s := range res.Steps {
			mark := "ok"
			if !s.OK {
				mark = "FAILED: " + s.Error
			}
			fmt.Fprintf(a.stdout, "%-10s %6d ms  %s\n", s.Step, s.DurationMS, mark)
		}
		if !res.OK {
			return fmt.Errorf("%w (%s)", errProbe, res.Target)
		}
		fmt.Fprintf(a.stdout, "%s: ok\n", res.Target)
		return nil
	case "delete":
		if err := c.do(ctx, http.MethodDelete, path, nil, nil); err != nil {
			return fmt.Errorf("cannot delete platform %s: %w", id, err)
		}
		fmt.Fprintf(a.stdout, "platform %s deleted\n", id)
		return nil
	}
	return usagef("platforms: unknown subcommand %q", sub)
}
