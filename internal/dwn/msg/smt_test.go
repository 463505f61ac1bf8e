package msg

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
)

// The fixture of docs/protocol-notes.md#smt-fixtures (enbox StateIndexLevel operations).
const (
	smtA1 = "bafyreigyk7urkpepubmp5mzmebds6c6nutoohrf2mbecstmynw333prpie" // ProtocolsConfigure, no protocol
	smtA2 = "bafyreifbgjgqxlmmpu7uflhzdl6hss2oasjlh3iqaawlkaljo2wieiltxi" // notes
	smtA3 = "bafyreief4n6h2bbrm24j6chozaft4mgvh26zvl57rufoqia4s77i5zj3ty" // notes
	smtA4 = "bafyreida2df4ptfdiesyxr3dyt6uoney2dvvbc2p3og72twkiqjzi5lf7u" // chat
)

func smtFixture() (global, notes, chat *SMT) {
	global, notes, chat = NewSMT(), NewSMT(), NewSMT()
	for _, c := range []string{smtA1, smtA2, smtA3, smtA4} {
		global.Insert(c)
	}
	notes.Insert(smtA2)
	notes.Insert(smtA3)
	chat.Insert(smtA4)
	return
}

func TestSMTVectors(t *testing.T) {
	global, notes, chat := smtFixture()
	unknown := NewSMT()
	cases := []struct{ name, got, want string }{
		{"D[0] empty root", EmptySubtree(0), "b178c245c947ea7e21ecede07728941a6ab1b706143c06873baff8ebd6de6308"},
		{"D[1]", EmptySubtree(1), "b9d06312bf5aee1fa7c879fc61c62edf16e9b523a9f89e04c02000223fbd0de9"},
		{"global root", global.Root(), "f2f21ea039eb03aea488757bdaf27ef520794160acf30d04f574fa5fd7fd62c4"},
		{"notes root", notes.Root(), "fb369b80738fefcd406fa18e211d4425432399a0d62c64392bd0d5169a97a3f4"},
		{"chat root", chat.Root(), "7ed3e96de1e7f5f8119e778aa41a4b4805e64cf3094c0489cdee772bc8bc7b99"},
		{"unknown protocol root = D[0]", unknown.Root(), EmptySubtree(0)},
		{"global subtree 0", global.Subtree("0"), "56a55f876c95dcd06f642605fffc0fc72567e8a22d8ba38221fb4b044005366e"},
		{"global subtree 00010100 = L(A2)", global.Subtree("00010100"), "ea7fcee5517fa21a3a0d23050f5c3d27c7d49c78418de314432b8b3804a72552"},
		{"notes subtree 0", notes.Subtree("0"), "df04fd049956ad3b1945b07a3711316fb2f6a70c441c3571691a69abd17cf7cc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Fatalf("got %s, want %s", c.got, c.want)
			}
		})
	}
	t.Run("leaves global", func(t *testing.T) {
		if got := global.Leaves(""); !reflect.DeepEqual(got, []string{smtA4, smtA3, smtA2, smtA1}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("leaves 00010100", func(t *testing.T) {
		if got := global.Leaves("00010100"); !reflect.DeepEqual(got, []string{smtA2}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("leaves notes", func(t *testing.T) {
		if got := notes.Leaves(""); !reflect.DeepEqual(got, []string{smtA3, smtA2}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("after deleting A2", func(t *testing.T) {
		global.Delete(smtA2)
		notes.Delete(smtA2)
		if got := global.Root(); got != "e3ec6f484e238b585f6619e3efdc11a4880289ec8b47d220fbbde3bc1788b4d2" {
			t.Fatalf("global root %s", got)
		}
		if got := notes.Root(); got != "6fd35d20ba5522f54dce0a1f121a40e6a3f6ff4a5cd2ef385600cacdff6a06b0" {
			t.Fatalf("notes root %s", got)
		}
	})
}

// Self-computed extras in docs/protocol-notes.md#smt-fixtures.
func TestSMTExtraVectors(t *testing.T) {
	key := sha256.Sum256([]byte("bafyreiA"))
	l := leafHash(smtLeaf{key: key, cid: "bafyreiA"})
	if got := hex.EncodeToString(l[:]); got != "2d7cb170bd0479d7941997329b6ce2adcff3ab7fc5f8bcd455d37f1e8d747b0e" {
		t.Fatalf("L(bafyreiA) = %s", got)
	}
	tr := NewSMT()
	tr.Insert("bafyreiA")
	tr.Insert("bafyreiB")
	if got := tr.Root(); got != "56c18ffa36f9c4f13c7cccdac85a63c2594c54b68dbb83fb7000156b8698b129" {
		t.Fatalf("root {A,B} = %s", got)
	}
}

func TestSMTOrderIndependentAndDeleteRestores(t *testing.T) {
	cids := make([]string, 200)
	for i := range cids {
		cids[i] = fmt.Sprintf("bafyreitest%03d", i)
	}
	a, b := NewSMT(), NewSMT()
	for _, c := range cids {
		a.Insert(c)
	}
	rng := rand.New(rand.NewSource(7))
	for _, i := range rng.Perm(len(cids)) {
		b.Insert(cids[i])
		b.Insert(cids[i]) // idempotent
	}
	if a.Root() != b.Root() || a.Len() != 200 || b.Len() != 200 {
		t.Fatal("insertion order or duplicates changed the tree")
	}
	before := a.Root()
	a.Insert("bafyreiextra")
	a.Delete("bafyreiextra")
	a.Delete("bafyreinever")
	if a.Root() != before {
		t.Fatal("delete did not restore the shape")
	}
	// Hashes at a depth reproduce Subtree for each non-empty prefix and cover every leaf.
	total := 0
	for prefix, h := range a.Hashes(4) {
		if a.Subtree(prefix) != h {
			t.Fatalf("Hashes(4)[%s] != Subtree", prefix)
		}
		total += len(a.Leaves(prefix))
	}
	if total != 200 {
		t.Fatalf("Hashes(4) covers %d leaves, want 200", total)
	}
	if a.Subtree("2") != "" || a.Leaves("x") != nil {
		t.Fatal("invalid prefixes must yield empty results")
	}
}

// A tree built in one go from a shuffled list with repeats equals the one built by Insert.
func TestNewSMTOfMatchesInserts(t *testing.T) {
	cids := make([]string, 300)
	for i := range cids {
		cids[i] = fmt.Sprintf("bafyreibulk%03d", i)
	}
	inserted := NewSMT()
	for _, c := range cids {
		inserted.Insert(c)
	}
	shuffled := append([]string{}, cids...)
	rand.New(rand.NewSource(3)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	bulk := NewSMTOf(append(shuffled, cids[:50]...))
	if bulk.Root() != inserted.Root() || bulk.Len() != 300 {
		t.Fatalf("bulk tree: root %s len %d, want %s len 300", bulk.Root(), bulk.Len(), inserted.Root())
	}
	if !reflect.DeepEqual(bulk.Hashes(9), inserted.Hashes(9)) {
		t.Fatal("bulk tree's depth-9 hashes differ")
	}
	for _, depth := range []int{0, 3, 9, 30} {
		if got, want := bulk.Buckets(depth), len(bulk.Hashes(depth)); got != want {
			t.Fatalf("Buckets(%d) = %d, Hashes has %d", depth, got, want)
		}
	}
	if !bulk.Has(cids[7]) || bulk.Has("bafyreinothere") {
		t.Fatal("Has is wrong")
	}
	bulk.Insert("bafyreilater")
	if !bulk.Has("bafyreilater") || bulk.Len() != 301 {
		t.Fatal("a bulk tree must accept inserts")
	}
}

func BenchmarkSMTRoot10k(b *testing.B) {
	tr := NewSMT()
	for i := 0; i < 10000; i++ {
		tr.Insert(fmt.Sprintf("bafyreibench%05d", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Root()
	}
}
