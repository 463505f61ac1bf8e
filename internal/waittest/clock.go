package waittest

import (
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

// Clock is a fake clock that remembers the duration of every timer armed on it, so a test can
// wait for the one timer it means to fire before stepping. Waiting for "any waiter"
// (FakeClock.HasWaiters) races: an unrelated timer (a call deadline, an idle watchdog, a
// reconcile timer) is often already pending, the test steps too early, and the timer it meant
// to fire is armed after the step and never fires.
type Clock struct {
	*clocktesting.FakeClock

	mu     sync.Mutex
	timers []*armed
}

// armed is one timer, ticker or After wait as the code under test registered it.
type armed struct {
	d       time.Duration
	due     time.Time
	stopped bool
	ticker  bool // a ticker stays pending until stopped
}

// pending: armed and neither fired (a fake timer fires once the clock reaches due) nor stopped.
func (a *armed) pending(now time.Time) bool {
	return !a.stopped && (a.ticker || a.due.After(now))
}

// NewClock returns a fake clock set to now.
func NewClock(now time.Time) *Clock {
	return &Clock{FakeClock: clocktesting.NewFakeClock(now)}
}

// AwaitTimer waits until a timer of exactly d is pending (armed, neither fired nor stopped),
// failing t after a generous deadline. what names the timer in the failure.
func (c *Clock) AwaitTimer(t testing.TB, d time.Duration, what string) {
	t.Helper()
	if !pollEvery(clockWaitDeadline, time.Millisecond, func() bool { return c.Pending(d) > 0 }) {
		t.Fatalf("timed out after %v waiting for %s (a %v timer on the fake clock; pending: %v)",
			clockWaitDeadline, what, d, c.PendingDurations())
	}
}

// FiresAfter checks that a call waits exactly d on the clock: it waits for the d timer, steps
// to 1 ms before it and fails t if done has delivered by then, then steps the last millisecond
// and returns what done delivers (within a generous deadline). what names the timer.
func (c *Clock) FiresAfter(t testing.TB, d time.Duration, what string, done <-chan error) error {
	t.Helper()
	c.AwaitTimer(t, d, what)
	c.Step(d - time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("returned before %s (%v) passed: %v", what, d, err)
	default:
	}
	c.Step(time.Millisecond)
	select {
	case err := <-done:
		return err
	case <-time.After(clockWaitDeadline):
		t.Fatalf("nothing returned within %v after %s (%v) passed", clockWaitDeadline, what, d)
		return nil
	}
}

// PendingDurations lists the durations of the pending timers, oldest first (for messages).
func (c *Clock) PendingDurations() []time.Duration {
	now := c.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, a := range c.timers {
		if a.pending(now) {
			out = append(out, a.d)
		}
	}
	return out
}

// clockWaitDeadline bounds AwaitTimer: far beyond any scheduling delay on a loaded machine.
const clockWaitDeadline = 30 * time.Second

// Pending counts the timers of exactly d that are armed and have neither fired nor stopped.
func (c *Clock) Pending(d time.Duration) int {
	now := c.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, a := range c.timers {
		if a.d == d && a.pending(now) {
			n++
		}
	}
	return n
}

// record notes a timer the underlying fake clock has already registered, so a test that sees
// it can step at once. due is computed from the time read before registering.
func (c *Clock) record(d time.Duration, due time.Time, ticker bool) *armed {
	a := &armed{d: d, due: due, ticker: ticker}
	now := c.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	live := c.timers[:0] // forget fired and stopped timers: a long test arms thousands
	for _, old := range c.timers {
		if old.pending(now) {
			live = append(live, old)
		}
	}
	c.timers = append(live, a)
	return a
}

func (c *Clock) After(d time.Duration) <-chan time.Time {
	due := c.Now().Add(d)
	ch := c.FakeClock.After(d)
	c.record(d, due, false)
	return ch
}

func (c *Clock) NewTimer(d time.Duration) clock.Timer {
	due := c.Now().Add(d)
	tm := c.FakeClock.NewTimer(d)
	return &recordedTimer{Timer: tm, c: c, a: c.record(d, due, false)}
}

func (c *Clock) AfterFunc(d time.Duration, f func()) clock.Timer {
	due := c.Now().Add(d)
	tm := c.FakeClock.AfterFunc(d, f)
	return &recordedTimer{Timer: tm, c: c, a: c.record(d, due, false)}
}

func (c *Clock) Tick(d time.Duration) <-chan time.Time {
	ch := c.FakeClock.Tick(d)
	if d > 0 {
		c.record(d, time.Time{}, true)
	}
	return ch
}

func (c *Clock) NewTicker(d time.Duration) clock.Ticker {
	tk := c.FakeClock.NewTicker(d)
	return &recordedTicker{Ticker: tk, c: c, a: c.record(d, time.Time{}, true)}
}

type recordedTimer struct {
	clock.Timer
	c *Clock
	a *armed
}

func (r *recordedTimer) Stop() bool {
	r.c.mu.Lock()
	r.a.stopped = true
	r.c.mu.Unlock()
	return r.Timer.Stop()
}

func (r *recordedTimer) Reset(d time.Duration) bool {
	due := r.c.Now().Add(d)
	active := r.Timer.Reset(d)
	r.c.mu.Lock()
	r.a.d, r.a.due, r.a.stopped = d, due, false
	r.c.mu.Unlock()
	return active
}

type recordedTicker struct {
	clock.Ticker
	c *Clock
	a *armed
}

func (r *recordedTicker) Stop() {
	r.c.mu.Lock()
	r.a.stopped = true
	r.c.mu.Unlock()
	r.Ticker.Stop()
}

// The interfaces the code under test asserts a clock for.
var (
	_ clock.WithTicker                    = (*Clock)(nil)
	_ clock.WithDelayedExecution          = (*Clock)(nil)
	_ clock.WithTickerAndDelayedExecution = (*Clock)(nil)
)
