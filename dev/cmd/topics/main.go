// Command topics creates Kafka topics for the local stack, idempotently.
//
//	topics [-brokers 127.0.0.1:9092] [-partitions 12] [-replication 1] [-wait 60s] topic...
//
// It first waits (up to -wait) until a broker answers a metadata request, then creates every
// topic given as an argument. A topic that already exists counts as success. It prints one
// line per topic with its partition count, and fails when an existing topic has fewer
// partitions than asked (a broker-side auto-created topic, for instance) unless -grow is set,
// in which case partitions are added.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	defBrokers := os.Getenv("KAFKA_BROKERS")
	if defBrokers == "" {
		defBrokers = "127.0.0.1:9092"
	}
	brokers := flag.String("brokers", defBrokers, "comma-separated seed brokers (default $KAFKA_BROKERS)")
	partitions := flag.Int("partitions", 12, "partitions for new topics")
	replication := flag.Int("replication", 1, "replication factor for new topics")
	wait := flag.Duration("wait", 60*time.Second, "how long to wait for the broker to answer metadata")
	grow := flag.Bool("grow", false, "add partitions to an existing topic that has fewer than -partitions")
	list := flag.Bool("list", false, "only list the existing topics and their partition counts")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] topic...\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if !*list && flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.DialTimeout(2*time.Second),
	)
	if err != nil {
		fatalf("kafka client: %v", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	ctx, cancel := context.WithTimeout(context.Background(), *wait+30*time.Second)
	defer cancel()

	if err := waitForBroker(ctx, adm, *wait); err != nil {
		fatalf("broker %s not answering after %s: %v", *brokers, *wait, err)
	}

	if *list {
		td, err := adm.ListTopics(ctx)
		if err != nil {
			fatalf("list topics: %v", err)
		}
		names := td.Names()
		sort.Strings(names)
		for _, n := range names {
			fmt.Printf("%s\t%d partitions\n", n, len(td[n].Partitions))
		}
		return
	}

	failed := false
	for _, topic := range flag.Args() {
		if err := ensureTopic(ctx, adm, topic, int32(*partitions), int16(*replication), *grow); err != nil {
			fmt.Fprintf(os.Stderr, "topics: %s: %v\n", topic, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// waitForBroker polls a metadata request until one succeeds or the deadline passes.
func waitForBroker(ctx context.Context, adm *kadm.Client, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		attempt, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := adm.BrokerMetadata(attempt)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func ensureTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, replication int16, grow bool) error {
	resp, err := adm.CreateTopic(ctx, partitions, replication, nil, topic)
	state := "created"
	switch {
	case err == nil && resp.Err == nil:
	case errors.Is(err, kerr.TopicAlreadyExists) || errors.Is(resp.Err, kerr.TopicAlreadyExists):
		state = "exists"
	case err != nil:
		return err
	default:
		return resp.Err
	}

	// Describe it (also right after creation, so that we report what the broker really has).
	have, err := partitionCount(ctx, adm, topic)
	if err != nil {
		return err
	}
	if have < int(partitions) {
		if !grow {
			return fmt.Errorf("has %d partitions, want %d (rerun with -grow to add them)", have, partitions)
		}
		resps, err := adm.UpdatePartitions(ctx, int(partitions), topic)
		if err == nil {
			err = resps.Error()
		}
		if err != nil {
			return fmt.Errorf("add partitions: %w", err)
		}
		state = fmt.Sprintf("grown from %d", have)
		have = int(partitions)
	}
	fmt.Printf("topic %s: %d partitions (%s)\n", topic, have, state)
	return nil
}

// partitionCount reads the topic's partition count, retrying briefly while metadata for a
// just-created topic propagates.
func partitionCount(ctx context.Context, adm *kadm.Client, topic string) (int, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		td, err := adm.ListTopics(ctx, topic)
		if err == nil {
			if d, ok := td[topic]; ok && d.Err == nil && len(d.Partitions) > 0 {
				return len(d.Partitions), nil
			} else if ok && d.Err != nil {
				err = d.Err
			} else {
				err = errors.New("not in metadata yet")
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("describe: %w", err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "topics: "+format+"\n", args...)
	os.Exit(1)
}
