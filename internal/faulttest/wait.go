package faulttest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/ledger"
)

// pollEvery is how often Await checks its condition (conditions here ask real servers).
const pollEvery = 100 * time.Millisecond

// Await polls cond until it holds; it fails the test when within passes or, when p is not nil,
// as soon as p has exited (its log's tail in the message). cond reports what it saw, for the
// failure message.
func Await(t testing.TB, within time.Duration, what string, p *Process, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if p != nil {
			select {
			case <-p.Exited():
				t.Fatalf("waiting for %s: the process exited (%v); last seen: %s\n--- tail of %s ---\n%s", what, p.Err(), seen, p.Log, p.LogTail(30))
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last seen: %s", within, what, seen)
		}
		<-tick.C
	}
}

// LogTail is the last n lines of the process's log.
func (p *Process) LogTail(n int) string {
	raw, err := os.ReadFile(p.Log)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// LedgerRecord opens the ledger at path (the process that wrote it must be gone: bbolt locks
// the file) and returns the record of key. A ledger that does not open, or lacks the record,
// fails the test.
func LedgerRecord(t testing.TB, path, key string) ledger.Record {
	t.Helper()
	store, err := ledger.Open(path, ledger.Options{})
	if err != nil {
		t.Fatalf("the ledger %s does not open after the kill: %v", path, err)
	}
	defer store.Close()
	rec, found, err := store.Get(key)
	if err != nil || !found {
		t.Fatalf("ledger %s: record %s found=%v err=%v", path, key, found, err)
	}
	return rec
}
