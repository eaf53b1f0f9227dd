package eventbus

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// LagCollector exports how far consumer groups are behind, asked of Kafka at each scrape:
// kafka_consumer_lag{group,topic,partition} is a partition's end offset (committed records
// only, as the consumers read) minus the offset the group committed there.
//
// The brokers are asked rather than the consumers' own fetch positions because a stuck or dead
// consumer is exactly the one whose lag matters: it commits nothing, and its lag grows while it
// fetches nothing either. Every replica of a service reports the same figures for its groups;
// aggregate them with max, not sum. A failed query exports no lag and counts
// kafka_consumer_lag_errors_total, so that Kafka being away does not fail the whole scrape.
type LagCollector struct {
	adm     *kadm.Client
	groups  []string
	timeout time.Duration
	errors  atomic.Uint64
}

// NewLagCollector reports the lag of groups through cl (any client of the cluster; it only
// sends admin requests).
func NewLagCollector(cl *kgo.Client, groups ...string) *LagCollector {
	return &LagCollector{adm: kadm.NewClient(cl), groups: groups, timeout: 2 * time.Second}
}

var (
	lagDesc = prometheus.NewDesc("kafka_consumer_lag",
		"Records of a partition not yet committed by a consumer group (end offset minus committed offset), read from Kafka at scrape.",
		[]string{"group", "topic", "partition"}, nil)
	lagErrorsDesc = prometheus.NewDesc("kafka_consumer_lag_errors_total",
		"Scrapes that could not read a consumer group's lag from Kafka.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- lagErrorsDesc
}

// Collect implements prometheus.Collector.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	defer func() {
		ch <- prometheus.MustNewConstMetric(lagErrorsDesc, prometheus.CounterValue, float64(c.errors.Load()))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	lags, err := c.adm.Lag(ctx, c.groups...)
	if err != nil {
		c.errors.Add(1)
		return
	}
	for _, g := range c.groups {
		l, ok := lags[g]
		switch {
		case !ok:
			c.errors.Add(1)
			continue
		case errors.Is(l.Error(), kerr.GroupIDNotFound):
			continue // no member has committed yet: no lag to speak of
		case l.Error() != nil:
			c.errors.Add(1)
			continue
		}
		for _, m := range l.Lag.Sorted() {
			if m.Err != nil || m.Lag < 0 {
				continue // no end offset for this partition now: no figure rather than a wrong one
			}
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(m.Lag),
				g, m.Topic, strconv.Itoa(int(m.Partition)))
		}
	}
}
