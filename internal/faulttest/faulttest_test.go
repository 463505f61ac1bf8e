package faulttest

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestKillPointsAreDistinctIncreasingAndReplayable(t *testing.T) {
	a := KillPoints(rand.New(rand.NewPCG(42, 0)), 6, 3000)
	b := KillPoints(rand.New(rand.NewPCG(42, 0)), 6, 3000)
	if !slices.Equal(a, b) {
		t.Fatalf("the same seed drew %v and %v", a, b)
	}
	if len(a) != 6 {
		t.Fatalf("%d points, want 6", len(a))
	}
	for i, p := range a {
		if p < 1 || p > 3000*85/100 || (i > 0 && p <= a[i-1]) {
			t.Fatalf("points %v: want distinct, increasing, in 1..2550", a)
		}
	}
}

func TestSameInventoryNamesTheDifferences(t *testing.T) {
	a := map[string]string{"c1": "h1", "c2": NoData, "c3": "h3"}
	if err := SameInventory(a, map[string]string{"c1": "h1", "c2": NoData, "c3": "h3"}); err != nil {
		t.Fatalf("equal inventories: %v", err)
	}
	err := SameInventory(a, map[string]string{"c1": "hX", "c2": NoData, "c4": "h4"})
	if err == nil {
		t.Fatal("different inventories reported equal")
	}
	for _, want := range []string{"c1: data h1 on the first side, hX", "c3 only on the first side", "c4 only on the second side", "3 differences"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: lacks %q", err, want)
		}
	}
	if err := SameInventory(map[string]string{"c1": "read-error: 500"}, map[string]string{"c1": "read-error: 500"}); err == nil {
		t.Fatal("a failed read on both sides reported equal")
	}
}

func TestWithinRewriteAllowance(t *testing.T) {
	if err := WithinRewriteAllowance(3600, 3000); err != nil {
		t.Fatalf("1.2×: %v", err)
	}
	if err := WithinRewriteAllowance(3601, 3000); err == nil {
		t.Fatal("more than 1.2× accepted")
	}
}
