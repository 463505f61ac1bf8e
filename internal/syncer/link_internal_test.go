package syncer

import (
	"context"
	"testing"
	"time"

	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

// A pass that returns as soon as its context ends (as every pass does) must still be reported
// as expired when the pass timeout ended it, exactly once and before runPass returns. The
// context closes Done before it starts its after-funcs, so the pass can return first; before
// the fix about 1 pass in 1,000 lost its report here, and its link never reconciled again.
func TestRunPassReportsEveryExpiredPassOnce(t *testing.T) {
	l := &link{e: &Engine{passTimeout: time.Microsecond}}
	for i := 0; i < 3000; i++ {
		n := 0 // runPass reports before it returns, so no lock is needed
		l.runPass(context.Background(), func(ctx context.Context) { <-ctx.Done() },
			func(string) { n++ })
		if n != 1 {
			t.Fatalf("pass %d: expired reported %d times, want 1", i, n)
		}
	}
}

// A pass that ignores its context is reported at the timeout, while it is still running, so
// a server that stalls below every transport timeout cannot hold the link's in-flight marker.
func TestRunPassReportsAStuckPassWithoutWaitingForIt(t *testing.T) {
	l := &link{e: &Engine{passTimeout: time.Millisecond}}
	reported := make(chan struct{})
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.runPass(context.Background(), func(context.Context) { <-release },
			func(string) { close(reported) })
	}()
	select {
	case <-reported:
	case <-time.After(30 * time.Second):
		t.Fatal("a stuck pass was not reported while it ran")
	}
	close(release)
	<-done
}

// A timer that fires into a full mailbox must not block the clock: a fake clock runs the
// timer's function inside Step, holding its lock, and the supervisor that would drain the
// mailbox needs that lock for clock.Now. Before the fix Step never returned here.
func TestTimerFiringIntoAFullMailboxDoesNotBlockTheClock(t *testing.T) {
	clk := waittest.NewClock(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	l := &link{e: &Engine{clock: clk}, ctx: context.Background(), mbox: make(chan ls.Input, 1), timers: map[ls.Timer]*timerRun{}}
	l.mbox <- ls.TimerFired{} // full
	l.setTimer(ls.TimerReconcile, clk.Now().Add(time.Second))
	stepped := make(chan struct{})
	go func() {
		clk.Step(2 * time.Second)
		close(stepped)
	}()
	select {
	case <-stepped:
	case <-time.After(30 * time.Second):
		t.Fatal("Step blocked on a timer sending into a full mailbox")
	}
	<-l.mbox // the supervisor drains the mailbox: the fired timer follows
	select {
	case in := <-l.mbox:
		if f, ok := in.(ls.TimerFired); !ok || f.Timer != ls.TimerReconcile {
			t.Fatalf("got %#v, want the reconcile timer's TimerFired", in)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the fired timer was lost")
	}
}
