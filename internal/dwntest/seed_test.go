package dwntest

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// Seed stores what Write stores: the same CIDs in the same feed order, the same messages and
// data, the same newest state; and it refuses what Write would not apply.
func TestSeedStoresWhatWriteStores(t *testing.T) {
	alice := MustIdentity(t)
	proto := must[Written](t)(alice.ConfigureProtocol(notes))
	note := must[Written](t)(alice.Write(WriteOpts{Protocol: notes, ProtocolPath: "note", Data: []byte("hello")}))
	comment := must[Written](t)(alice.Write(WriteOpts{Protocol: notes, ProtocolPath: "note/comment", Parent: &note, Data: []byte("c")}))
	v2 := must[Written](t)(alice.Update(note, []byte("hello v2")))
	plain := must[Written](t)(alice.Write(WriteOpts{Data: []byte(`{"n":1}`), DataFormat: "application/json"}))
	del := must[Written](t)(alice.Delete(plain.RecordID))
	all := []Written{proto, note, comment, v2, plain, del}

	written, seeded := Start(t, Options{}), Start(t, Options{})
	for _, w := range all {
		if r := written.Write(alice.DID, w.Message, w.Data); r.Kind != "Applied" {
			t.Fatalf("Write %s: %+v", w, r)
		}
	}
	if err := seeded.Seed(alice.DID, all...); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	want, got := written.CIDs(alice.DID), seeded.CIDs(alice.DID)
	if !slices.Equal(want, got) || len(got) == 0 {
		t.Fatalf("Seed stored %v, Write %v", got, want)
	}
	for _, cid := range want {
		wm, wd, _ := written.Message(alice.DID, cid)
		sm, sd, ok := seeded.Message(alice.DID, cid)
		if !ok || !bytes.Equal(wm, sm) || !bytes.Equal(wd, sd) {
			t.Errorf("%s: Seed stored %s %q, Write %s %q", cid, sm, sd, wm, wd)
		}
	}
	if w, s := written.Fingerprint(alice.DID), seeded.Fingerprint(alice.DID); w != s {
		t.Errorf("fingerprints differ: Seed %s, Write %s", s, w)
	}

	empty := Start(t, Options{})
	err := empty.Seed(alice.DID, v2)
	if err == nil || !strings.Contains(err.Error(), "Incomplete") {
		t.Errorf("Seed of an update before its initial write: %v, want the Incomplete outcome", err)
	}
	if err := empty.Seed(alice.DID, Written{Message: note.Message}); err == nil {
		t.Error("Seed of a message no Identity authored here: no error")
	}
}
