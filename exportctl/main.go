// Command exportctl drives the Export Platform from a terminal: it requests exports, follows
// their progress over the WebSocket (polling when that fails), downloads and verifies the files,
// and lists, cancels and deletes jobs.
//
// Only a command's result goes to stdout (a path, a job id, a table, JSON); progress, notes and
// errors go to stderr, so `ID=$(exportctl export products --detach)` works.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130 // as a shell reports a command ended by SIGINT
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first Ctrl-C, which asks the server to cancel, a second one kills at once.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// app is one invocation: its environment, its streams and the settings from the flags.
type app struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	// isTerminal tells whether w is a terminal (a progress bar is drawn only there).
	isTerminal func(w io.Writer) bool
	now        func() time.Time
	httpc      *http.Client
	// pollEvery is the polling interval when the WebSocket is unavailable; lineEvery the
	// interval of progress lines without a terminal.
	pollEvery, lineEvery time.Duration

	api, token string // --api, --token; resolved by client()
	noColor    bool   // --no-color

	// flagSets, when set, collects every FlagSet a command makes: completion reads a
	// command's flags by running it with -h.
	flagSets *[]*flag.FlagSet
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	a := newApp(getenv, stdout, stderr)
	defer a.httpc.CloseIdleConnections()
	return a.main(ctx, args)
}

func newApp(getenv func(string) string, stdout, stderr io.Writer) *app {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 60 * time.Second
	return &app{
		getenv: getenv, stdout: stdout, stderr: stderr,
		isTerminal: isTerminal,
		now:        time.Now,
		httpc:      &http.Client{Transport: tr},
		pollEvery:  time.Second,
		lineEvery:  5 * time.Second,
	}
}

// isTerminal is true for an *os.File that is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// command is one entry of the one table of commands: usage, dispatch and shell completion
// (completion.go) all read it, and each command's flags come from its own FlagSet.
type command struct {
	name, args, summary string
	run                 func(a *app, ctx context.Context, args []string) error
	// subs are the subcommands, each with its own flags ("schedules list"); words what the
	// first argument may be (export's entity). Completion offers them.
	subs, words []string
}

var commands []command

func init() {
	// Set here rather than in the declaration: the commands refer to usage, which reads commands.
	commands = []command{
		{name: "export", args: "ENTITY [flags]", summary: "request an export, show its progress, download the file",
			run: (*app).cmdExport, words: entities},
		{name: "jobs", args: "[list|get ID] [flags]", summary: "list export jobs, or show one (-o json: the API's JSON)",
			run: (*app).cmdJobs, subs: jobsSubs},
		{name: "download", args: "ID [flags]", summary: "wait for a job to finish and download its file", run: (*app).cmdDownload},
		{name: "cancel", args: "ID", summary: "cancel a queued or running job", run: (*app).cmdCancel},
		{name: "delete", args: "ID", summary: "delete a job and its file (cancelling it if it runs)", run: (*app).cmdDelete},
		{name: "schedules", args: "SUB [ID] [flags]", summary: "list, create, get, toggle, run, next, runs, delete schedules",
			run: (*app).cmdSchedules, subs: schedulesSubs},
		{name: "platforms", args: "SUB [ID] [flags]", summary: "list, create, get, test, delete export platforms",
			run: (*app).cmdPlatforms, subs: platformsSubs},
		{name: "token", args: "[flags]", summary: "print a token signed with $JWT_SECRET for the local stack", run: (*app).cmdToken},
		{name: "completion", args: "bash|zsh|fish", summary: "print the shell completion script", run: (*app).cmdCompletion, words: shells},
	}
}

func (a *app) main(ctx context.Context, args []string) int {
	fs := a.flagSet("exportctl", a.usage)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage // the flag package has said what is wrong
	}
	rest := fs.Args()
	if len(rest) == 0 {
		a.usage()
		return exitUsage
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		a.stderr = a.stdout // asked for: the help is the output
		a.usage()
		return exitOK
	}
	for _, c := range commands {
		if c.name == name {
			return a.fail(c.run(a, ctx, rest))
		}
	}
	fmt.Fprintf(a.stderr, "exportctl: unknown command %q\n\n", name)
	a.usage()
	return exitUsage
}

// fail reports err on stderr and turns it into an exit code.
func (a *app) fail(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintf(a.stderr, "exportctl: %s\n", ue.msg)
		}
		return exitUsage
	case errors.Is(err, errInterrupted):
		fmt.Fprintf(a.stderr, "exportctl: %v\n", err)
		return exitInterrupted
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(a.stderr, "exportctl: interrupted")
		return exitInterrupted
	}
	fmt.Fprintf(a.stderr, "exportctl: %v\n", err)
	return exitFailure
}

func (a *app) usage() {
	w := a.stderr
	fmt.Fprint(w, `usage: exportctl [global flags] COMMAND [flags]

Drives the Export Platform API.

commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %-16s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprint(w, `
global flags (also accepted after the command):
  --api URL      the API (default $EXPORT_API_URL, else `+defaultAPI+`)
  --token JWT    the bearer token (default $EXPORT_TOKEN)
  --no-color     no colour (also when $NO_COLOR is set)

Without --token or $EXPORT_TOKEN, exportctl mints a short-lived token with READ_EXPORTS and
WRITE_EXPORTS, signed with $JWT_SECRET (else the local stack's "local-dev-secret"), so the
local stack needs no setup.

Progress goes to stderr: a progress bar on a terminal, else a line per phase change and every
few seconds. Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted.
Run "exportctl COMMAND -h" for a command's flags.
`)
}
