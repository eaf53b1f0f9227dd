// Package destination sends a stored export file to where a platform delivers it (CONTRACT
// §4): another S3-compatible bucket, a directory on an SFTP server, or an HTTP endpoint. The
// file is streamed from reader to destination: nothing holds it whole in memory. Where the
// target can rename, the file is written under a temporary name and renamed once complete, so
// a reader of the destination never sees half a file.
package destination

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/productsmanager/exportplatform/pkg/platform"
)

// Sender delivers files to one destination.
type Sender interface {
	// Send writes r (size bytes, of contentType) as name at the destination and says where it
	// went (a URL-like target without secrets).
	Send(ctx context.Context, name string, r io.Reader, size int64, contentType string) (target string, err error)
	// Probe checks the destination as a delivery would use it: connect, write a small probe
	// file, remove it. Every step is reported, the failed one with its error.
	Probe(ctx context.Context) []Step
	// Target is where files go (for messages), without secrets.
	Target() string
	Close() error
}

// Step is one step of a probe.
type Step struct {
	Step       string `json:"step"`
	OK         bool   `json:"ok"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

// Secrets resolves a secret reference (env:NAME or file:/path) to its value.
type Secrets func(ref string) (string, error)

// ErrSecret marks a reference that cannot be resolved: retrying cannot help until someone
// sets the secret.
var ErrSecret = errors.New("secret reference unresolved")

// EnvSecrets resolves env:NAME from the process environment and file:/path from the file
// system (a mounted secret), without its final newline.
func EnvSecrets(ref string) (string, error) {
	switch {
	case strings.HasPrefix(ref, "env:"):
		v, ok := os.LookupEnv(strings.TrimPrefix(ref, "env:"))
		if !ok || v == "" {
			return "", fmt.Errorf("%w: %s is not set in the delivering service's environment", ErrSecret, ref)
		}
		return v, nil
	case strings.HasPrefix(ref, "file:"):
		b, err := os.ReadFile(strings.TrimPrefix(ref, "file:"))
		if err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrSecret, ref, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", fmt.Errorf("%w: %q is not env:NAME or file:/path", ErrSecret, ref)
}

// ErrStorageOnly: a storage destination has nothing to send to.
var ErrStorageOnly = errors.New("a storage destination keeps the file in the export bucket")

// Open prepares a sender for d (a normalized destination); connections are made on first use.
func Open(d platform.Destination, secrets Secrets) (Sender, error) {
	switch d.Type {
	case platform.S3:
		return openS3(d, secrets)
	case platform.SFTP:
		return openSFTP(d, secrets)
	case platform.HTTP:
		return openHTTP(d, secrets)
	}
	return nil, ErrStorageOnly
}

// probeName is the probe file's name: hidden, and unique enough not to meet a real file.
func probeName() string {
	return fmt.Sprintf(".export-platform-probe-%d", time.Now().UnixNano())
}

// step runs fn as a probe step and reports it; steps after a failure are not run.
func step(steps *[]Step, name string, fn func() error) bool {
	if n := len(*steps); n > 0 && !(*steps)[n-1].OK {
		return false
	}
	t0 := time.Now()
	err := fn()
	s := Step{Step: name, OK: err == nil, DurationMS: time.Since(t0).Milliseconds()}
	if err != nil {
		s.Error = err.Error()
	}
	*steps = append(*steps, s)
	return err == nil
}
