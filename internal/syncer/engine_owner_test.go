package syncer

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/dwnsync/dwnsync/internal/ledger"
)

// One owner per ledger key: another owner's Apply is refused with a typed error naming the
// holder (kept in the ledger record across a restart of the engine); Supersedes hands the key
// over, and Release removes the link only for its holder.
func TestEngineDuplicateLinkNamesTheOwner(t *testing.T) {
	p := newPairNoLink(t, 0, 0)
	path := filepath.Join(t.TempDir(), "ledger.db")
	p.te.stop()
	p.te = startEngine(t, engineOpts{ledgerPath: path})
	p.apply(t, LinkConfig{Name: "ns/a", Owner: "uid-a"})
	cfgB := LinkConfig{Name: "ns/b", Owner: "uid-b", Tenant: p.id.DID, LocalEndpoint: p.local.URL(), RemoteEndpoint: p.remote.URL() + "/",
		LocalSigner: p.id.Signer, RemoteSigner: p.id.Signer}
	_, err := p.te.Apply(cfgB)
	var dup *DuplicateLinkError
	if !errors.As(err, &dup) || dup.Owner != "uid-a" || dup.Key != p.key {
		t.Fatalf("second owner's Apply: %v, want a DuplicateLinkError naming uid-a on %s", err, p.key)
	}
	if removed, err := p.te.Release(p.key, "uid-b"); removed || err != nil {
		t.Fatalf("Release by a non-owner: removed %v, %v", removed, err)
	}
	if s, ok := p.te.Snapshot(p.key); !ok || s.Owner != "uid-a" {
		t.Fatalf("after a refused claim the engine runs %+v (%v)", s, ok)
	}

	// The record keeps the owner across a restart: before the owner applies again, the
	// other claim is still refused.
	p.te.stop()
	p.te = startEngine(t, engineOpts{ledgerPath: path})
	if _, err := p.te.Apply(cfgB); !errors.As(err, &dup) || dup.Owner != "uid-a" {
		t.Fatalf("after a restart: %v, want a DuplicateLinkError naming uid-a", err)
	}

	cfgB.Supersedes = "uid-a"
	if _, err := p.te.Apply(cfgB); err != nil {
		t.Fatalf("hand-over: %v", err)
	}
	if rec, _, _ := p.te.store.Get(p.key); rec.OwnerUID != "uid-b" {
		t.Fatalf("record owner %q after the hand-over", rec.OwnerUID)
	}
	if removed, err := p.te.Release(p.key, "uid-b"); !removed || err != nil {
		t.Fatalf("Release by the owner: removed %v, %v", removed, err)
	}
	if _, found, _ := p.te.store.Get(p.key); found {
		t.Fatal("the owner's Release left the ledger record")
	}
}

// DropIdleRecords deletes, durably, the records of keys the engine does not run (what a shard
// kept from an earlier tenure), and keeps the record of the link it runs.
func TestDropIdleRecordsKeepsRunningLinks(t *testing.T) {
	p := newPairNoLink(t, 0, 0)
	path := filepath.Join(t.TempDir(), "ledger.db")
	p.te.stop()
	p.te = startEngine(t, engineOpts{ledgerPath: path})
	p.apply(t, LinkConfig{Name: "ns/running", Owner: "uid-a"})
	idle, err := p.te.store.GetOrCreate(ledger.Record{Tenant: p.id.DID, LocalEndpoint: p.local.URL(), RemoteEndpoint: "http://127.0.0.1:1/elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.te.DropIdleRecords(); n != 1 || err != nil {
		t.Fatalf("DropIdleRecords: %d, %v; want the one idle record", n, err)
	}
	p.te.stop()
	p.te = startEngine(t, engineOpts{ledgerPath: path})
	if _, found, _ := p.te.store.Get(idle.Key); found {
		t.Fatal("the idle record is back after a restart: its removal was not durable")
	}
	if _, found, _ := p.te.store.Get(p.key); !found {
		t.Fatal("the running link's record was dropped")
	}
}
