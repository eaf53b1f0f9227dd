// Command token prints a signed HS256 token for the local stack (make token), so a developer can
// call the API with curl:
//
//	curl -H "Authorization: Bearer $(go run ./dev/cmd/token -perms READ_EXPORTS)" ...
//
// Only the token and a newline go to stdout; everything else goes to stderr.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

// defaultSecret is the local stack's signing secret (CONTRACT §2).
const defaultSecret = "local-dev-secret"

// errUsage marks flag errors, which the flag package has already reported with the usage.
var errUsage = errors.New("usage")

func main() {
	err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr, time.Now())
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "token:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer, now time.Time) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "alice", "subject (user id)")
	name := fs.String("name", "", "display name (omitted when empty)")
	perms := fs.String("perms", auth.PermReadExports+","+auth.PermWriteExports, "comma-separated permissions; empty for none")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token")
	// The default is resolved after parsing so that -h never prints the value of $JWT_SECRET.
	secret := fs.String("secret", "", "HS256 signing secret (default $JWT_SECRET, else "+defaultSecret+")")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: token [flags]\n\nPrints a signed HS256 token for the local stack.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	key := *secret
	if key == "" {
		key = getenv("JWT_SECRET")
	}
	if key == "" {
		key = defaultSecret
	}

	p := auth.Principal{Subject: *sub, Name: *name, Permissions: splitPerms(*perms)}
	token, err := auth.Mint([]byte(key), p, *ttl, now)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
}

// splitPerms turns "A, B,,C" into [A B C].
func splitPerms(s string) []string {
	perms := []string{}
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			perms = append(perms, p)
		}
	}
	return perms
}
