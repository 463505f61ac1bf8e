package linkstate

import "github.com/dwnsync/dwnsync/internal/dwn"

// Tracker assigns delivery ordinals to one feed's deliveries and commits their cursors only
// contiguously: a delivery that completes early waits until every earlier one has completed.
// Entries without a cursor (web5 lists one only per page end) advance nothing on their own;
// the checkpoint moves at the next drained entry that carries one.
//
// A Tracker belongs to one feed epoch. A new epoch gets a new Tracker, so a completion from
// an older subscription can never mark an ordinal of the new one (docs/engine-behaviour.md#e2).
type Tracker struct {
	next, commit uint64
	slots        map[uint64]*slot
}

type slot struct {
	cursor *dwn.Cursor
	done   bool
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{slots: map[uint64]*slot{}} }

// Deliver records a delivery and returns its ordinal.
func (t *Tracker) Deliver(c *dwn.Cursor) uint64 {
	ord := t.next
	t.next++
	var cp *dwn.Cursor
	if c != nil {
		v := *c
		cp = &v
	}
	t.slots[ord] = &slot{cursor: cp}
	return ord
}

// Complete marks ordinal ord done and drains every contiguous done entry. It returns the
// newest cursor drained (nil when none of the drained entries had one) and how many entries
// were drained. Unknown or repeated ordinals are ignored.
func (t *Tracker) Complete(ord uint64) (*dwn.Cursor, int) {
	s, ok := t.slots[ord]
	if !ok || s.done {
		return nil, 0
	}
	s.done = true
	var last *dwn.Cursor
	n := 0
	for {
		s, ok := t.slots[t.commit]
		if !ok || !s.done {
			break
		}
		if s.cursor != nil {
			last = s.cursor
		}
		delete(t.slots, t.commit)
		t.commit++
		n++
	}
	return last, n
}

// Pending is how many deliveries are not yet contiguously committed.
func (t *Tracker) Pending() int { return len(t.slots) }

// Delivered is how many deliveries this tracker has seen.
func (t *Tracker) Delivered() uint64 { return t.next }
