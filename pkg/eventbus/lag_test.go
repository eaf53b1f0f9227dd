package eventbus_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/eventbus/eventbustest"
)

// TestLagCollector: the lag of a group is each partition's end offset minus what the group
// committed there, read anew at every scrape; a group that has committed nothing has no lag
// series, and a broker that cannot be reached exports no lag but counts an error.
func TestLagCollector(t *testing.T) {
	t.Parallel()
	topic, group := eventbustest.Name("lag"), eventbustest.Name("group")
	brokers := eventbustest.NewCluster(t, 2, topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	produce := func(partition int32, n int) {
		t.Helper()
		for i := range n {
			r := &kgo.Record{Topic: topic, Partition: partition, Value: fmt.Appendf(nil, "r%d", i)}
			if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit := func(offsets map[int32]int64) {
		t.Helper()
		var os kadm.Offsets
		for p, at := range offsets {
			os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
		}
		if err := kadm.NewClient(cl).CommitAllOffsets(t.Context(), group, os); err != nil {
			t.Fatal(err)
		}
	}
	c := eventbus.NewLagCollector(cl, group)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := func(lags map[int32]int, errs int) {
		t.Helper()
		var b strings.Builder
		if len(lags) > 0 {
			b.WriteString("# HELP kafka_consumer_lag Records of a partition not yet committed by a consumer group (end offset minus committed offset), read from Kafka at scrape.\n# TYPE kafka_consumer_lag gauge\n")
			for p := range int32(2) {
				if v, ok := lags[p]; ok {
					fmt.Fprintf(&b, "kafka_consumer_lag{group=%q,partition=\"%d\",topic=%q} %d\n", group, p, topic, v)
				}
			}
		}
		fmt.Fprintf(&b, "# HELP kafka_consumer_lag_errors_total Scrapes that could not read a consumer group's lag from Kafka.\n# TYPE kafka_consumer_lag_errors_total counter\nkafka_consumer_lag_errors_total %d\n", errs)
		if err := testutil.GatherAndCompare(reg, strings.NewReader(b.String())); err != nil {
			t.Error(err)
		}
	}

	produce(0, 5)
	want(nil, 0) // nothing committed: no series
	commit(map[int32]int64{0: 2, 1: 0})
	want(map[int32]int{0: 3, 1: 0}, 0)
	produce(1, 4)
	want(map[int32]int{0: 3, 1: 4}, 0) // the group commits nothing more: its lag grows
	commit(map[int32]int64{0: 5, 1: 4})
	want(map[int32]int{0: 0, 1: 0}, 0)

	// Kafka away: no lag, one error per scrape, and the scrape itself does not fail.
	away, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.RetryTimeout(100*time.Millisecond),
		kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(away.Close)
	down := prometheus.NewPedanticRegistry()
	down.MustRegister(eventbus.NewLagCollector(away, group))
	var errs float64
	for range 2 {
		mfs, err := down.Gather()
		if err != nil {
			t.Fatalf("scrape with Kafka away: %v", err)
		}
		for _, mf := range mfs {
			switch mf.GetName() {
			case "kafka_consumer_lag":
				t.Errorf("lag exported with Kafka away: %v", mf.GetMetric())
			case "kafka_consumer_lag_errors_total":
				errs = mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
	}
	if errs != 2 {
		t.Errorf("kafka_consumer_lag_errors_total = %v after two failed scrapes, want 2", errs)
	}
}
