package syncer

import (
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/ledger"
)

// Issue 10 §1: a feed that had no checkpoint yet (a quiet direction of a new link) and whose
// WebSocket drops is reopened live-only. The writes whose events were in flight when the
// socket dropped, and those made during the redial, must still reach the other side, without
// waiting for the periodic verify (24 h here, so only the fix can deliver them), and the link
// must say it is dirty (or hold a resume point) until they have.
func TestEngineDwntestReopenWithoutCheckpointLosesNothing(t *testing.T) {
	for _, mode := range modes() {
		for _, c := range []struct {
			dir                   string
			seedLocal, seedRemote int
		}{
			// Only the remote is seeded: the pull feed never delivers before the drop.
			{"pull", 0, 5},
			// Only local is seeded: the push feed never delivers before the drop.
			{"push", 5, 0},
		} {
			t.Run(string(mode)+"/"+c.dir, func(t *testing.T) {
				timing := fastTiming()
				timing.VerifyInterval = 24 * time.Hour
				p := startPair(t, mode, c.seedLocal, c.seedRemote, engineOpts{timing: timing})
				p.waitLiveConverged(t)
				source, target := p.remote, p.local
				checkpoint := func(r ledger.Record) bool { return r.Pull.Contiguous != nil }
				dirStatus := func(s LinkStatus) DirectionStatus { return s.Pull }
				if c.dir == "push" {
					source, target = p.local, p.remote
					checkpoint = func(r ledger.Record) bool { return r.Push.Contiguous != nil }
					dirStatus = func(s LinkStatus) DirectionStatus { return s.Push }
				}
				subscribes := source.Count("MessagesSubscribe")

				// Events of these writes are held by the server and lost with the socket.
				source.StallSubscriptions(true)
				held := p.write(t, source, 3, "in-flight")
				source.DropWebSockets()
				source.StallSubscriptions(false)
				during := p.write(t, source, 2, "during-redial")

				eventually(t, 20*time.Second, "the feed resubscribed", func() bool {
					return source.Count("MessagesSubscribe") > subscribes
				})
				// Before the new subscription reached the server, the link was made dirty or it
				// resumes from a checkpoint: never live and clean with nothing to resume from.
				rec, _, _ := p.te.store.Get(p.key)
				if !rec.NeedsReconcile && !checkpoint(rec) {
					t.Errorf("reopened from nothing and not dirty: needsReconcile=%v pull=%v push=%v", rec.NeedsReconcile, rec.Pull.Contiguous, rec.Push.Contiguous)
				}
				want := append(held, during...)
				eventually(t, 20*time.Second, "the writes of the outage crossed", func() bool {
					got := target.CIDs(p.id.DID)
					for _, cid := range want {
						if !contains(got, cid) {
							return false
						}
					}
					return true
				})
				eventually(t, 20*time.Second, "healthy: live, clean, no stale error", func() bool {
					s, _ := p.te.Snapshot(p.key)
					return s.Phase == "live" && !s.NeedsReconcile && s.LastError == "" && dirStatus(s).LastError == ""
				})
			})
		}
	}
}
