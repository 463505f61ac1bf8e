package ledger_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/ledger"
)

// After --local-endpoint changes and the runtime restarts, the push checkpoint (a position in
// the old local server's feed) must not be reused on the new local server: it is cleared and a
// reconcile is owed. The pull checkpoint (the remote's feed) stays. Same server again: nothing
// changes.
func TestGetOrCreateWithAnotherLocalEndpointRestartsPush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	oldLocal := ledger.Record{Tenant: "did:jwk:alice", LocalEndpoint: "http://127.0.0.1:3001", RemoteEndpoint: "http://127.0.0.1:3002"}
	pullAt := dwn.Cursor{StreamID: "remote", Epoch: "e1", Position: "40"}
	pushAt := dwn.Cursor{StreamID: "old-local", Epoch: "e1", Position: "17"}

	s, err := ledger.Open(path, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.GetOrCreate(oldLocal)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(rec.Key, func(r *ledger.Record) {
		r.Pull.Commit(pullAt)
		r.Push.Commit(pushAt)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart with the same local server: the checkpoints are kept.
	s, err = ledger.Open(path, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	same, err := s.GetOrCreate(oldLocal)
	if err != nil {
		t.Fatal(err)
	}
	if same.Push.Contiguous == nil || *same.Push.Contiguous != pushAt || same.NeedsReconcile {
		t.Fatalf("same local server: push %v needsReconcile %v", same.Push.Contiguous, same.NeedsReconcile)
	}

	// Restart with another local server.
	newLocal := oldLocal
	newLocal.LocalEndpoint = "http://127.0.0.1:3003"
	moved, err := s.GetOrCreate(newLocal)
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, r ledger.Record) {
		t.Helper()
		if r.LocalEndpoint != newLocal.LocalEndpoint || r.Push.Contiguous != nil || r.Push.Received != nil || !r.NeedsReconcile {
			t.Fatalf("%s: local %q push %v/%v needsReconcile %v; want the new server, no push checkpoint, a reconcile owed",
				when, r.LocalEndpoint, r.Push.Contiguous, r.Push.Received, r.NeedsReconcile)
		}
		if r.Pull.Contiguous == nil || *r.Pull.Contiguous != pullAt {
			t.Fatalf("%s: the pull checkpoint (the remote's position) was lost: %v", when, r.Pull.Contiguous)
		}
	}
	check("returned", moved)
	if got, _, err := s.Get(moved.Key); err != nil {
		t.Fatal(err)
	} else {
		check("in memory", got)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = ledger.Open(path, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, ok, err := s.Get(moved.Key)
	if err != nil || !ok {
		t.Fatalf("record after reopening: found %v err %v", ok, err)
	}
	check("after reopening", got)
}
