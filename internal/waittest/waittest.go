// Package waittest waits, in tests, for a condition to hold by polling it: a test never sleeps
// a fixed time hoping something happened (team rule), and every package's wait loop is this one.
package waittest

import (
	"testing"
	"time"
)

// For polls cond every `every` until it holds. If within passes first, it fails t with
// "timed out after <within> waiting for <what>".
func For(t testing.TB, within, every time.Duration, what string, cond func() bool) {
	t.Helper()
	if !pollEvery(within, every, cond) {
		t.Fatalf("timed out after %v waiting for %s", within, what)
	}
}

// pollEvery polls cond every `every` until it holds (true) or within passes (false).
func pollEvery(within, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}
