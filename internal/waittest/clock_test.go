package waittest

import (
	"strings"
	"testing"
	"time"
)

func TestClockPendingCountsOnlyTheArmedTimersOfThatDuration(t *testing.T) {
	c := NewClock(time.Now())
	deadline := c.NewTimer(10 * time.Second) // an unrelated timer: HasWaiters is already true
	if !c.HasWaiters() || c.Pending(2*time.Second) != 0 {
		t.Fatalf("only a 10 s timer is armed: Pending(2s) = %d", c.Pending(2*time.Second))
	}
	wait := c.After(2 * time.Second)
	if got := c.Pending(2 * time.Second); got != 1 {
		t.Fatalf("Pending(2s) = %d after After(2s), want 1", got)
	}
	c.Step(2 * time.Second)
	<-wait
	if got := c.Pending(2 * time.Second); got != 0 {
		t.Fatalf("Pending(2s) = %d after it fired, want 0", got)
	}
	deadline.Stop()
	if got := c.Pending(10 * time.Second); got != 0 {
		t.Fatalf("Pending(10s) = %d after Stop, want 0", got)
	}
	cb := c.AfterFunc(time.Second, func() {})
	cb.Reset(3 * time.Second)
	if c.Pending(time.Second) != 0 || c.Pending(3*time.Second) != 1 {
		t.Fatal("Reset must move the timer to its new duration")
	}
	tk := c.NewTicker(time.Minute)
	c.Step(time.Minute)
	if c.Pending(time.Minute) != 1 {
		t.Fatal("a ticker stays pending after it ticks")
	}
	tk.Stop()
	if c.Pending(time.Minute) != 0 {
		t.Fatal("a stopped ticker is not pending")
	}
}

func TestClockAwaitTimerWaitsForTheTimerArmedLater(t *testing.T) {
	c := NewClock(time.Now())
	c.NewTimer(time.Hour) // armed first, like a call deadline
	armed := make(chan struct{})
	go func() {
		<-armed
		<-c.After(2 * time.Second)
	}()
	close(armed)
	c.AwaitTimer(t, 2*time.Second, "the retry wait")
	if c.Pending(2*time.Second) != 1 {
		t.Fatal("AwaitTimer returned before the 2 s timer was armed")
	}
}

// FiresAfter returns what the call delivers once exactly d has passed, and fails a call that
// returns before it.
func TestClockFiresAfter(t *testing.T) {
	clk := NewClock(time.Now())
	done := make(chan error, 1)
	go func() { <-clk.After(2 * time.Second); done <- nil }()
	if err := clk.FiresAfter(t, 2*time.Second, "the wait", done); err != nil {
		t.Fatal(err)
	}

	early := make(chan error, 1)
	early <- nil // a call that returned without waiting
	go func() { <-clk.After(2 * time.Second) }()
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("FiresAfter did not fail through t.Fatalf (recovered %v)", p)
			}
		}()
		_ = clk.FiresAfter(r, 2*time.Second, "the 2 s wait", early)
	}()
	if !strings.Contains(r.msg, "returned before the 2 s wait") {
		t.Fatalf("failure message %q does not say the call returned early", r.msg)
	}
}
