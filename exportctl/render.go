package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressView shows a job's progress as it moves.
type progressView interface {
	show(j job)
	// end closes the view once the job has ended (or the wait was abandoned).
	end()
}

// newProgressView draws a bar on w when w is a terminal (TERM not dumb), else prints lines.
func (a *app) newProgressView(w io.Writer, id string) progressView {
	if a.isTerminal(w) && a.getenv("TERM") != "dumb" {
		return newBarView(w, a.colour())
	}
	return &lineView{w: w, id: id, every: a.lineEvery, now: a.now}
}

// colour is false with --no-color or a non-empty $NO_COLOR (no-color.org), and for a dumb
// terminal.
func (a *app) colour() bool {
	return !a.noColor && a.getenv("NO_COLOR") == "" && a.getenv("TERM") != "dumb"
}

// label is where the job is: its phase while it runs (counting, writing, uploading), else its
// status.
func label(j job) string {
	if j.Status == statusRunning && j.Phase != "" {
		return j.Phase
	}
	return firstNonEmpty(j.Status, j.Phase)
}

// extras are the queue position, rate and ETA, as far as known: "12.3k rows/s, ETA 9s".
func extras(j job) []string {
	var parts []string
	if j.Status == statusQueued && j.QueuePos != nil {
		parts = append(parts, fmt.Sprintf("#%d in queue", *j.QueuePos))
	}
	if j.Rate != nil && *j.Rate > 0 && !terminal(j.Status) {
		parts = append(parts, humanCount(*j.Rate)+" rows/s")
	}
	if j.ETA != nil && !terminal(j.Status) {
		parts = append(parts, "ETA "+humanDuration(*j.ETA))
	}
	return parts
}

// describe is the words after the bar: "writing 12.3k rows/s, ETA 9s".
func describe(j job) string {
	if e := extras(j); len(e) > 0 {
		return label(j) + " " + strings.Join(e, ", ")
	}
	return label(j)
}

// humanCount is 950, 12.3k, 4.5M.
func humanCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// humanDuration is 9s, 2m05s, 1h02m.
func humanDuration(seconds float64) string {
	d := time.Duration(math.Round(seconds)) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// humanBytes is 512 B, 1.2 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// lineView prints a line when the status or phase changes, and every so often in between: for
// logs and pipes, where a bar would be a mess of carriage returns.
type lineView struct {
	w     io.Writer
	id    string
	every time.Duration
	now   func() time.Time

	lastKey  string
	lastTime time.Time
}

func (v *lineView) show(j job) {
	key := j.Status + "/" + j.Phase
	now := v.now()
	if key == v.lastKey && now.Sub(v.lastTime) < v.every {
		return
	}
	v.lastKey, v.lastTime = key, now
	var b strings.Builder
	fmt.Fprintf(&b, "export %s: %s", v.id, label(j))
	if j.Status != statusQueued {
		fmt.Fprintf(&b, " %.0f%%", j.Progress)
		if j.RowsTotal != nil {
			fmt.Fprintf(&b, " %d/%d rows", j.RowsDone, *j.RowsTotal)
		} else if j.RowsDone > 0 {
			fmt.Fprintf(&b, " %d rows", j.RowsDone)
		}
	}
	if e := extras(j); len(e) > 0 {
		b.WriteString(", " + strings.Join(e, ", "))
	}
	fmt.Fprintln(v.w, b.String())
}

func (v *lineView) end() {}

// barView is a progressbar of rows: unknown length (a spinner) until the rows are counted.
// Rate and ETA are the server's, from the rows written over the last seconds.
type barView struct {
	w      io.Writer
	bar    *progressbar.ProgressBar
	colour bool
	max    int64
	drawn  bool
}

func newBarView(w io.Writer, colour bool) *barView {
	v := &barView{w: w, colour: colour, max: -1}
	v.bar = v.newBar(-1)
	return v
}

func (v *barView) newBar(max int64) *progressbar.ProgressBar {
	theme := progressbar.Theme{Saucer: "=", SaucerHead: ">", SaucerPadding: " ", BarStart: "[", BarEnd: "]"}
	if v.colour {
		theme.Saucer, theme.SaucerHead = "[green]=[reset]", "[green]>[reset]"
	}
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(v.w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetTheme(theme),
		progressbar.OptionEnableColorCodes(v.colour),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionSetPredictTime(false), // the server's ETA is in the description
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSpinnerType(14),
		// The spinner turns on each update: a timed one needs a goroutine that the bar never
		// stops, and that writes concurrently with us.
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionUseANSICodes(false), // \r and spaces only: no escape sequence
	)
}

func (v *barView) show(j job) {
	if j.RowsTotal != nil && *j.RowsTotal > 0 && *j.RowsTotal != v.max {
		// The bar's length is fixed when it starts drawing; a new total starts a new bar.
		if v.drawn {
			_ = v.bar.Clear()
		}
		v.max = *j.RowsTotal
		v.bar = v.newBar(v.max)
	}
	v.bar.Describe(describe(j))
	_ = v.bar.Set64(min(j.RowsDone, max(v.max, j.RowsDone)))
	v.drawn = true
}

func (v *barView) end() {
	if v.drawn {
		_ = v.bar.Exit()
		fmt.Fprintln(v.w)
	}
}
