package api

import (
	"errors"
	"testing"
	"time"
)

// TestPace: a client that blocks the writes and takes less than the minimum rate over a
// window is too slow; a slow source (writes quick, few bytes) and a fast client are not.
func TestPace(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	run := func(n int, every, blocked time.Duration, writes int) error {
		p := &pace{min: 16 << 10, window: 30 * time.Second}
		at := t0
		for range writes {
			if err := p.wrote(n, at, at.Add(blocked)); err != nil {
				return err
			}
			at = at.Add(every)
		}
		return nil
	}
	// 1 KiB/s: 64 KiB writes, each blocked 64 s.
	if err := run(64<<10, 64*time.Second, 64*time.Second, 2); !errors.Is(err, ErrClientTooSlow) {
		t.Errorf("1 KiB/s reader: %v", err)
	}
	// 8 KiB/s: 8 KiB a second, each write blocked 0.9 s.
	if err := run(8<<10, time.Second, 900*time.Millisecond, 40); !errors.Is(err, ErrClientTooSlow) {
		t.Errorf("8 KiB/s reader: %v", err)
	}
	// A slow source: 1 KiB a second, written at once.
	if err := run(1<<10, time.Second, time.Millisecond, 100); err != nil {
		t.Errorf("slow source: %v", err)
	}
	// A fast client: 64 KiB every 100 ms.
	if err := run(64<<10, 100*time.Millisecond, 50*time.Millisecond, 1000); err != nil {
		t.Errorf("fast client: %v", err)
	}
}
