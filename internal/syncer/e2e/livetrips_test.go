package e2e

import (
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/syncer"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// The live path on web5 costs what the subscription event leaves out and nothing more: the
// doorbell event carries the message, so a live write crosses with one Read of its data on the
// source and one write on the target, and a delete (no data) with the write alone. No
// MessagesQuery is on the path: with every query held, both still cross. Once queries pass
// again, the feeds' checkpoints advance past them (the page's position-only repeat).
func TestEngineWeb5LiveWriteCrossesWithoutAQueryOrAMessageRead(t *testing.T) {
	a, b, client, id := twoServersOneTenant(t)
	signer, err := msg.NewSigner(id.DID, id.PrivateJWK)
	if err != nil {
		t.Fatal(err)
	}
	pool, trips := newCountingPool()
	te := startEngine(t, engineOpts{pool: pool})
	t.Cleanup(trips.releaseQueries) // before the engine stops (cleanups run last-first)
	ta, tb := tenantsOn(t, id.DID, signer, a.URL, b.URL)
	// The protocol's configure and one note, on A only: the bootstrap copies them to B.
	if _, err := client.Seed(a.URL, id, dwnserver.SeedSpec{Records: 1, Prefix: "a"}); err != nil {
		t.Fatal(err)
	}
	key, err := te.Apply(syncer.LinkConfig{Name: "e2e/trips", Tenant: id.DID, LocalEndpoint: a.URL, RemoteEndpoint: b.URL,
		Direction: linkstate.Both, LocalSigner: signer, RemoteSigner: signer})
	if err != nil {
		t.Fatal(err)
	}
	settled := func() bool {
		s, _ := te.Snapshot(key)
		return s.Phase == "live" && !s.NeedsReconcile && s.Pull.Pending == 0 && s.Push.Pending == 0
	}
	eventually(t, 2*time.Minute, "the link live with the seed on B", func() bool {
		return settled() && sameSet(listCIDs(t, ta), listCIDs(t, tb))
	})
	s0, _ := te.Snapshot(key)

	trips.holdQueries()
	readsA, writesB := trips.count(t, a.URL, "MessagesRead"), trips.count(t, b.URL, "RecordsWrite")
	w1, err := client.Write(a.URL, id, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "note", Data: []byte(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "A's live write readable on B while every query is held", func() bool {
		return readable(t.Context(), tb, w1.CID)
	})
	if n := trips.count(t, a.URL, "MessagesRead") - readsA; n != 1 {
		t.Errorf("the live write cost %d MessagesRead on A, want 1 (its data; the event carried the message)", n)
	}
	if n := trips.count(t, b.URL, "RecordsWrite") - writesB; n != 1 {
		t.Errorf("the live write was sent to B %d times, want 1", n)
	}

	readsB, deletesA := trips.count(t, b.URL, "MessagesRead"), trips.count(t, a.URL, "RecordsDelete")
	del, err := client.Delete(b.URL, id, w1.RecordID)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "B's live delete on A while every query is held", func() bool {
		return readable(t.Context(), ta, del)
	})
	if n := trips.count(t, b.URL, "MessagesRead") - readsB; n != 0 {
		t.Errorf("the live delete cost %d MessagesRead on B, want 0 (the event carried it whole)", n)
	}
	if n := trips.count(t, a.URL, "RecordsDelete") - deletesA; n != 1 {
		t.Errorf("the live delete was sent to A %d times, want 1", n)
	}

	trips.releaseQueries()
	eventually(t, time.Minute, "both checkpoints past the live messages", func() bool {
		s, _ := te.Snapshot(key)
		return settled() && s.Pull.Checkpoint != s0.Pull.Checkpoint && s.Push.Checkpoint != s0.Push.Checkpoint
	})
}
