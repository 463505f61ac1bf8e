package ledger

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
	"github.com/dwnsync/dwnsync/internal/waittest"
	bolt "go.etcd.io/bbolt"
	clocktesting "k8s.io/utils/clock/testing"
)

func openTest(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newLink(i int) Record {
	return Record{Tenant: fmt.Sprintf("did:jwk:t%d", i), LocalEndpoint: "http://127.0.0.1:1", RemoteEndpoint: "http://127.0.0.1:2"}
}

// stored reads a record straight from the file, bypassing the cache.
func stored(t *testing.T, s *Store, key string) (Record, bool) {
	t.Helper()
	var rec Record
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(linksBucket).Get([]byte(key))
		if v == nil {
			return nil
		}
		found = true
		r, _, err := decodeRecord(key, v)
		rec = r
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec, found
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waittest.For(t, 10*time.Second, time.Millisecond, what, cond)
}

func TestGetOrCreatePersistsAtOnceAndUpdatesWaitForTheBatch(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{Clock: clk})

	rec, err := s.GetOrCreate(newLink(1))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Phase != ls.Initializing || rec.ScopeID != ScopeID(dwn.Scope{}) || rec.Key == "" {
		t.Fatalf("created: %+v", rec)
	}
	if _, ok := stored(t, s, rec.Key); !ok {
		t.Fatal("created record is not in the file yet")
	}
	again, err := s.GetOrCreate(newLink(1))
	if err != nil || again.Key != rec.Key {
		t.Fatalf("second GetOrCreate: %v %+v", err, again)
	}

	if err := s.Update(rec.Key, func(r *Record) { r.Phase = ls.Live; r.Pull.Commit(cur("s", "1")) }); err != nil {
		t.Fatal(err)
	}
	// The fake clock never advances, so the window stays open: nothing is written yet.
	if got, _ := stored(t, s, rec.Key); got.Phase != ls.Initializing {
		t.Fatalf("update written before its window closed: %s", got.Phase)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := stored(t, s, rec.Key); got.Phase != ls.Live || got.Pull.Contiguous.Position != "1" {
		t.Fatalf("after flush: %+v", got)
	}
}

func TestCommitWindowClosesOnTimer(t *testing.T) {
	clk := waittest.NewClock(time.Now())
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{Clock: clk})
	rec, err := s.GetOrCreate(newLink(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(rec.Key, func(r *Record) { r.NeedsReconcile = true }); err != nil {
		t.Fatal(err)
	}
	clk.AwaitTimer(t, DefaultCommitInterval, "the commit window timer")
	clk.Step(DefaultCommitInterval - time.Millisecond)
	if got, _ := stored(t, s, rec.Key); got.NeedsReconcile {
		t.Fatal("committed before the window closed")
	}
	clk.Step(time.Millisecond)
	waitFor(t, "the timed commit", func() bool { got, _ := stored(t, s, rec.Key); return got.NeedsReconcile })
}

func TestManyPendingUpdatesForceACommit(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{Clock: clk, MaxStagedUpdates: 4})
	rec, err := s.GetOrCreate(newLink(1))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		pos := fmt.Sprint(i)
		if err := s.Update(rec.Key, func(r *Record) { r.Pull.Commit(cur("s", pos)) }); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a commit forced by 5 pending updates", func() bool {
		got, _ := stored(t, s, rec.Key)
		return got.Pull.Contiguous != nil && got.Pull.Contiguous.Position == "5"
	})
}

