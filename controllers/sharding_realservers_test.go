package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/operator"
	"github.com/dwnsync/dwnsync/internal/sharding"
)

// realShardLink is one tenant's link between the two real servers.
type realShardLink struct {
	name string
	key  string
	id   dwnserver.Identity
}

// Two real operator replicas with --sharding replicate tenants between real @web5/dwn-server
// instances while records are written on both sides, through two hand-overs: a second shard
// joins (its share is drained off the first), then the first stops without releasing its Lease
// (its links move after the fencing delay, and the leader's sharder moves with them). Nothing
// written is lost, no link runs on both replicas at once (sampled), and the messages written to
// the servers stay within 1.2× the records written: a hand-over resumes, it does not re-copy.
func TestShardHandOversOnRealServersLoseNothing(t *testing.T) {
	servers := dwnserver.Start(t, 2)
	a, b := servers[0], servers[1] // a: the cluster's own server, b: the remote
	dwn := dwnserver.NewClient(t)
	ns := newNamespace(t)
	ctx := context.Background()
	shards := []string{"dwnsync-0", "dwnsync-1"}

	// Tenants until each shard of the pair owns one: the join then moves at least one link, and
	// the first shard keeps one until it stops.
	links := newRealShardLinks(t, dwn, ns, b.URL, shards, 3)

	counter := &applyCounter{base: http.DefaultTransport.(*http.Transport).Clone()}
	start := func(name string) *replica {
		return startReplicaWith(t, ns, func(o *operator.Options) {
			o.LocalEndpoint = a.URL
			o.MinCounterInterval = time.Second
			o.HTTPClient = &http.Client{Transport: counter}
			o.Sharding = operator.ShardingOptions{Enabled: true, ShardName: name, LeaseNamespace: ns, Ring: ns}
		})
	}
	replicas := map[string]*replica{shards[0]: start(shards[0])}
	eventually(t, 2*time.Minute, shards[0]+" ready", replicas[shards[0]].ready)
	for _, l := range links {
		waitLive(t, ns, l.name, 3*time.Minute)
	}

	// The sampler: which replicas run each link, every 20 ms, until the test ends.
	var (
		stopped   sync.Map // shard name → true once its replica stopped
		overlapMu sync.Mutex
		overlaps  []string
	)
	sampleCtx, endSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	replicasMu := sync.Mutex{}
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case <-tick.C:
			}
			replicasMu.Lock()
			for _, l := range links {
				var on []string
				for name, r := range replicas {
					if _, gone := stopped.Load(name); gone {
						continue
					}
					if _, running := r.op.Engine().Snapshot(l.key); running {
						on = append(on, name)
					}
				}
				if len(on) > 1 {
					overlapMu.Lock()
					overlaps = append(overlaps, fmt.Sprintf("%s ran on %v at %s", l.name, on, time.Now().Format(time.StampMilli)))
					overlapMu.Unlock()
				}
			}
			replicasMu.Unlock()
		}
	}()
	t.Cleanup(func() { endSampling(); <-sampled })

	// The writer: one record every 300 ms, on A and B in turn, over the tenants in turn, at most
	// 60; it runs through both hand-overs.
	written := make([][]string, len(links)) // CIDs per link
	var count atomic.Int64
	writerCtx, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan error, 1)
	go func() {
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for n := 0; n < 60; n++ {
			select {
			case <-writerCtx.Done():
				writerDone <- nil
				return
			case <-tick.C:
			}
			i, url := n%len(links), a.URL
			if n%2 == 1 {
				url = b.URL
			}
			w, err := dwn.Write(url, links[i].id, dwnserver.WriteOpts{Data: []byte(fmt.Sprintf("record %d during hand-overs", n)), DataFormat: "text/plain"})
			if err != nil {
				writerDone <- fmt.Errorf("write %d on %s: %w", n, url, err)
				return
			}
			written[i] = append(written[i], w.CID)
			count.Add(1)
		}
		writerDone <- nil
	}()
	eventually(t, time.Minute, "the writer under way", func() (bool, string) { return count.Load() >= 5, fmt.Sprintf("%d written", count.Load()) })

	// Hand-over 1: the second shard joins; its share is drained off the first and starts there.
	replicasMu.Lock()
	replicas[shards[1]] = start(shards[1])
	replicasMu.Unlock()
	runsOn := func(want func(l realShardLink) string) func() (bool, string) {
		return func() (bool, string) {
			for _, l := range links {
				w := want(l)
				if got := getLink(t, ns, l.name).Labels[sharding.OwnerLabel]; got != w {
					return false, fmt.Sprintf("%s labelled %q, want %q", l.name, got, w)
				}
				if _, running := replicas[w].op.Engine().Snapshot(l.key); !running {
					return false, fmt.Sprintf("%s not running on %s", l.name, w)
				}
			}
			return true, ""
		}
	}
	eventually(t, 3*time.Minute, "each link running on its shard of two", runsOn(func(l realShardLink) string { return sharding.Owner(l.key, shards) }))
	t.Logf("hand-over 1 done with %d records written", count.Load())

	// Hand-over 2: the first shard (the leader) stops without releasing its Lease; its links run
	// on the second after leaseDuration+margin, assigned by the second's sharder.
	replicas[shards[0]].stop()
	stopped.Store(shards[0], true)
	eventually(t, 3*time.Minute, "every link running on "+shards[1], runsOn(func(realShardLink) string { return shards[1] }))
	t.Logf("hand-over 2 done with %d records written", count.Load())

	stopWriter()
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, l := range links {
		converged(t, dwn, a.URL, b.URL, l.id, 3*time.Minute)
		onA, err := dwn.Query(a.URL, l.id)
		if err != nil {
			t.Fatal(err)
		}
		for _, cid := range written[i] {
			if !slices.Contains(onA, cid) {
				t.Errorf("%s: record %s written during the hand-overs is lost", l.name, cid)
			}
		}
		total += len(written[i])
	}
	endSampling()
	<-sampled
	if len(overlaps) > 0 {
		t.Fatalf("links ran on both replicas at once:\n%v", overlaps)
	}
	applies := counter.n.Load()
	t.Logf("%d records written on A and B through two hand-overs; %d messages written by the operators", total, applies)
	if total < 10 {
		t.Fatalf("only %d records written during the hand-overs: the test proved little", total)
	}
	if float64(applies) > 1.2*float64(total) {
		t.Fatalf("%d messages written to the servers for %d records: hand-overs re-copied (> 1.2×)", applies, total)
	}
}
