package backoff_test

import (
	"context"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/backoff"
)

func TestDelayDoublesUpToMax(t *testing.T) {
	t.Parallel()
	b := backoff.Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.Delay(i + 1); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %s, want %s", i+1, got, w*time.Millisecond)
		}
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if backoff.Sleep(ctx, time.Hour) {
		t.Error("Sleep with an ended context reported the whole wait")
	}
	if !backoff.Sleep(context.Background(), time.Millisecond) {
		t.Error("a 1 ms Sleep did not pass")
	}
}
