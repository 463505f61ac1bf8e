package ledger

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// A failed group commit (a full disk here) is reported by Health until a commit succeeds, its
// changes stay staged and are retried with a growing delay even when nothing new is staged,
// and the retry that succeeds writes the latest state of every change made before it.
func TestCommitFailureIsReportedRetriedAndCleared(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	var disk FullDisk
	armed := make(chan time.Duration, 16)
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{
		Clock:        clk,
		BeforeCommit: disk.BeforeCommit,
		retryArmed:   func(d time.Duration) { armed <- d },
	})
	a, err := s.GetOrCreate(newLink(1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.GetOrCreate(newLink(2))
	if err != nil {
		t.Fatal(err)
	}
	if h := s.Health(); h.Failing || h.Failures != 0 {
		t.Fatalf("health before any failure: %+v", h)
	}
	changed := s.HealthChanged()

	disk.Set(true)
	for pos := 1; pos <= 3; pos++ {
		p := fmt.Sprint(pos)
		if err := s.Update(a.Key, func(r *Record) { r.Pull.Commit(cur("s", p)) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Update(b.Key, func(r *Record) { r.Push.Commit(cur("s", "9")); r.Counters.Pushed = 9 }); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Flush while the disk is full: %v", err)
	}
	h := s.Health()
	if !h.Failing || !strings.Contains(h.LastError, "no space left on device") || !h.Since.Equal(clk.Now()) || h.Failures != 1 {
		t.Fatalf("health after a failed commit: %+v", h)
	}
	select {
	case <-changed:
	default:
		t.Fatal("HealthChanged not closed by the failure")
	}
	if rec, _ := stored(t, s, a.Key); rec.Pull.Contiguous != nil {
		t.Fatalf("a failed commit reached the file: %+v", rec.Pull)
	}

	// Retries come by themselves, each later than the one before, while the disk stays full.
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		d := nextRetry(t, armed)
		if d != want {
			t.Fatalf("retry armed after %v, want %v", d, want)
		}
		failures := s.Health().Failures
		clk.Step(d)
		waitFor(t, "the retry to fail again", func() bool { return s.Health().Failures > failures })
	}
	if !s.Health().Failing {
		t.Fatal("health cleared while commits still fail")
	}

	// Space is back: the next retry saves everything staged before, and health clears.
	changed = s.HealthChanged()
	disk.Set(false)
	clk.Step(nextRetry(t, armed))
	waitFor(t, "a successful retry", func() bool { return !s.Health().Failing })
	select {
	case <-changed:
	default:
		t.Fatal("HealthChanged not closed by the recovery")
	}
	if h := s.Health(); h.LastError != "" || !h.Since.IsZero() || h.Failures != 4 {
		t.Fatalf("health after recovery: %+v", h)
	}
	ra, _ := stored(t, s, a.Key)
	rb, _ := stored(t, s, b.Key)
	if ra.Pull.Contiguous == nil || ra.Pull.Contiguous.Position != "3" || rb.Push.Contiguous == nil || rb.Push.Contiguous.Position != "9" || rb.Counters.Pushed != 9 {
		t.Fatalf("after recovery the file holds pull %+v, push %+v, pushed %d", ra.Pull.Contiguous, rb.Push.Contiguous, rb.Counters.Pushed)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush after recovery: %v", err)
	}
}

func nextRetry(t *testing.T, armed <-chan time.Duration) time.Duration {
	t.Helper()
	select {
	case d := <-armed:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no retry was scheduled after a failed commit")
		return 0
	}
}
