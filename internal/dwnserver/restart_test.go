package dwnserver

import (
	"slices"
	"testing"
)

// A restarted server (after a SIGKILL) answers on the same URL with the store it had: what was written before
// the stop is still listed, and it accepts writes at once.
func TestRestartKeepsStoreAndURL(t *testing.T) {
	s := Start(t, 1)[0]
	c := NewClient(t)
	id, err := c.NewTenant()
	noErr(t, err)
	before, err := c.Write(s.URL, id, WriteOpts{Data: []byte("before the stop"), DataFormat: "text/plain"})
	noErr(t, err)
	s.Kill()
	if _, err := c.Query(s.URL, id); err == nil {
		t.Fatalf("%s still answers after Stop", s.URL)
	}

	r := Restart(t, s)
	if r.URL != s.URL || r.DataDir != s.DataDir {
		t.Fatalf("restarted on %s with data %s, want %s with %s", r.URL, r.DataDir, s.URL, s.DataDir)
	}
	after, err := c.Write(r.URL, id, WriteOpts{Data: []byte("after the restart"), DataFormat: "text/plain"})
	noErr(t, err)
	cids, err := c.Query(r.URL, id)
	noErr(t, err)
	if !slices.Contains(cids, before.CID) || !slices.Contains(cids, after.CID) {
		t.Fatalf("after restart %s lists %v; want the write from before the stop %s and the new one %s", r.URL, cids, before.CID, after.CID)
	}
}
