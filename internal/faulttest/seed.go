package faulttest

import (
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwnserver"
)

// seedBatch is how many notes one Seed call writes: a batch finishes well inside the client's
// call timeout even at a few messages a second.
const seedBatch = 1000

// Seeded is what SeedMany wrote.
type Seeded struct {
	Messages     int // messages the server accepted
	ExpectedCIDs int // what the tenant's listing holds afterwards (superseded writes are pruned)
	Elapsed      time.Duration
}

// SeedMany writes at least notes small records to the tenant id at url, in batches through the
// dwn-sdk-js client (real signed messages, 8 in flight), then a mixed batch: 20 notes, 20 records above
// the inline limit, 30 updates and 10 deletes. It logs the rate it measured.
func SeedMany(t testing.TB, client *dwnserver.Client, url string, id dwnserver.Identity, notes int) Seeded {
	t.Helper()
	var s Seeded
	start := time.Now()
	add := func(spec dwnserver.SeedSpec) {
		r, err := client.Seed(url, id, spec)
		if err != nil {
			t.Fatalf("seeding %s: %v", url, err)
		}
		s.Messages += r.Messages
		s.ExpectedCIDs += r.ExpectedCIDs
	}
	for left := notes; left > 0; left -= seedBatch {
		add(dwnserver.SeedSpec{Records: min(left, seedBatch), Prefix: "bulk"})
	}
	add(dwnserver.SeedSpec{Records: 20, Large: 20, Updates: 30, Deletes: 10, Prefix: "mixed"})
	s.Elapsed = time.Since(start)
	t.Logf("seeded %s with %d messages (%d CIDs listed) in %v: %.0f messages/s",
		url, s.Messages, s.ExpectedCIDs, s.Elapsed.Round(time.Millisecond), float64(s.Messages)/s.Elapsed.Seconds())
	return s
}
