package claimloop

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLoop: claims run at most Slots at a time, all of them; with nothing due the loop sleeps
// until woken; Run returns once ctx ends and the work under way is done.
func TestLoop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu        sync.Mutex
		queue     = []int{1, 2, 3, 4, 5}
		running   atomic.Int32
		most      atomic.Int32
		done      = make(chan int, 10)
		wake      = make(chan struct{}, 1)
		nextCalls atomic.Int32
	)
	l := Loop[int]{
		Slots: 2, Poll: time.Hour, Wake: wake,
		Claim: func(context.Context) (int, bool) {
			mu.Lock()
			defer mu.Unlock()
			if len(queue) == 0 {
				return 0, false
			}
			n := queue[0]
			queue = queue[1:]
			return n, true
		},
		Work: func(_ context.Context, n int) {
			now := running.Add(1)
			for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
			}
			time.Sleep(10 * time.Millisecond) // holds its slot a while
			running.Add(-1)
			done <- n
		},
		Next: func(context.Context) (*time.Time, error) { nextCalls.Add(1); return nil, nil },
	}
	ended := make(chan error, 1)
	go func() { ended <- l.Run(ctx) }()
	for range 5 {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the five claims were not all worked")
		}
	}
	if m := most.Load(); m > 2 {
		t.Errorf("%d claims ran at once, slots 2", m)
	}
	// Nothing due and an hour's poll: only a wake-up brings the next claim in.
	mu.Lock()
	queue = append(queue, 6)
	mu.Unlock()
	wake <- struct{}{}
	select {
	case n := <-done:
		if n != 6 {
			t.Errorf("worked %d, want 6", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a wake-up did not end the sleep")
	}
	cancel()
	select {
	case err := <-ended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
	if nextCalls.Load() == 0 {
		t.Error("the loop never asked when the next work is due")
	}
}