// docs/engine-behaviour.md#e3: a stale writer must not move the resume point back; only
// ResetCheckpoint may.
func TestContiguousCheckpointNeverGoesBackwardsUnlessReset(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{})
	rec, err := s.GetOrCreate(newLink(1))
	if err != nil {
		t.Fatal(err)
	}
	set := func(d ls.Dir, c *dwn.Cursor) {
		t.Helper()
		if err := s.Update(rec.Key, func(r *Record) { r.Checkpoint(d).Contiguous = c }); err != nil {
			t.Fatal(err)
		}
	}
	get := func(d ls.Dir) *dwn.Cursor {
		r, _, _ := s.Get(rec.Key)
		return r.Checkpoint(d).Contiguous
	}
	c10, c5, other := cur("s", "10"), cur("s", "5"), cur("s2", "1")
	for _, d := range ls.Dirs {
		set(d, &c10)
		set(d, &c5)
		if got := get(d); got.Position != "10" {
			t.Fatalf("%s went back to %s", d, got.Position)
		}
		set(d, nil)
		if got := get(d); got == nil || got.Position != "10" {
			t.Fatalf("%s cleared by Update: %+v", d, got)
		}
		set(d, &other)
		if got := get(d); got.StreamID != "s2" {
			t.Fatalf("%s: new domain refused: %+v", d, got)
		}
		if err := s.ResetCheckpoint(rec.Key, d, nil); err != nil {
			t.Fatal(err)
		}
		if got := get(d); got != nil {
			t.Fatalf("%s: reset kept %+v", d, got)
		}
		set(d, &c10)
		if err := s.ResetCheckpoint(rec.Key, d, &c5); err != nil {
			t.Fatal(err)
		}
		if got := get(d); got.Position != "5" {
			t.Fatalf("%s: reset to 5 gave %+v", d, got)
		}
		// Checkpoint.Reset inside Update is explicit too; a later plain update is guarded again.
		set(d, &c10)
		if err := s.Update(rec.Key, func(r *Record) { r.Checkpoint(d).Reset(&c5) }); err != nil {
			t.Fatal(err)
		}
		if got := get(d); got.Position != "5" {
			t.Fatalf("%s: Reset inside Update gave %+v", d, got)
		}
		if err := s.Update(rec.Key, func(r *Record) { r.Checkpoint(d).Reset(nil) }); err != nil {
			t.Fatal(err)
		}
		if got := get(d); got != nil {
			t.Fatalf("%s: Reset(nil) inside Update kept %+v", d, got)
		}
		set(d, &c10)
		set(d, &c5)
		if got := get(d); got.Position != "10" {
			t.Fatalf("%s: guard not restored after a reset: %+v", d, got)
		}
	}
}

func TestUpdateKeepsIdentityCapsDeadLettersAndStampsActivity(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{Clock: clk, MaxDeadLetters: 3})
	rec, err := s.GetOrCreate(newLink(1))
	if err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Hour)
	for i := 0; i < 5; i++ {
		cid := fmt.Sprint("cid", i)
		if err := s.Update(rec.Key, func(r *Record) {
			r.Key, r.Tenant = "hijack", "did:other"
			r.AddDeadLetter(DeadLetter{CID: cid, Direction: ls.Push, Reason: "Invalid"})
		}); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := s.Get(rec.Key)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if got.Key != rec.Key || got.Tenant != rec.Tenant {
		t.Fatalf("identity changed: %s %s", got.Key, got.Tenant)
	}
	if len(got.DeadLetters) != 3 || got.DeadLetters[0].CID != "cid2" || got.DeadLetters[2].CID != "cid4" {
		t.Fatalf("dead letters: %+v", got.DeadLetters)
	}
	if !got.LastActivity.Equal(clk.Now()) {
		t.Fatalf("last activity %v, want %v", got.LastActivity, clk.Now())
	}
	if err := s.Update("missing", func(*Record) {}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing key: %v", err)
	}
}

func TestGetReturnsCopies(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{})
	rec, _ := s.GetOrCreate(newLink(1))
	c := cur("s", "1")
	if err := s.Update(rec.Key, func(r *Record) { r.Pull.Contiguous = &c }); err != nil {
		t.Fatal(err)
	}
	got, _, _ := s.Get(rec.Key)
	got.Pull.Contiguous.Position = "999"
	again, _, _ := s.Get(rec.Key)
	if again.Pull.Contiguous.Position != "1" {
		t.Fatal("caller mutated the store's cache through Get")
	}
}

func TestReopenAndRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := 0; i < 10; i++ {
		rec, err := s.GetOrCreate(newLink(i))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, rec.Key)
		pos := fmt.Sprint(100 + i)
		if err := s.Update(rec.Key, func(r *Record) {
			r.Push.Commit(cur("p", pos))
			r.Counters.Pushed = int64(i)
			r.LastConverged = time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
		}); err != nil {
			t.Fatal(err)
		}
	}
	// A staged update followed by Remove must not come back.
	if err := s.Update(keys[3], func(r *Record) { r.Phase = ls.Live }); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(keys[3]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // Close flushes
		t.Fatal(err)
	}
	if err := s.Update(keys[0], func(*Record) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("update after close: %v", err)
	}

	s2 := openTest(t, path, Options{})
	all, err := s2.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 9 {
		t.Fatalf("%d records after reopen, want 9", len(all))
	}
	for i, key := range keys {
		r, ok, _ := s2.Get(key)
		if i == 3 {
			if ok {
				t.Fatal("removed record came back")
			}
			continue
		}
		if !ok || r.Push.Contiguous.Position != fmt.Sprint(100+i) || r.Counters.Pushed != int64(i) || r.LastConverged.Year() != 2026 {
			t.Fatalf("record %d after reopen: %+v", i, r)
		}
	}
}

func TestSchemaNewerRefusedOlderMigrated(t *testing.T) {
	dir := t.TempDir()
	newer := filepath.Join(dir, "newer.db")
	writeRaw(t, newer, "did:a^http://x^id", `{"schema":99,"key":"x"}`)
	if _, err := Open(newer, Options{}); err == nil || !strings.Contains(err.Error(), "schema 99, newer than this build") {
		t.Fatalf("newer schema: %v", err)
	}

	older := filepath.Join(dir, "older.db")
	key := "did:jwk:a^http://127.0.0.1:2^" + ScopeID(dwn.Scope{Protocol: "https://example.com/p"})
	writeRaw(t, older, key, `{"tenantDid":"did:jwk:a","remoteEndpoint":"http://127.0.0.1:2",
	  "scope":{"kind":"protocol","protocol":"https://example.com/p"},"status":"live","connectivity":"online",
	  "pull":{"contiguousAppliedToken":{"streamId":"s","epoch":"e","position":"41","messageCid":"bafyA"},
	          "receivedToken":{"streamId":"s","epoch":"","position":"45","messageCid":"bafyB"}},
	  "needsReconcile":true,"lastActivityAt":"2025-05-01T10:00:00.000Z"}`)
	s, err := Open(older, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, ok, _ := s.Get(key)
	if !ok || r.Tenant != "did:jwk:a" || r.Scope.Protocol != "https://example.com/p" || r.ScopeID != ScopeID(r.Scope) ||
		r.Phase != ls.Live || !r.NeedsReconcile || r.Pull.Contiguous.Position != "41" || r.Pull.Received != nil ||
		r.LastActivity.Year() != 2025 {
		t.Fatalf("migrated: %+v (received %+v)", r, r.Pull.Received)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(older, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(linksBucket).Get([]byte(key))); !strings.Contains(v, `"schema":2`) {
			t.Errorf("migrated record not rewritten: %s", v)
		}
		return nil
	})
}

func writeRaw(t *testing.T, path, key, value string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(linksBucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), []byte(value))
	}); err != nil {
		t.Fatal(err)
	}
}

// Many writers and flushers at once (run with -race): every flushed position is on disk.
func TestConcurrentUpdatesAndFlushes(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{CommitInterval: time.Millisecond})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		rec, err := s.GetOrCreate(newLink(w))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(key string) {
			defer wg.Done()
			for i := 1; i <= 200; i++ {
				pos := fmt.Sprint(i)
				if err := s.Update(key, func(r *Record) { r.Pull.Commit(cur("s", pos)) }); err != nil {
					t.Error(err)
					return
				}
				if i%25 == 0 {
					if err := s.Flush(context.Background()); err != nil {
						t.Error(err)
						return
					}
					got, _ := stored(t, s, key)
					if n, _ := ComparePositions(got.Pull.Contiguous.Position, pos); n < 0 {
						t.Errorf("flushed %s but file has %s", pos, got.Pull.Contiguous.Position)
					}
				}
			}
		}(rec.Key)
	}
	wg.Wait()
}

func TestFlushHonoursContext(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{})
	rec, _ := s.GetOrCreate(newLink(1))
	_ = s.Update(rec.Key, func(r *Record) { r.Phase = ls.Live })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Either the commit won the race or the cancelled context is reported; never a hang.
	if err := s.Flush(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
