package msg

import (
	"testing"
	"time"
)

// A CIDList gives back every CID in the order added, finds a CID's first position (packed
// and text spellings alike), digests like ListingDigest, and stays compact.
func TestCIDListOrderIndexDigest(t *testing.T) {
	const n = 40_000 // more than two chunks
	var l CIDList
	var plain []string
	add := func(c string) { l.Add(c); plain = append(plain, c) }
	for i := n - 1; i >= 0; i-- { // not in byte order: the list must keep its own
		add(testCID(i))
	}
	add("QmNotACIDv1Base32")
	add(testCID(7)) // duplicates: Index is the first position
	add("QmNotACIDv1Base32")

	if l.Len() != len(plain) {
		t.Fatalf("Len %d, want %d", l.Len(), len(plain))
	}
	for i, c := range plain {
		if l.At(i) != c {
			t.Fatalf("At(%d) = %q, want %q", i, l.At(i), c)
		}
	}
	for c, want := range map[string]int{testCID(n - 1): 0, testCID(7): n - 1 - 7, "QmNotACIDv1Base32": n, RawDataCID([]byte("x")): -1, "Qmabsent": -1} {
		if got := l.Index(c); got != want {
			t.Errorf("Index(%s) = %d, want %d", c, got, want)
		}
	}
	if got, want := l.ListingDigest(), ListingDigest(plain); got != want {
		t.Fatalf("ListingDigest %s, want %s (as over the same CIDs as text)", got, want)
	}
	l.Add(testCID(n)) // adding after a lookup re-indexes
	if l.Index(testCID(n)) != len(plain) {
		t.Fatalf("a CID added after a lookup is not found at %d", len(plain))
	}
	if per := float64(l.Bytes()) / float64(l.Len()); per > 52 {
		t.Fatalf("%.1f bytes per CID, want ≤ 52 (36 packed + 4 index, chunks partly filled)", per)
	}
}

// Indexing 100k CIDs stays cheap (a reconcile indexes both sides' listings once).
func BenchmarkCIDListIndex100k(b *testing.B) {
	cids := make([]string, 100_000)
	for i := range cids {
		cids[i] = testCID(i)
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		var l CIDList
		for _, c := range cids {
			l.Add(c)
		}
		_ = l.ListingDigest()
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/list")
}
