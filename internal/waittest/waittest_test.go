package waittest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	For(t, 10*time.Second, time.Millisecond, "the third call", func() bool {
		calls++
		return calls == 3
	})
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3 (stop polling once it holds)", calls)
	}
}

// recorder is a testing.TB whose Fatalf records the message and unwinds like t.Fatalf.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	panic(r)
}

func TestForFailsNamingWhatItAwaited(t *testing.T) {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("For did not fail through t.Fatalf (recovered %v)", p)
			}
		}()
		For(r, 20*time.Millisecond, time.Millisecond, "a condition that never holds", func() bool { return false })
	}()
	if !strings.Contains(r.msg, "a condition that never holds") || !strings.Contains(r.msg, "20ms") {
		t.Fatalf("failure message %q does not name what was awaited and for how long", r.msg)
	}
}
