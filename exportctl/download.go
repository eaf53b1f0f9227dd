package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

const downloadDoc = `
Waits for export job ID to finish (showing its progress) and downloads its file, checking its
SHA-256, to --out (default: the file name the server gives, here). Ctrl-C stops waiting and
leaves the job alone.`

func (a *app) cmdDownload(ctx context.Context, args []string) error {
	fs := a.flagSet("download", nil)
	fs.Usage = commandUsage(fs, "download ID [flags]", downloadDoc)
	out := fs.String("out", "", "the file, or directory, to write to; - for stdout (default: the server's file name, here)")
	c, id, err := a.jobCommand(fs, args)
	if err != nil {
		return err
	}
	j, err := c.getJob(ctx, id)
	if err != nil {
		return fmt.Errorf("reading export %s: %w", id, err)
	}
	if !terminal(j.Status) {
		j, err = a.follow(ctx, c, id)
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return fmt.Errorf("%w: stopped waiting; export %s goes on", errInterrupted, id)
		}
		if err != nil {
			return err
		}
	}
	if err := endError(j); err != nil {
		return err
	}
	return a.save(ctx, c, j, *out)
}

// save downloads the file of completed job j to out, checks its SHA-256 and prints the path.
func (a *app) save(ctx context.Context, c *client, j job, out string) error {
	id := j.id()
	req, err := c.request(ctx, http.MethodGet, basePath+"/download/"+url.PathEscape(id), nil)
	if err != nil {
		return err
	}
	req.Header.Del("Accept")
	resp, err := c.send(req) // a redirect to a signed URL is followed, without the token
	if err != nil {
		return fmt.Errorf("downloading export %s: %w", id, err)
	}
	defer resp.Body.Close()

	want := strings.ToLower(strings.TrimSpace(resp.Header.Get("X-Content-SHA256")))
	if want == "" && j.File != nil { // a signed URL's answer does not carry the header
		want = strings.ToLower(j.File.SHA256)
	}
	if want == "" {
		return fmt.Errorf("downloading export %s: the server gave no SHA-256 to check the file against", id)
	}
	if out == "" {
		out = serverFileName(resp, j)
	} else if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		out = filepath.Join(out, serverFileName(resp, j))
	}
	n, err := writeVerified(out, a.stdout, resp.Body, want)
	if err != nil {
		return fmt.Errorf("downloading export %s: %w", id, err)
	}
	if out == "-" {
		return nil
	}
	fmt.Fprintf(a.stderr, "export %s: saved %s (%s, sha256 %s…)\n", id, out, humanBytes(n), want[:min(12, len(want))])
	fmt.Fprintln(a.stdout, out)
	return nil
}

// serverFileName is the file name offered by the server, reduced to a plain name in the
// current directory whatever it holds.
func serverFileName(resp *http.Response, j job) string {
	name := ""
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		name = params["filename"]
	}
	if name == "" && j.File != nil {
		name = j.File.FileName
	}
	name = filepath.Base(filepath.Clean("/" + strings.ReplaceAll(name, `\`, "/")))
	if name == "/" || name == "." || name == "" {
		name = "export-" + j.id()
	}
	return name
}

// errChecksum is a downloaded file whose SHA-256 is not the one the server announced.
var errChecksum = errors.New("checksum mismatch")

// writeVerified copies r to the file out (or to stdout for "-") only if its SHA-256 is want:
// it writes a temporary file beside out, checks, then renames it into place, so out is never
// left half-written or wrong. It returns the size.
func writeVerified(out string, stdout io.Writer, r io.Reader, want string) (int64, error) {
	dir, base := filepath.Split(out)
	if out == "-" {
		dir, base = "", "exportctl-download"
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.part")
	if err != nil {
		return 0, err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return n, fmt.Errorf("receiving the file: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return n, fmt.Errorf("%w: the %d bytes received hash to %s, the server announced %s; nothing written", errChecksum, n, got, want)
	}
	if out == "-" {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return n, err
		}
		_, err := io.Copy(stdout, tmp)
		return n, err
	}
	if err := tmp.Sync(); err != nil {
		return n, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return n, err
	}
	if err := tmp.Close(); err != nil {
		return n, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return n, err
	}
	done = true
	return n, nil
}
