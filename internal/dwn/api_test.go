package dwn

import "testing"

func TestCursorSequence(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Cursor
		want uint64
		ok   bool
	}{
		{"enbox position", Cursor{StreamID: "6742201863cf8f21", Epoch: "01J0", Position: "42"}, 42, true},
		{"empty-feed anchor", Cursor{StreamID: "s", Epoch: "e", Position: "0"}, 0, true},
		{"web5 watermark is store-wide", Cursor{StreamID: "s", Epoch: Web5Epoch, Position: "31"}, 0, false},
		{"non-canonical leading zero", Cursor{StreamID: "s", Epoch: "e", Position: "042"}, 0, false},
		{"ULID", Cursor{StreamID: "s", Epoch: "e", Position: `"01M870CCSAHX2GN9YGF5J4G2Z5"`}, 0, false},
		{"negative", Cursor{StreamID: "s", Epoch: "e", Position: "-1"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.c.Sequence()
			if got != tc.want || ok != tc.ok {
				t.Fatalf("Sequence() = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
