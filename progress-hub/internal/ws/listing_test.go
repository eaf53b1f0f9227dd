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
// the recent jobs started shares it; one that began after starts its own, so that no update
// between the read and its beginning can be missed.
func TestRecentJobsSharedOnlyByEarlierSubscriptions(t *testing.T) {
	t.Parallel()
	jobs := &gatedList{fakeJobs: newFakeJobs(runningJob(jobA, 1), runningJob(jobB, 2)), entered: make(chan struct{}, 4), release: make(chan struct{})}
	m := NewMetrics(prometheus.NewRegistry())
	s, err := NewServer(NewHub(testLogger(t), m), jobs, mustVerifier(t), testLogger(t), m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	early := time.Now()
	results := make(chan *listing, 3)
	go func() { results <- s.recentJobs(t.Context(), early, "") }() // starts the read
	<-jobs.entered
	go func() { results <- s.recentJobs(t.Context(), early, "") }() // began before it: shares it
	late := time.Now()
	go func() { results <- s.recentJobs(t.Context(), late, "") }() // began after it started: its own
	<-jobs.entered
	close(jobs.release)
	var got []*listing
	for range 3 {
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
		t.Errorf("%d distinct listings for 3 subscriptions, want 2", len(distinct))
	}
}
