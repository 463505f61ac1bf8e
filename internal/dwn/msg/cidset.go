package msg

import (
	"bytes"
	"slices"
	"sort"
)

// CIDSet is a compact set of message CIDs for listings of a whole tenant: a CIDv1 in base32
// (the form every DWN server prints, 59 characters, 75 bytes as a Go string) is kept as its 36
// binary bytes, in fixed-size chunks so that growing never copies (a doubling slice would
// briefly hold twice the set). Other CID spellings are kept as strings. Add is append-only;
// the first lookup sorts and deduplicates. Not safe for concurrent use.
type CIDSet struct {
	chunks [][]packedCID
	n      int // packed CIDs held
	other  []string
	sorted bool
}

// packedCID is a CIDv1 with a 32-byte multihash digest: version, codec, hash code, length, digest.
type packedCID [36]byte

// cidChunk is how many packed CIDs one chunk holds (~576 KiB).
const cidChunk = 1 << 14

// Add puts cid in the set.
func (s *CIDSet) Add(cid string) {
	s.sorted = false
	p, ok := packCID(cid)
	if !ok {
		s.other = append(s.other, cid)
		return
	}
	if s.n%cidChunk == 0 && s.n/cidChunk == len(s.chunks) {
		s.chunks = append(s.chunks, make([]packedCID, 0, cidChunk))
	}
	last := &s.chunks[s.n/cidChunk]
	*last = append(*last, p)
	s.n++
}

// Has reports whether cid is in the set.
func (s *CIDSet) Has(cid string) bool {
	s.sort()
	if p, ok := packCID(cid); ok {
		i := sort.Search(s.n, func(i int) bool { return bytes.Compare(s.at(i)[:], p[:]) >= 0 })
		return i < s.n && *s.at(i) == p
	}
	_, found := slices.BinarySearch(s.other, cid)
	return found
}

// Len is the number of distinct CIDs.
func (s *CIDSet) Len() int {
	s.sort()
	return s.n + len(s.other)
}

// Each calls fn with every CID (packed ones first, each group in byte order) until fn returns
// false.
func (s *CIDSet) Each(fn func(cid string) bool) {
	s.sort()
	for i := 0; i < s.n; i++ {
		if !fn(unpackCID(s.at(i))) {
			return
		}
	}
	for _, c := range s.other {
		if !fn(c) {
			return
		}
	}
}

// Bytes is the memory the set holds (its slices' capacity), for tests and metrics.
func (s *CIDSet) Bytes() int {
	n := len(s.chunks)*cidChunk*len(packedCID{}) + cap(s.chunks)*24 + cap(s.other)*16
	for _, c := range s.other {
		n += len(c)
	}
	return n
}

func (s *CIDSet) at(i int) *packedCID { return &s.chunks[i/cidChunk][i%cidChunk] }

// sort orders and deduplicates both groups in place.
func (s *CIDSet) sort() {
	if s.sorted {
		return
	}
	sort.Sort(packedOrder{s})
	kept := 0
	for i := 0; i < s.n; i++ {
		if kept == 0 || *s.at(i) != *s.at(kept - 1) {
			*s.at(kept) = *s.at(i)
			kept++
		}
	}
	s.n = kept
	s.chunks = s.chunks[:(kept+cidChunk-1)/cidChunk]
	if len(s.chunks) > 0 {
		last := len(s.chunks) - 1
		s.chunks[last] = s.chunks[last][:kept-last*cidChunk]
	}
	slices.Sort(s.other)
	s.other = slices.Compact(s.other)
	s.sorted = true
}

// packedOrder sorts a CIDSet's chunks as one sequence.
type packedOrder struct{ s *CIDSet }

func (o packedOrder) Len() int           { return o.s.n }
func (o packedOrder) Less(i, j int) bool { return bytes.Compare(o.s.at(i)[:], o.s.at(j)[:]) < 0 }
func (o packedOrder) Swap(i, j int)      { a, b := o.s.at(i), o.s.at(j); *a, *b = *b, *a }

const base32Lower = "abcdefghijklmnopqrstuvwxyz234567"

// packCID decodes "b" + base32(lower, unpadded) of a 36-byte CIDv1 with a 32-byte digest.
func packCID(cid string) (packedCID, bool) {
	var p packedCID
	if len(cid) != 59 || cid[0] != 'b' {
		return p, false
	}
	var acc uint64
	bits, n := 0, 0
	for i := 1; i < len(cid); i++ {
		v := base32Value(cid[i])
		if v < 0 {
			return p, false
		}
		acc = acc<<5 | uint64(v)
		if bits += 5; bits >= 8 {
			bits -= 8
			p[n] = byte(acc >> bits)
			n++
		}
	}
	if n != len(p) || acc&(1<<bits-1) != 0 || p[0] != 1 || p[3] != 32 {
		return p, false // not a canonical CIDv1 with a 32-byte digest: keep the text
	}
	return p, true
}

func base32Value(c byte) int {
	switch {
	case c >= 'a' && c <= 'z':
		return int(c - 'a')
	case c >= '2' && c <= '7':
		return int(c-'2') + 26
	}
	return -1
}

func unpackCID(p *packedCID) string {
	out := make([]byte, 1, 59)
	out[0] = 'b'
	var acc uint64
	bits := 0
	for _, b := range p {
		acc = acc<<8 | uint64(b)
		for bits += 8; bits >= 5; {
			bits -= 5
			out = append(out, base32Lower[acc>>bits&31])
		}
	}
	if bits > 0 {
		out = append(out, base32Lower[acc<<(5-bits)&31])
	}
	return string(out)
}
