package msg

import (
	"encoding/binary"
	"strings"
	"testing"
)

// testCID is a distinct, valid dag-cbor CIDv1 (base32, 59 characters) for each i.
func testCID(i int) string {
	p := packedCID{1, codecDagCBOR, 0x12, 32}
	binary.BigEndian.PutUint64(p[4:], uint64(i)*0x9E3779B97F4A7C15)
	binary.BigEndian.PutUint64(p[28:], uint64(i))
	return unpackCID(&p)
}

func TestCIDSetCompactAndExact(t *testing.T) {
	var set CIDSet
	const n = 100000
	for i := 0; i < n; i++ {
		set.Add(testCID(i))
	}
	set.Add(testCID(7))          // a duplicate
	set.Add("QmNotACIDv1Base32") // kept as text
	if set.Len() != n+1 {
		t.Fatalf("Len %d, want %d (duplicates removed, odd spellings kept)", set.Len(), n+1)
	}
	for _, c := range []string{testCID(0), testCID(n - 1), "QmNotACIDv1Base32", RawDataCID([]byte("x"))} {
		want := c != RawDataCID([]byte("x"))
		if set.Has(c) != want {
			t.Errorf("Has(%s) = %v, want %v", c, !want, want)
		}
	}
	seen := 0
	set.Each(func(c string) bool {
		if !strings.HasPrefix(c, "Qm") {
			if _, ok := packCID(c); !ok {
				t.Fatalf("Each gave back %q, not the CID that went in", c)
			}
		}
		seen++
		return true
	})
	if seen != n+1 || !set.Has(testCID(1234)) {
		t.Fatalf("Each saw %d", seen)
	}
	if per := float64(set.Bytes()) / float64(set.Len()); per > 50 {
		t.Fatalf("%.1f bytes per CID, want ≤ 50", per)
	}
}
