package msg

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
)

// smtDepth is the key length in bits (SHA-256).
const smtDepth = 256

// smtDefaults[d] is the hash of an empty subtree at depth d (D[256] = zeros,
// D[d] = SHA-256(D[d+1] ‖ D[d+1])); smtDefaults[0] is the empty-tree root.
var smtDefaults = func() [smtDepth + 1][sha256.Size]byte {
	var d [smtDepth + 1][sha256.Size]byte
	for i := smtDepth - 1; i >= 0; i-- {
		d[i] = sha256.Sum256(append(d[i+1][:], d[i+1][:]...))
	}
	return d
}()

// SMT is the seed-era enbox sparse Merkle tree over message CIDs in its compressed form
// (docs/protocol-notes.md#smt-tree): a subtree holding one CID hashes to that CID's leaf hash at
// any depth, an empty one to the default hash of its depth, anything else to SHA-256(left ‖ right).
// The shape therefore depends only on the set, never on insertion order.
//
// Keys are kept sorted, so the CIDs under a bit prefix form one contiguous run; hashing a
// prefix walks only the splits inside that run. Safe for concurrent use.
type SMT struct {
	mu   sync.RWMutex
	keys []smtLeaf // sorted by key
	set  map[string]struct{}
}

type smtLeaf struct {
	key [sha256.Size]byte
	cid string
}

// NewSMT returns an empty tree.
func NewSMT() *SMT { return &SMT{set: map[string]struct{}{}} }

// NewSMTOf returns the tree of cids (duplicates once), sorted in one go: inserting n CIDs one
// by one moves O(n²) keys.
func NewSMTOf(cids []string) *SMT {
	t := &SMT{set: make(map[string]struct{}, len(cids)), keys: make([]smtLeaf, 0, len(cids))}
	for _, c := range cids {
		if _, ok := t.set[c]; ok {
			continue
		}
		t.set[c] = struct{}{}
		t.keys = append(t.keys, smtLeaf{key: sha256.Sum256([]byte(c)), cid: c})
	}
	sort.Slice(t.keys, func(i, j int) bool { return lessKey(t.keys[i], t.keys[j]) })
	return t
}

// Has reports whether cid is in the tree.
func (t *SMT) Has(cid string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, ok := t.set[cid]
	return ok
}

// Insert adds cid; inserting a present CID is a no-op.
func (t *SMT) Insert(cid string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.set[cid]; ok {
		return
	}
	leaf := smtLeaf{key: sha256.Sum256([]byte(cid)), cid: cid}
	i := sort.Search(len(t.keys), func(i int) bool { return lessKey(leaf, t.keys[i]) })
	t.keys = append(t.keys, smtLeaf{})
	copy(t.keys[i+1:], t.keys[i:])
	t.keys[i] = leaf
	t.set[cid] = struct{}{}
}

// Delete removes cid; deleting an absent CID is a no-op.
func (t *SMT) Delete(cid string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.set[cid]; !ok {
		return
	}
	leaf := smtLeaf{key: sha256.Sum256([]byte(cid)), cid: cid}
	i := sort.Search(len(t.keys), func(i int) bool { return !lessKey(t.keys[i], leaf) })
	t.keys = append(t.keys[:i], t.keys[i+1:]...)
	delete(t.set, cid)
}

// Len is the number of CIDs in the tree.
func (t *SMT) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.keys)
}

// Root is the tree's root hash, 64 lowercase hex.
func (t *SMT) Root() string { h, _ := t.subtree(""); return h }

// Subtree is the hash of the subtree under a bit-string prefix ("0101…", MSB first). An invalid
// prefix (other characters, longer than 256) yields "".
func (t *SMT) Subtree(prefix string) string { h, _ := t.subtree(prefix); return h }

