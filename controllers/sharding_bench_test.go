package controllers_test

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/operator"
)

var shardBenchLinks = flag.Int("shard-bench-links", 300, "BenchmarkShardRebalance: links in the ring")

// BenchmarkShardRebalance times, on envtest with fake engines, the rebalance of N links when a
// third shard joins two (from the join until every link runs on its rendezvous shard, each
// moved link drained first, at most operator.DefaultMaxDrains at once), beside a baseline from
// the same ring: the initial assignment of the same N links to the two shards (from the
// sharder's start until every link runs on its shard). BENCHMARKS.md gives the method.
func BenchmarkShardRebalance(b *testing.B) {
	n := *shardBenchLinks
	for range b.N {
		r := buildRing(b, func(s *controllers.Sharder) { s.MaxDrains = operator.DefaultMaxDrains })
		r.join("dwnsync-0")
		r.join("dwnsync-1")
		created := time.Now()
		keys := r.createLinks(n)
		fmt.Printf("shard-rebalance links=%d created in %v\n", n, time.Since(created).Round(time.Millisecond))
		start := time.Now()
		r.startSharder()
		r.settled(keys, "dwnsync-0", "dwnsync-1")
		assign := time.Since(start)
		before := map[string]string{}
		for name, key := range keys {
			before[name] = r.trace.runner(key)
		}
		start = time.Now()
		r.join("dwnsync-2")
		after := r.settled(keys, "dwnsync-0", "dwnsync-1", "dwnsync-2")
		rebalance := time.Since(start)
		moved := 0
		for name, o := range after {
			if o != before[name] {
				moved++
			}
		}
		b.ReportMetric(assign.Seconds(), "assign-s")
		b.ReportMetric(rebalance.Seconds(), "rebalance-s")
		b.ReportMetric(float64(moved), "moved-links")
		b.ReportMetric(rebalance.Seconds()/assign.Seconds(), "rebalance/assign")
		fmt.Printf("shard-rebalance links=%d moved=%d assign=%v rebalance=%v ratio=%.2f\n",
			n, moved, assign.Round(time.Millisecond), rebalance.Round(time.Millisecond), rebalance.Seconds()/assign.Seconds())
	}
}
