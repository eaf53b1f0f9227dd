package ws

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// gatedList counts List calls and holds each until release is closed.
type gatedList struct {
	*fakeJobs
	mu      sync.Mutex
	calls   int
	entered chan struct{}
	release chan struct{}
}

func (g *gatedList) List(ctx context.Context, f jobstore.ListFilter) ([]jobstore.Job, string, error) {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	g.entered <- struct{}{}
	<-g.release
	return g.fakeJobs.List(ctx, f)
}

// TestRecentJobsSharedOnlyByEarlierSubscriptions: a subscription that began before a read of
// the recent jobs started shares it; those that began after wait for the next read, which
// they all share, so that no update between a read and their beginning can be missed and a
// storm of subscriptions costs two reads, not one each.
func TestRecentJobsSharedOnlyByEarlierSubscriptions(t *testing.T) {
	t.Parallel()
	jobs := &gatedList{fakeJobs: newFakeJobs(runningJob(jobA, 1), runningJob(jobB, 2)), entered: make(chan struct{}, 4), release: make(chan struct{})}
	m := NewMetrics(prometheus.NewRegistry())
	s, err := NewServer(NewHub(testLogger(t), m), jobs, mustVerifier(t), testLogger(t), m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	early := time.Now()
	results := make(chan *listing, 5)
	go func() { results <- s.recentJobs(t.Context(), early, "") }() // starts the read
	<-jobs.entered
	go func() { results <- s.recentJobs(t.Context(), early, "") }() // began before it: shares it
	late := time.Now()
	for range 3 { // began after it started: the next read, shared
		go func() { results <- s.recentJobs(t.Context(), late, "") }()
	}
	eventually(t, "three subscriptions waiting for the next read", func() bool {
		s.listMu.Lock()
		defer s.listMu.Unlock()
		return s.listings[""] != nil && s.listings[""].next != nil && s.listings[""].next.sharers == 3
	})
	close(jobs.release)
	var got []*listing
	for range 5 {
		got = append(got, <-results)
	}
	jobs.mu.Lock()
	calls := jobs.calls
	jobs.mu.Unlock()
	if calls != 2 {
		t.Errorf("List called %d times, want 2", calls)
	}
	distinct := map[*listing]int{}
	for _, l := range got {
		if l.err != nil || len(l.msgs) != 2 || len(l.snapshots) != 2 {
			t.Fatalf("listing %+v", l)
		}
		distinct[l]++
	}
	if len(distinct) != 2 {
		t.Errorf("%d distinct listings for 5 subscriptions, want 2", len(distinct))
	}
	for l, n := range distinct {
		if want := map[bool]int{true: 2, false: 3}[l.started.Before(late)]; n != want {
			t.Errorf("listing started %v shared by %d, want %d", l.started, n, want)
		}
	}
	eventually(t, "the scope forgotten once idle", func() bool {
		s.listMu.Lock()
		defer s.listMu.Unlock()
		return len(s.listings) == 0
	})
}
