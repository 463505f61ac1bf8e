package status_test

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/status"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func in(dir v1alpha1.Direction) status.Inputs {
	return status.Inputs{Generation: 3, Now: t0, Direction: dir, Remote: "https://remote.test"}
}

func cond(s v1alpha1.ReplicationLinkStatus, typ string) metav1.Condition {
	c := meta.FindStatusCondition(s.Conditions, typ)
	if c == nil {
		return metav1.Condition{}
	}
	return *c
}

func TestConditionsByPhase(t *testing.T) {
	cases := []struct {
		name                       string
		snap                       syncer.LinkStatus
		ready, converged, degraded string // Status/Reason
	}{
		{"live and converged", syncer.LinkStatus{Phase: "live", Connectivity: "online", LastConvergedTime: t0},
			"True/Live", "True/Converged", "False/Healthy"},
		{"initializing", syncer.LinkStatus{Phase: "initializing", NeedsReconcile: true},
			"False/Initializing", "False/ReconcilePending", "False/Healthy"},
		{"offline", syncer.LinkStatus{Phase: "initializing", Connectivity: "offline", LastError: "dial tcp: connection refused"},
			"False/EndpointUnreachable", "Unknown/NotYetCompared", "False/Healthy"},
		{"unauthorized", syncer.LinkStatus{Phase: "repairing", Connectivity: "online", Pull: syncer.DirectionStatus{LastError: "401 Unauthorized: not allowed"}},
			"False/Unauthorized", "Unknown/NotYetCompared", "False/Healthy"},
		{"repair failed", syncer.LinkStatus{Phase: "repairing", Connectivity: "online", RepairAttempts: 2, LastError: "subscribe: 500"},
			"False/RepairFailed", "Unknown/NotYetCompared", "True/RepairFailed"},
		{"degraded poll", syncer.LinkStatus{Phase: "degraded_poll", RepairAttempts: 3, LastError: "subscribe: 500", LastConvergedTime: t0},
			"True/DegradedPoll", "True/Converged", "True/DegradedPoll"},
		{"paused", syncer.LinkStatus{Phase: "paused"},
			"False/Suspended", "Unknown/NotYetCompared", "False/Healthy"},
		{"dead letters", syncer.LinkStatus{Phase: "live", DeadLetters: 2, LastConvergedTime: t0},
			"True/Live", "True/Converged", "True/DeadLetters"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, c.snap, in(v1alpha1.DirectionBoth))
			got := func(typ string) string { x := cond(s, typ); return string(x.Status) + "/" + x.Reason }
			if got("Ready") != c.ready || got("Converged") != c.converged || got("Degraded") != c.degraded {
				t.Fatalf("Ready %s Converged %s Degraded %s; want %s %s %s", got("Ready"), got("Converged"), got("Degraded"), c.ready, c.converged, c.degraded)
			}
			for _, x := range s.Conditions {
				if x.ObservedGeneration != 3 || x.Message == "" {
					t.Errorf("condition %s: generation %d message %q", x.Type, x.ObservedGeneration, x.Message)
				}
			}
		})
	}
}

func TestUnauthorizedMessageSaysWhatToCheck(t *testing.T) {
	s := status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, syncer.LinkStatus{Phase: "initializing", LastError: "403 forbidden"}, in(v1alpha1.DirectionBoth))
	if m := cond(s, "Ready").Message; !strings.Contains(m, "grants") || !strings.Contains(m, "403 forbidden") {
		t.Fatalf("message %q", m)
	}
}

func TestDirectionsAndProgress(t *testing.T) {
	snap := syncer.LinkStatus{Phase: "initializing", Pull: syncer.DirectionStatus{Applied: 5, Pending: 2, LastEventTime: t0.Add(1500 * time.Millisecond)},
		Push: syncer.DirectionStatus{Applied: 7}, Progress: syncer.Progress{Applied: 12, Total: 40}}
	s := status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, snap, in(v1alpha1.DirectionPull))
	if s.Push != nil || s.Pull == nil || s.Pull.Applied != 5 || s.Pull.Pending != 2 || s.Progress == nil || s.Progress.Total != 40 {
		t.Fatalf("status %+v", s)
	}
	if !s.Pull.LastEventTime.Time.Equal(t0.Add(time.Second)) {
		t.Errorf("times are stored to the second (as the API server keeps them): %v", s.Pull.LastEventTime)
	}
	quiet := snap
	quiet.Progress = syncer.Progress{}
	if s := status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, quiet, in(v1alpha1.DirectionBoth)); s.Progress != nil {
		t.Error("progress shown although nothing was copied")
	}
}

// Counters, checkpoints, progress and times are not significant: they are coalesced. Phase,
// connectivity, errors and condition reasons and messages are written at once.
func TestSignificant(t *testing.T) {
	base := syncer.LinkStatus{Phase: "initializing", Connectivity: "online", Pull: syncer.DirectionStatus{Applied: 1}, Progress: syncer.Progress{Applied: 1, Total: 9}}
	a := status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, base, in(v1alpha1.DirectionBoth))

	counters := base
	counters.Pull.Applied, counters.Pull.Checkpoint, counters.Progress.Applied, counters.LastReconcileTime = 50, "c9", 5, t0
	b := status.FromSnapshot(a, counters, status.Inputs{Generation: 3, Now: t0.Add(time.Minute), Direction: v1alpha1.DirectionBoth})
	if status.Significant(a, b) || status.Equal(a, b) {
		t.Fatalf("counter change: significant=%v equal=%v", status.Significant(a, b), status.Equal(a, b))
	}
	for name, edit := range map[string]func(*syncer.LinkStatus){
		"phase":        func(s *syncer.LinkStatus) { s.Phase = "live" },
		"connectivity": func(s *syncer.LinkStatus) { s.Connectivity = "offline" },
		"error":        func(s *syncer.LinkStatus) { s.Push.LastError = "boom" },
		"reconcile":    func(s *syncer.LinkStatus) { s.NeedsReconcile = true },
	} {
		x := base
		edit(&x)
		if c := status.FromSnapshot(a, x, in(v1alpha1.DirectionBoth)); !status.Significant(a, c) {
			t.Errorf("%s change not significant", name)
		}
	}
	// A new message for the same problem (another key of the Secret is wrong) goes out at once.
	p1 := status.WithProblem(a, 3, t0, "SignerSecretInvalid", `signer Secret ns/s key "did": missing`)
	p2 := status.WithProblem(p1, 3, t0, "SignerSecretInvalid", `signer Secret ns/s key "privateJwk": not JSON`)
	if !status.Significant(p1, p2) {
		t.Error("a changed problem message is not significant")
	}
	// Unchanged conditions keep their transition time.
	later := status.FromSnapshot(a, base, status.Inputs{Generation: 3, Now: t0.Add(time.Hour), Direction: v1alpha1.DirectionBoth})
	if !cond(later, "Ready").LastTransitionTime.Time.Equal(t0) || !status.Equal(a, later) {
		t.Fatalf("transition time moved: %v", cond(later, "Ready").LastTransitionTime)
	}
}

func TestWithProblemKeepsTheRest(t *testing.T) {
	a := status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, syncer.LinkStatus{Phase: "live", LastConvergedTime: t0}, in(v1alpha1.DirectionBoth))
	p := status.WithProblem(a, 4, t0, "SignerSecretMissing", "signer Secret ns/x not found")
	if p.Phase != "live" || p.ObservedGeneration != 4 || cond(p, "Ready").Reason != "SignerSecretMissing" || cond(p, "Converged").Status != metav1.ConditionTrue {
		t.Fatalf("%+v", p)
	}
}
