package ledger

import (
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

func cur(domain, pos string) dwn.Cursor {
	return dwn.Cursor{StreamID: domain, Epoch: "e1", Position: pos, MessageCID: "bafy" + pos}
}

func TestComparePositions(t *testing.T) {
	cases := []struct {
		a, b string
		cmp  int
		ok   bool
	}{
		{"9", "10", -1, true}, // numeric, not string order
		{"18446744073709551616", "18446744073709551615", 1, true}, // beyond uint64
		{"42", "42", 0, true},
		{`"01M870CCSAHX2GN9YGF5J4G2Z5"`, `"01M870CCSAHX2GN9YGF5J4G2Z6"`, -1, true}, // ULIDs
		{"7", `"01M870CCSAHX2GN9YGF5J4G2Z5"`, 0, false},
		{"abc", "abd", 0, false},
	}
	for _, c := range cases {
		cmp, ok := ComparePositions(c.a, c.b)
		if cmp != c.cmp || ok != c.ok {
			t.Errorf("ComparePositions(%s, %s) = %d,%v want %d,%v", c.a, c.b, cmp, ok, c.cmp, c.ok)
		}
	}
}

func TestCheckpointCommitNeverGoesBack(t *testing.T) {
	var c Checkpoint
	if !c.Commit(cur("s", "10")) {
		t.Fatal("first commit refused")
	}
	if c.Commit(cur("s", "9")) || c.Contiguous.Position != "10" {
		t.Fatalf("went back to %s", c.Contiguous.Position)
	}
	if c.Commit(cur("s", "10")) {
		t.Fatal("equal position reported as a change")
	}
	if !c.Commit(cur("s", "11")) || c.Contiguous.Position != "11" || c.Received.Position != "11" {
		t.Fatalf("forward commit: %+v", c)
	}
	// A new domain (new stream or epoch) is not comparable: it replaces.
	if !c.Commit(cur("other", "1")) || c.Contiguous.StreamID != "other" {
		t.Fatalf("domain change refused: %+v", c.Contiguous)
	}
	c.Observe(cur("other", "5"))
	c.Observe(cur("other", "3"))
	if c.Received.Position != "5" || c.Contiguous.Position != "1" {
		t.Fatalf("observe: %+v / %+v", c.Received, c.Contiguous)
	}
	c.Reset(nil)
	if c.Received != nil || c.Contiguous != nil {
		t.Fatal("reset(nil) kept positions")
	}
	to := cur("s", "3")
	c.Reset(&to)
	if c.Received.Position != "3" || c.Contiguous.Position != "3" {
		t.Fatalf("reset: %+v", c)
	}
}

func TestDeadLetterReplacesSameMessage(t *testing.T) {
	var r Record
	r.AddDeadLetter(DeadLetter{CID: "a", Direction: ls.Pull, Reason: "one"})
	r.AddDeadLetter(DeadLetter{CID: "b", Direction: ls.Pull, Reason: "two"})
	r.AddDeadLetter(DeadLetter{CID: "a", Direction: ls.Pull, Reason: "three"})
	r.AddDeadLetter(DeadLetter{CID: "a", Direction: ls.Push, Reason: "four"})
	if len(r.DeadLetters) != 3 || r.DeadLetters[1].Reason != "three" {
		t.Fatalf("dead letters: %+v", r.DeadLetters)
	}
	r.ClearDeadLetter("a", ls.Pull)
	if len(r.DeadLetters) != 2 || r.DeadLetters[0].CID != "b" || r.DeadLetters[1].Reason != "four" {
		t.Fatalf("after clear: %+v", r.DeadLetters)
	}
}
