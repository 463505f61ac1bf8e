package syncer

import (
	"fmt"
	"testing"
)

// A full event channel drops its oldest events, counts them, and signals the loss once however
// many were dropped; the signal comes again only for a drop after it was received.
func TestEventBusSignalsDroppedEventsOnce(t *testing.T) {
	b := newEventBus(4)
	lost := func() bool {
		select {
		case <-b.lost:
			return true
		default:
			return false
		}
	}
	for i := range 4 {
		b.publish(Event{Key: fmt.Sprint(i)})
	}
	if lost() || b.droppedCount() != 0 {
		t.Fatalf("a channel that held every event signalled a loss (dropped %d)", b.droppedCount())
	}
	for i := 4; i < 10; i++ {
		b.publish(Event{Key: fmt.Sprint(i)})
	}
	if b.droppedCount() != 6 {
		t.Fatalf("dropped %d, want the 6 oldest", b.droppedCount())
	}
	if !lost() {
		t.Fatal("no signal after 6 drops")
	}
	if lost() {
		t.Fatal("6 drops signalled twice: one pending signal covers them all")
	}
	if ev := <-b.ch; ev.Key != "6" {
		t.Fatalf("oldest kept event %q, want 6 (the newest four are kept)", ev.Key)
	}
	b.publish(Event{Key: "10"}) // fits in the slot just read: nothing dropped
	if lost() {
		t.Fatal("signalled a loss for an event that fitted")
	}
	b.publish(Event{Key: "11"})
	if !lost() {
		t.Fatal("a drop after the signal was received was not signalled")
	}
}
