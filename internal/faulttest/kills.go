package faulttest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// RewriteAllowance bounds the writes a target may receive during a bootstrap with kills:
// messages × 1.2 (what was in flight at each kill is written again, nothing more).
const RewriteAllowance = 1.2

// SeedEnv replays a run's random choices: set it to the seed a failed run logged.
const SeedEnv = "DWNSYNC_FAULT_SEED"

// SeededRNG returns an RNG seeded from $DWNSYNC_FAULT_SEED or the clock, and logs the seed.
func SeededRNG(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(SeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want an unsigned integer", SeedEnv, s)
		}
		seed = v
	}
	t.Logf("fault seed %d (replay with %s=%d)", seed, SeedEnv, seed)
	return rand.New(rand.NewPCG(seed, 0))
}

// KillPoints draws n distinct, increasing write counts between 1 and 85 % of messages: kill i
// happens once the target has received that many writes.
func KillPoints(rng *rand.Rand, n, messages int) []int {
	upTo := max(messages*85/100, n)
	points := map[int]bool{}
	for len(points) < n {
		points[1+rng.IntN(upTo)] = true
	}
	out := make([]int, 0, n)
	for p := range points {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// WithinRewriteAllowance fails when writes exceed messages × RewriteAllowance.
func WithinRewriteAllowance(writes, messages int) error {
	if limit := int(float64(messages) * RewriteAllowance); writes > limit {
		return fmt.Errorf("%d writes to the target for %d messages: more than %.1f× (%d); the restarts re-copied what was already there",
			writes, messages, RewriteAllowance, limit)
	}
	return nil
}
