package status_test

import (
	"testing"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/status"
	"github.com/dwnsync/dwnsync/internal/syncer"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// Every engine phase and connectivity shows as the API value of the same meaning.
func TestEnginePhasesMapToAPI(t *testing.T) {
	phases := map[linkstate.Phase]v1alpha1.Phase{
		linkstate.Initializing: v1alpha1.PhaseInitializing,
		linkstate.Live:         v1alpha1.PhaseLive,
		linkstate.Repairing:    v1alpha1.PhaseRepairing,
		linkstate.DegradedPoll: v1alpha1.PhaseDegradedPoll,
		linkstate.Paused:       v1alpha1.PhasePaused,
	}
	for p, want := range phases {
		got := status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, syncer.LinkStatus{Phase: p}, in(v1alpha1.DirectionBoth))
		if got.Phase != want {
			t.Errorf("engine phase %q shows as %q, want %q", p, got.Phase, want)
		}
	}
	conns := map[linkstate.Connectivity]v1alpha1.Connectivity{
		linkstate.Online:  v1alpha1.ConnectivityOnline,
		linkstate.Offline: v1alpha1.ConnectivityOffline,
		linkstate.Unknown: v1alpha1.ConnectivityUnknown,
		"":                v1alpha1.ConnectivityUnknown,
	}
	for c, want := range conns {
		got := status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, syncer.LinkStatus{Phase: linkstate.Live, Connectivity: c}, in(v1alpha1.DirectionBoth))
		if got.Connectivity != want {
			t.Errorf("engine connectivity %q shows as %q, want %q", c, got.Connectivity, want)
		}
	}
}
