package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/sharding"
)

// A shard joins one that holds 30 links, with at most 3 drains in flight: the old shard's
// stops are let through one at a time, and at every step at most 3 links are draining, 3
// whenever 3 are left to move; the share still ends on the joining shard.
func TestShardJoinDrainsInBoundedBatches(t *testing.T) {
	const maxDrains = 3
	r := newRingWith(t, func(s *controllers.Sharder) { s.MaxDrains = maxDrains })
	r.join("dwnsync-0")
	keys := r.createLinks(30)
	r.settled(keys, "dwnsync-0")
	both := []string{"dwnsync-0", "dwnsync-1"}
	share := 0
	for _, k := range keys {
		if sharding.Owner(k, both) == "dwnsync-1" {
			share++
		}
	}
	if share <= maxDrains {
		t.Fatalf("only %d of 30 links score highest on the joining shard: too few to show batches", share)
	}

	gate := &removeGate{held: make(chan string, len(keys)), release: make(chan struct{})}
	r.shards["dwnsync-0"].engine.gate.Store(gate)
	defer close(gate.release) // frees any stop still held when the test fails
	r.join("dwnsync-1")
	maxSeen, letGo := 0, 0
	eventually(t, 3*time.Minute, "the joining shard's share moved", func() (bool, string) {
		var list v1alpha1.ReplicationLinkList
		if err := k8sClient.List(context.Background(), &list, client.InNamespace(r.ns)); err != nil {
			return false, err.Error()
		}
		draining, moved := 0, 0
		for _, l := range list.Items {
			if l.Labels[sharding.DrainLabel] != "" {
				draining++
			}
			if l.Labels[sharding.OwnerLabel] == "dwnsync-1" {
				moved++
			}
		}
		if draining > maxDrains {
			t.Fatalf("%d links draining at once, want at most %d", draining, maxDrains)
		}
		maxSeen = max(maxSeen, draining)
		// A stop is let through only once the sharder filled the batch (or all that is left).
		if draining == min(maxDrains, share-letGo) {
			select {
			case <-gate.held:
				gate.release <- struct{}{}
				letGo++
			default:
			}
		}
		return moved == share && draining == 0, fmt.Sprintf("%d of %d moved, %d draining, %d stops let through", moved, share, draining, letGo)
	})
	if maxSeen != maxDrains {
		t.Fatalf("at most %d links draining at once, want batches of %d", maxSeen, maxDrains)
	}
	r.shards["dwnsync-0"].engine.gate.Store(nil)
	r.settled(keys, both...)
}
