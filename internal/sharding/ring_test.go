package sharding

import (
	"fmt"
	"math"
	"testing"
)

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("did:dht:tenant%d^https://dwn%d.example^*", i, i%97)
	}
	return out
}

func counts(ks, shards []string) map[string]int {
	c := map[string]int{}
	for _, k := range ks {
		c[Owner(k, shards)]++
	}
	return c
}

// Every shard holds about 1/N of the keys.
func TestOwnerSpreadsKeysEvenly(t *testing.T) {
	ks := keys(30000)
	for n := 2; n <= 7; n++ {
		shards := make([]string, n)
		for i := range shards {
			shards[i] = fmt.Sprintf("dwnsync-%d", i)
		}
		want := float64(len(ks)) / float64(n)
		for s, got := range counts(ks, shards) {
			if math.Abs(float64(got)-want) > 0.05*want {
				t.Errorf("%d shards: %s holds %d keys, want %.0f ±5%%", n, s, got, want)
			}
		}
	}
}

// A joining shard takes ~1/(N+1) of the keys, all from others; a leaving shard's keys are the
// only ones that move, spread over the rest. The owner does not depend on the shards' order.
func TestOwnerMovesOnlyTheShareOfTheShardThatJoinsOrLeaves(t *testing.T) {
	ks := keys(20000)
	for n := 1; n <= 6; n++ {
		before := make([]string, n)
		for i := range before {
			before[i] = fmt.Sprintf("dwnsync-%d", i)
		}
		joined := append(append([]string(nil), before...), fmt.Sprintf("dwnsync-%d", n))
		reversed := make([]string, len(joined))
		for i, s := range joined {
			reversed[len(joined)-1-i] = s
		}
		moved := 0
		for _, k := range ks {
			a, b := Owner(k, before), Owner(k, joined)
			if b != Owner(k, reversed) {
				t.Fatalf("key %s: the owner depends on the order of the shards", k)
			}
			if a != b {
				moved++
				if b != joined[n] {
					t.Fatalf("key %s moved from %s to %s, not to the joining shard", k, a, b)
				}
			}
		}
		want := float64(len(ks)) / float64(n+1)
		if math.Abs(float64(moved)-want) > 0.06*want {
			t.Errorf("%d→%d shards: %d keys moved, want %.0f ±6%%", n, n+1, moved, want)
		}
		// Leaving is joining reversed: only the leaving shard's keys move.
		for _, k := range ks {
			if a, b := Owner(k, joined), Owner(k, before); a != b && a != joined[n] {
				t.Fatalf("key %s moved from %s, which did not leave", k, a)
			}
		}
	}
}

func TestOwnerOfNoShards(t *testing.T) {
	if got := Owner("k", nil); got != "" {
		t.Fatalf("Owner with no shards = %q, want empty", got)
	}
}
