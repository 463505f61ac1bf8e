package msg

import (
	"bytes"
	"sort"
)

// CIDList is a listing kept in its order (feed order), compactly: like CIDSet, a canonical
// CIDv1 is held as its 36 binary bytes in fixed-size chunks, other spellings as text. Index
// finds a CID's first position through a sorted permutation built on first use (4 bytes a
// CID), so a list costs ~40 bytes a CID where a []string costs ~80. Not safe for concurrent
// use.
type CIDList struct {
	chunks [][]packedCID
	n      int
	text   map[int]string // positions whose CID is not packable; their packed slot is zero
	// byValue holds the packed positions sorted by (bytes, position); nil until Index.
	byValue   []int32
	firstText map[string]int
}

// Add appends cid.
func (l *CIDList) Add(cid string) {
	l.byValue, l.firstText = nil, nil
	p, ok := packCID(cid)
	if !ok {
		if l.text == nil {
			l.text = map[int]string{}
		}
		l.text[l.n] = cid
	}
	if l.n%cidChunk == 0 && l.n/cidChunk == len(l.chunks) {
		l.chunks = append(l.chunks, make([]packedCID, 0, cidChunk))
	}
	last := &l.chunks[l.n/cidChunk]
	*last = append(*last, p) // zero for a text CID: a packed CID starts with version 1
	l.n++
}

// Len is the number of CIDs added, duplicates included.
func (l *CIDList) Len() int { return l.n }

// At is the i-th CID added.
func (l *CIDList) At(i int) string {
	if c, ok := l.text[i]; ok {
		return c
	}
	return unpackCID(l.at(i))
}

// Index is the first position of cid, or -1.
func (l *CIDList) Index(cid string) int {
	l.BuildIndex()
	p, ok := packCID(cid)
	if !ok {
		if i, found := l.firstText[cid]; found {
			return i
		}
		return -1
	}
	i := sort.Search(len(l.byValue), func(i int) bool { return bytes.Compare(l.at(int(l.byValue[i]))[:], p[:]) >= 0 })
	if i < len(l.byValue) && *l.at(int(l.byValue[i])) == p {
		return int(l.byValue[i])
	}
	return -1
}

// Has reports whether cid is in the list.
func (l *CIDList) Has(cid string) bool { return l.Index(cid) >= 0 }

// Bytes is the memory the list holds once indexed, for tests and metrics.
func (l *CIDList) Bytes() int {
	n := len(l.chunks)*cidChunk*len(packedCID{}) + cap(l.chunks)*24 + cap(l.byValue)*4
	for _, c := range l.text {
		n += len(c) + 24
	}
	return n
}

func (l *CIDList) at(i int) *packedCID { return &l.chunks[i/cidChunk][i%cidChunk] }

// BuildIndex sorts the packed positions by value, earliest first among equals, and notes each
// text CID's first position. Index does it on first use; a list shared between goroutines must
// have it done first, so that lookups only read.
func (l *CIDList) BuildIndex() {
	if l.byValue != nil || l.n == 0 {
		return
	}
	l.byValue = make([]int32, 0, l.n-len(l.text))
	for i := 0; i < l.n; i++ {
		if _, isText := l.text[i]; !isText {
			l.byValue = append(l.byValue, int32(i))
		}
	}
	sort.Slice(l.byValue, func(a, b int) bool {
		i, j := int(l.byValue[a]), int(l.byValue[b])
		if c := bytes.Compare(l.at(i)[:], l.at(j)[:]); c != 0 {
			return c < 0
		}
		return i < j
	})
	l.firstText = make(map[string]int, len(l.text))
	for i, c := range l.text {
		if first, seen := l.firstText[c]; !seen || i < first {
			l.firstText[c] = i
		}
	}
}

// ListingDigest is ListingDigest of the list's CIDs, without materialising them all: the
// sorted index puts duplicates side by side.
func (l *CIDList) ListingDigest() string {
	l.BuildIndex()
	var acc listingAcc
	for k, i := range l.byValue {
		if k == 0 || *l.at(int(i)) != *l.at(int(l.byValue[k-1])) {
			acc.add(unpackCID(l.at(int(i))))
		}
	}
	for c := range l.firstText {
		acc.add(c)
	}
	return acc.String()
}