func (t *SMT) subtree(prefix string) (string, error) {
	bits, err := parsePrefix(prefix)
	if err != nil {
		return "", err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	lo, hi := t.rangeOf(bits)
	h := hashRange(t.keys[lo:hi], len(bits))
	return hex.EncodeToString(h[:]), nil
}

// Leaves lists the CIDs whose key starts with prefix, sorted as strings (as the server lists
// them).
func (t *SMT) Leaves(prefix string) []string {
	bits, err := parsePrefix(prefix)
	if err != nil {
		return nil
	}
	t.mu.RLock()
	lo, hi := t.rangeOf(bits)
	out := make([]string, 0, hi-lo)
	for _, l := range t.keys[lo:hi] {
		out = append(out, l.cid)
	}
	t.mu.RUnlock()
	sort.Strings(out)
	return out
}

// Hashes returns the hash of every non-empty subtree at depth (the `hashes` argument of a
// MessagesSync diff), keyed by its bit prefix.
func (t *SMT) Hashes(depth int) map[string]string {
	if depth < 0 || depth > smtDepth {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := map[string]string{}
	for lo := 0; lo < len(t.keys); {
		prefix := keyBits(t.keys[lo].key, depth)
		_, hi := t.rangeOf(prefix)
		h := hashRange(t.keys[lo:hi], depth)
		out[string(prefix)] = hex.EncodeToString(h[:])
		lo = hi
	}
	return out
}

// Buckets is the number of non-empty subtrees at depth (the size of Hashes(depth)), counted
// without hashing.
func (t *SMT) Buckets(depth int) int {
	if depth < 0 || depth > smtDepth {
		return 0
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for i := range t.keys {
		if i == 0 || comparePrefix(t.keys[i].key, keyBits(t.keys[i-1].key, depth)) != 0 {
			n++
		}
	}
	return n
}

// EmptySubtree is the hash of an empty subtree at depth (D[depth]), 64 hex.
func EmptySubtree(depth int) string {
	if depth < 0 || depth > smtDepth {
		return ""
	}
	return hex.EncodeToString(smtDefaults[depth][:])
}

// hashRange hashes the subtree at depth holding exactly leaves (all sharing the prefix).
func hashRange(leaves []smtLeaf, depth int) [sha256.Size]byte {
	switch {
	case len(leaves) == 0:
		return smtDefaults[depth]
	case len(leaves) == 1, depth >= smtDepth: // the second case needs a SHA-256 collision
		return leafHash(leaves[0])
	}
	// Leaves are sorted, so the ones whose bit `depth` is 0 come first.
	split := sort.Search(len(leaves), func(i int) bool { return bitAt(leaves[i].key, depth) == 1 })
	left := hashRange(leaves[:split], depth+1)
	right := hashRange(leaves[split:], depth+1)
	return sha256.Sum256(append(left[:], right[:]...))
}

// leafHash is SHA-256(0x00 ‖ key ‖ UTF-8(cid)).
func leafHash(l smtLeaf) [sha256.Size]byte {
	buf := make([]byte, 0, 1+len(l.key)+len(l.cid))
	buf = append(buf, 0)
	buf = append(buf, l.key[:]...)
	buf = append(buf, l.cid...)
	return sha256.Sum256(buf)
}

// rangeOf returns the half-open index range of keys starting with bits.
func (t *SMT) rangeOf(bits []byte) (int, int) {
	lo := sort.Search(len(t.keys), func(i int) bool { return comparePrefix(t.keys[i].key, bits) >= 0 })
	hi := sort.Search(len(t.keys), func(i int) bool { return comparePrefix(t.keys[i].key, bits) > 0 })
	return lo, hi
}

// comparePrefix compares the first len(bits) bits of key with bits ('0'/'1' bytes).
func comparePrefix(key [sha256.Size]byte, bits []byte) int {
	for i, b := range bits {
		kb := bitAt(key, i)
		want := int(b - '0')
		if kb != want {
			return kb - want
		}
	}
	return 0
}

func bitAt(key [sha256.Size]byte, i int) int { return int(key[i/8]>>(7-uint(i%8))) & 1 }

func keyBits(key [sha256.Size]byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte('0' + bitAt(key, i))
	}
	return out
}

func lessKey(a, b smtLeaf) bool {
	for i := range a.key {
		if a.key[i] != b.key[i] {
			return a.key[i] < b.key[i]
		}
	}
	return a.cid < b.cid
}

func parsePrefix(prefix string) ([]byte, error) {
	if len(prefix) > smtDepth {
		return nil, fmt.Errorf("smt prefix longer than %d bits", smtDepth)
	}
	for i := 0; i < len(prefix); i++ {
		if prefix[i] != '0' && prefix[i] != '1' {
			return nil, fmt.Errorf("smt prefix %q: only '0' and '1' allowed", prefix)
		}
	}
	return []byte(prefix), nil
}
