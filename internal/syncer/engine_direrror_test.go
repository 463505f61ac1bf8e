package syncer

import (
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwntest"
)

// Issue 10 §1: a direction's error is not kept on a healthy link. A push that the remote
// keeps deferring exhausts its retries; the reconcile that takes over copies it and the sides
// converge. The push error is then history, as the link's own LastError already is: it must
// not stay on push.lastError of a live, clean, converged link (on a quiet link no later push
// would ever clear it).
func TestEngineDwntestConvergedReconcileClearsStaleDirectionError(t *testing.T) {
	p := startPair(t, dwntest.ModeEnbox, 1, 1, engineOpts{timing: fastTiming()})
	p.waitLiveConverged(t)
	p.remote.DeferNextApplies(len(fastTiming().PushRetryBackoff), "storage")
	cids := p.write(t, p.local, 1, "deferred")
	eventually(t, 20*time.Second, "the deferred push gave up", func() bool {
		return contains(p.te.eventTypes(p.key), "reconcile:needed")
	})
	eventually(t, 20*time.Second, "the reconcile copied it and the link is clean", func() bool {
		s, _ := p.te.Snapshot(p.key)
		return contains(p.remote.CIDs(p.id.DID), cids[0]) && s.Phase == "live" && !s.NeedsReconcile && s.LastError == ""
	})
	eventually(t, 10*time.Second, "no stale push error", func() bool {
		s, _ := p.te.Snapshot(p.key)
		return s.Push.LastError == "" && s.Pull.LastError == ""
	})
}
