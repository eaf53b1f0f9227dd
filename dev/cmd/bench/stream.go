package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// benchStream measures a streaming endpoint: time to the first byte of the body (not merely
// the headers, which a server may flush before its query answers), rows per second over the
// whole transfer, bytes, and producer-api's peak RSS meanwhile.
func (b *bench) benchStream(ctx context.Context, name, path string, jsonLines bool) {
	pid, err := b.servicePID("producer-api")
	var mon *rssMonitor
	if err != nil {
		b.logf("%s: producer-api peak RSS not measured: %v", name, err)
	} else {
		mon = startRSS(pid, b.cfg.sample)
	}
	rss := func() (rssResult, bool) {
		if mon == nil {
			return rssResult{}, false
		}
		r := mon.Stop()
		mon = nil
		return r, true
	}
	defer rss()

	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.apiURL+path, nil)
	if err != nil {
		b.fail(name, err.Error())
		return
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	t0 := time.Now()
	resp, err := b.http.Do(req)
	if err != nil {
		b.fail(name, fmt.Sprintf("GET %s: %v", path, err))
		return
	}
	defer func() { _ = resp.Body.Close() }()
	headers := time.Since(t0)
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		b.fail(name, fmt.Sprintf("GET %s: %v", path, apiError(resp.StatusCode, raw)))
		return
	}

	var (
		counter recordCounter
		nbytes  int64
		ttfb    time.Duration
		buf     = make([]byte, 256<<10)
		readErr error
	)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if nbytes == 0 {
				ttfb = time.Since(t0)
			}
			nbytes += int64(n)
			counter.feed(buf[:n], !jsonLines)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
	}
	elapsed := time.Since(t0)
	r, rssOK := rss()
	if readErr != nil {
		b.fail(name, fmt.Sprintf("reading the stream after %d bytes: %v", nbytes, readErr))
		return
	}
	rows := counter.records()
	if !jsonLines && rows > 0 {
		rows-- // the header line
	}
	b.logf("%s: headers after %.1f ms, first body byte after %.1f ms", name, ms(headers), ms(ttfb))
	if rows != b.count {
		b.logf("%s: WARNING: %d rows streamed, the catalog holds %d", name, rows, b.count)
	}
	b.emit(name+"_ttfb_ms", ms(ttfb), "ms", 1)
	b.emit(name+"_rows", float64(rows), "rows", 0)
	b.emit(name+"_rows_per_s", float64(rows)/elapsed.Seconds(), "rows/s", 0)
	b.emit(name+"_seconds", elapsed.Seconds(), "s", 2)
	b.emit(name+"_bytes", float64(nbytes), "bytes", 0)
	if rssOK {
		b.emit(name+"_api_peak_rss_mib", r.peakMiB(), "MiB", 1)
		b.logf("%s: producer-api pid %d: %s", name, pid, r)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// recordCounter counts the records of a CSV or line-oriented stream fed in chunks. In CSV a
// line break inside a quoted field is data (catalog text holds line breaks), so only breaks
// outside quotes end a record; an escaped quote ("") toggles twice and changes nothing. In JSON
// Lines a line break inside a string is always escaped, so every one ends a record.
type recordCounter struct {
	n        int64
	inQuotes bool
	last     byte
}

func (c *recordCounter) feed(p []byte, csv bool) {
	if len(p) == 0 {
		return
	}
	for _, ch := range p {
		switch ch {
		case '"':
			if csv {
				c.inQuotes = !c.inQuotes
			}
		case '\n':
			if !c.inQuotes {
				c.n++
			}
		}
	}
	c.last = p[len(p)-1]
}

// records is the number of records, counting a last one that lacks its line break.
func (c *recordCounter) records() int64 {
	if c.last != 0 && c.last != '\n' {
		return c.n + 1
	}
	return c.n
}
