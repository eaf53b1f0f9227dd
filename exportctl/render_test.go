package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestLineViewPrintsOnChangeAndEverySoOften(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := &lineView{w: &out, id: "J", every: 5 * time.Second, now: func() time.Time { return now }}
	step := func(d time.Duration, j job) {
		now = now.Add(d)
		v.show(j)
	}
	total := ptr(int64(1000))
	step(0, job{Status: "queued", Phase: "queued", QueuePos: ptr(int64(3))})
	step(time.Second, job{Status: "queued", Phase: "queued", QueuePos: ptr(int64(2))}) // same phase, too soon
	step(time.Second, job{Status: "running", Phase: "counting"})
	step(time.Second, job{Status: "running", Phase: "writing", Progress: 10, RowsDone: 100, RowsTotal: total, Rate: ptr(950.0), ETA: ptr(0.9)})
	step(time.Second, job{Status: "running", Phase: "writing", Progress: 20, RowsDone: 200, RowsTotal: total})                                         // too soon
	step(5*time.Second, job{Status: "running", Phase: "writing", Progress: 60, RowsDone: 600, RowsTotal: total, Rate: ptr(15000.0), ETA: ptr(3725.0)}) // interval passed
	step(time.Second, job{Status: "completed", Phase: "done", Progress: 100, RowsDone: 1000, RowsTotal: total, Rate: ptr(1.0)})
	want := `export J: queued, #3 in queue
export J: counting 0%
export J: writing 10% 100/1000 rows, 950 rows/s, ETA 1s
export J: writing 60% 600/1000 rows, 15.0k rows/s, ETA 1h02m
export J: completed 100% 1000/1000 rows
`
	if out.String() != want {
		t.Errorf("lines:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestBarViewColour(t *testing.T) {
	for _, tt := range []struct {
		name   string
		env    map[string]string
		noFlag bool
		wantSC bool
	}{
		{name: "colour", env: map[string]string{"TERM": "xterm"}, wantSC: true},
		{name: "NO_COLOR", env: map[string]string{"TERM": "xterm", "NO_COLOR": "1"}},
		{name: "--no-color", env: map[string]string{"TERM": "xterm"}, noFlag: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			a := newApp(func(k string) string { return tt.env[k] }, nil, &out)
			a.isTerminal = func(io.Writer) bool { return true }
			a.noColor = tt.noFlag
			v := a.newProgressView(&out, "J")
			if _, ok := v.(*barView); !ok {
				t.Fatalf("view %T on a terminal, want a bar", v)
			}
			total := ptr(int64(100))
			v.show(job{Status: "running", Phase: "counting"})
			v.show(job{Status: "running", Phase: "writing", RowsDone: 40, RowsTotal: total, Rate: ptr(20000.0), ETA: ptr(3.0)})
			v.show(job{Status: "completed", Phase: "done", RowsDone: 100, RowsTotal: total})
			v.end()
			s := out.String()
			if !strings.Contains(s, "100/100") || !strings.Contains(s, "\r") {
				t.Errorf("bar output %q lacks the count or the carriage returns", s)
			}
			if got := strings.ContainsRune(s, '\x1b'); got != tt.wantSC {
				t.Errorf("escape sequences: %v, want %v in %q", got, tt.wantSC, s)
			}
		})
	}
}
