package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/user"
	"strings"
	"time"

	"github.com/productsmanager/exportplatform/pkg/auth"
)

const (
	defaultAPI    = "http://127.0.0.1:8080"
	defaultSecret = "local-dev-secret" // the local stack's JWT_SECRET (CONTRACT §2)
	basePath      = "/api/v1/exports"
)

// client calls the API with a bearer token.
type client struct {
	base   string // scheme://host[:port][/prefix], no trailing slash
	token  string
	minted bool // token was minted here, not given
	httpc  *http.Client
}

// apiError is an answer of 400 and above: {"error": {"code", "message", "field"}}.
type apiError struct {
	Status  int
	Code    string
	Message string
	Field   string
	hint    string
}

func (e *apiError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if b.Len() == 0 {
		b.WriteString(http.StatusText(e.Status))
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " (field %s)", e.Field)
	}
	fmt.Fprintf(&b, " [HTTP %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	b.WriteString("]")
	if e.hint != "" {
		b.WriteString("; " + e.hint)
	}
	return b.String()
}

// client resolves --api and --token against the environment; without a token it mints one
// from $JWT_SECRET or the local stack's default secret.
func (a *app) client() (*client, error) {
	base := firstNonEmpty(a.api, a.getenv("EXPORT_API_URL"), defaultAPI)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--api %q: want a URL such as %s", base, defaultAPI)
	}
	c := &client{base: strings.TrimRight(base, "/"), httpc: a.httpc}
	c.token = firstNonEmpty(a.token, a.getenv("EXPORT_TOKEN"))
	if c.token == "" {
		secret := firstNonEmpty(a.getenv("JWT_SECRET"), defaultSecret)
		p := auth.Principal{Subject: localUser(a.getenv), Name: "exportctl",
			Permissions: []string{auth.PermReadExports, auth.PermWriteExports}}
		if c.token, err = auth.Mint([]byte(secret), p, time.Hour, a.now()); err != nil {
			return nil, fmt.Errorf("minting a token: %w", err)
		}
		c.minted = true
	}
	return c, nil
}

// localUser names the subject of a minted token.
func localUser(getenv func(string) string) string {
	if u := getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "exportctl"
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// request builds a request to path (below the API root) with the token.
func (c *client) request(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// send performs req and returns the response when its status is below 400; otherwise the
// *apiError it carries.
func (c *client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.httpc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), unwrapURLError(err))
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, c.decodeError(resp)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *client) decodeError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error struct{ Code, Message, Field string } `json:"error"`
	}
	e := &apiError{Status: resp.StatusCode}
	if json.Unmarshal(data, &body) == nil && (body.Error.Code != "" || body.Error.Message != "") {
		e.Code, e.Message, e.Field = body.Error.Code, body.Error.Message, body.Error.Field
	} else if s := strings.TrimSpace(string(data)); s != "" && len(s) < 300 {
		e.Message = s
	}
	if resp.StatusCode == http.StatusUnauthorized && c.minted {
		e.hint = "the token was minted locally from $JWT_SECRET (or the local default); pass --token or set EXPORT_TOKEN"
	}
	return e
}

// do sends a JSON request and decodes a JSON answer into out (when out is not nil).
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	req, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// Statuses of a job (CONTRACT §4).
const (
	statusQueued    = "queued"
	statusRunning   = "running"
	statusCompleted = "completed"
	statusFailed    = "failed"
	statusCancelled = "cancelled"
	statusExpired   = "expired"
)

func terminal(status string) bool {
	switch status {
	case statusCompleted, statusFailed, statusCancelled, statusExpired:
		return true
	}
	return false
}

// job is what the CLI reads of a job, of a progress answer and of a WebSocket update: they
// share their field names.
type job struct {
	ID           string     `json:"id"`
	TaskID       string     `json:"task_id"`
	Entity       string     `json:"entity"`
	Format       string     `json:"format"`
	Status       string     `json:"status"`
	Phase        string     `json:"phase"`
	Progress     float64    `json:"progress"`
	RowsDone     int64      `json:"rows_done"`
	RowsTotal    *int64     `json:"rows_total"`
	BytesWritten int64      `json:"bytes_written"`
	Rate         *float64   `json:"rate_rows_per_s"`
	ETA          *float64   `json:"eta_seconds"`
	QueuePos     *int64     `json:"queue_position"`
	RequestedBy  string     `json:"requested_by"`
	CreatedAt    time.Time  `json:"created_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	Error        *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	File *fileInfo `json:"file"`
}

type fileInfo struct {
	FileName    string `json:"file_name"`
	ContentType string `json:"content_type"`
	SizeBytes   int64  `json:"size_bytes"`
	SHA256      string `json:"sha256"`
}

func (j job) id() string { return firstNonEmpty(j.TaskID, j.ID) }

// endError is the error of a job that ended without a file.
func endError(j job) error {
	switch j.Status {
	case statusFailed:
		if j.Error != nil {
			return fmt.Errorf("export %s failed: %s (%s)", j.id(), j.Error.Message, j.Error.Code)
		}
		return fmt.Errorf("export %s failed", j.id())
	case statusCancelled:
		return fmt.Errorf("export %s was cancelled", j.id())
	case statusExpired:
		return fmt.Errorf("export %s has expired: its file is gone", j.id())
	}
	return nil
}

func (c *client) getJob(ctx context.Context, id string) (job, error) {
	var j job
	err := c.do(ctx, http.MethodGet, basePath+"/"+url.PathEscape(id), nil, &j)
	return j, err
}

// listItems GETs a page of a list endpoint (`{"items": […]}`). With asJSON it prints the
// answer as it came and returns no items (printed true); what names the list in errors.
func listItems[T any](ctx context.Context, a *app, c *client, path, what string, asJSON bool) (items []T, printed bool, err error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, path, nil, &raw); err != nil {
		return nil, false, fmt.Errorf("%s: %w", what, err)
	}
	if asJSON {
		_, err := fmt.Fprintf(a.stdout, "%s\n", raw)
		return nil, true, err
	}
	var page struct {
		Items []T `json:"items"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, false, fmt.Errorf("%s: decoding the answer: %w", what, err)
	}
	return page.Items, false, nil
}
