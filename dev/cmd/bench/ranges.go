package main

import (
	"context"
	"fmt"
	"syscall"
)

// ranges (issue 13): one CSV export of the whole catalog cut into rangesCount key ranges and
// written by the exporter group, first of one exporter, then of two (one slot each). The
// stack's own exporter, which splits only past 2M rows, is paused (SIGSTOP) meanwhile, so that
// the spawned ones, told to split, take the job; it resumes after. Figures: each run's rows/s
// and their ratio (ranges_2_vs_1_ratio), which on this host is bounded by its two cores
// (PostgreSQL, the exporters and the S3 server share them).
const rangesCount = 8

func (b *bench) benchRanges(ctx context.Context) {
	const name = "ranges"
	pid, err := b.servicePID("exporter")
	if err != nil {
		b.fail(name, err.Error())
		return
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		b.fail(name, fmt.Sprintf("pausing the stack's exporter: %v", err))
		return
	}
	defer func() {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			b.logf("%s: WARNING: the stack's exporter (pid %d) could not be resumed: %v", name, pid, err)
		}
	}()
	rangeRows := max(b.count/rangesCount, 1)
	for _, n := range []int{1, 2} {
		stop, err := b.spawnExporters(ctx, n, rangeRows)
		if err != nil {
			b.fail(name, err.Error())
			return
		}
		b.logf("%s: %d exporter(s), ranges of %d rows", name, n, rangeRows)
		b.benchExport(ctx, exportSpec{name: fmt.Sprintf("ranges_%d_exporters", n), format: "csv", noRSS: true})
		stop()
	}
}

// spawnExporters starts n exporters (one slot each) that split exports into ranges of
// rangeRows rows.
func (b *bench) spawnExporters(ctx context.Context, n int, rangeRows int64) (stop func(), err error) {
	stop, _, err = b.spawn(ctx, "exporter", n, 18291, func(i int, addr string) []string {
		return []string{"EXPORTER_ADDR=" + addr, fmt.Sprintf("EXPORTER_ID=bench-ranges-%d", i+1),
			fmt.Sprintf("EXPORTER_CHUNK_ROWS=%d", rangeRows), "EXPORTER_CONCURRENCY=1", "EXPORTER_RESCUE_INTERVAL=100ms",
			"LOG_LEVEL=warn"}
	})
	return stop, err
}
