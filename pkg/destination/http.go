package destination

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/productsmanager/exportplatform/pkg/platform"
)

// httpSender PUTs (or POSTs) the file to a URL; a 2xx answer is a delivery. The file name
// goes in Content-Disposition, and the URL's {name} is replaced by it when present.
type httpSender struct {
	d             platform.Destination
	authorization string
	client        *http.Client
}

func openHTTP(d platform.Destination, secrets Secrets) (*httpSender, error) {
	h := &httpSender{d: d, client: &http.Client{Timeout: 0}} // a delivery may be long: ctx bounds it
	if d.AuthorizationRef != "" {
		v, err := secrets(d.AuthorizationRef)
		if err != nil {
			return nil, err
		}
		h.authorization = v
	}
	return h, nil
}

func (h *httpSender) Target() string { return h.d.URL }

func (h *httpSender) url(name string) string {
	return strings.ReplaceAll(h.d.URL, "{name}", url.PathEscape(name))
}

func (h *httpSender) do(ctx context.Context, method, u string, body io.Reader, size int64, name, contentType string) error {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("http %s: %w", u, err)
	}
	req.ContentLength = size
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if name != "" {
		req.Header.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	}
	if h.authorization != "" {
		req.Header.Set("Authorization", h.authorization)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("http %s %s: %w", method, h.d.URL, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("http %s %s: %s %s", method, h.d.URL, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

func (h *httpSender) Send(ctx context.Context, name string, r io.Reader, size int64, contentType string) (string, error) {
	u := h.url(name)
	if err := h.do(ctx, h.d.Method, u, r, size, name, contentType); err != nil {
		return "", err
	}
	return u, nil
}

// Probe sends a small probe file the same way (an HTTP endpoint has no removal to try).
func (h *httpSender) Probe(ctx context.Context) []Step {
	var steps []Step
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	name := probeName()
	body := []byte("probe\n")
	step(&steps, "write", func() error {
		return h.do(ctx, h.d.Method, h.url(name), bytes.NewReader(body), int64(len(body)), name, "text/plain")
	})
	return steps
}

func (h *httpSender) Close() error { return nil }
