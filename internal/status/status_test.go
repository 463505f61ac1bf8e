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
		{"unauthorized", syncer.LinkStatus{Phase: "repairing", Connectivity: "online", LastError: "pull feed: not allowed", LastErrorKind: "Unauthorized"},
			"False/Unauthorized", "Unknown/NotYetCompared", "False/Healthy"},
		{"repair failed", syncer.LinkStatus{Phase: "repairing", Connectivity: "online", RepairAttempts: 2, LastError: "subscribe: 500"},
			"False/RepairFailed", "Unknown/NotYetCompared", "True/RepairFailed"},
		// degraded_poll is not Ready: whatever broke the feeds three times is still broken.
		{"degraded poll", syncer.LinkStatus{Phase: "degraded_poll", RepairAttempts: 3, LastError: "subscribe: 500", LastConvergedTime: t0},
			"False/RepairFailed", "True/Converged", "True/DegradedPoll"},
		{"degraded poll, wrong key", syncer.LinkStatus{Phase: "degraded_poll", Connectivity: "online", RepairAttempts: 3, LastError: "subscribe: refused", LastErrorKind: "Unauthorized"},
			"False/Unauthorized", "Unknown/NotYetCompared", "True/DegradedPoll"},
		{"degraded poll, remote down", syncer.LinkStatus{Phase: "degraded_poll", Connectivity: "offline", RepairAttempts: 3, LastError: "dial tcp 127.0.0.1:1: connection refused"},
			"False/EndpointUnreachable", "Unknown/NotYetCompared", "True/DegradedPoll"},
		// Converged follows the latest reconcile, not the last success.
		{"diverged after an old success", syncer.LinkStatus{Phase: "live", Connectivity: "online", LastConvergedTime: t0, LastReconcileTime: t0.Add(time.Minute)},
			"True/Live", "False/Diverged", "False/Healthy"},
		{"compared, never equal", syncer.LinkStatus{Phase: "live", Connectivity: "online", LastReconcileTime: t0},
			"True/Live", "False/Diverged", "False/Healthy"},
		{"latest reconcile converged", syncer.LinkStatus{Phase: "live", Connectivity: "online", LastConvergedTime: t0.Add(time.Minute), LastReconcileTime: t0.Add(time.Minute)},
			"True/Live", "True/Converged", "False/Healthy"},
		{"converged but a compare is due", syncer.LinkStatus{Phase: "live", NeedsReconcile: true, LastConvergedTime: t0, LastReconcileTime: t0},
			"True/Live", "False/ReconcilePending", "False/Healthy"},
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

// The Ready message of a healthy link says how it replicates: its direction and mode, not
// "both feeds" for a one-way or a poll link.
func TestReadyMessageFollowsDirectionAndMode(t *testing.T) {
	snap := syncer.LinkStatus{Phase: "live", Connectivity: "online"}
	cases := []struct {
		dir        v1alpha1.Direction
		mode       v1alpha1.Mode
		want, nope []string
	}{
		{v1alpha1.DirectionBoth, v1alpha1.ModeLive, []string{"both ways", "both servers' feeds"}, nil},
		{v1alpha1.DirectionPull, v1alpha1.ModeLive, []string{"from the remote to the local", "remote server's feed"}, []string{"both"}},
		{v1alpha1.DirectionPush, v1alpha1.ModeLive, []string{"from the local to the remote", "local server's feed"}, []string{"both"}},
		{v1alpha1.DirectionBoth, v1alpha1.ModePoll, []string{"both ways", "pollInterval"}, []string{"feed"}},
		{v1alpha1.DirectionPull, v1alpha1.ModePoll, []string{"from the remote to the local", "pollInterval"}, []string{"feed", "both ways"}},
	}
	for _, c := range cases {
		inputs := in(c.dir)
		inputs.Mode = c.mode
		m := cond(status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, snap, inputs), "Ready").Message
		for _, w := range c.want {
			if !strings.Contains(m, w) {
				t.Errorf("%s/%s: message %q lacks %q", c.dir, c.mode, m, w)
			}
		}
		for _, n := range c.nope {
			if strings.Contains(m, n) {
				t.Errorf("%s/%s: message %q says %q", c.dir, c.mode, m, n)
			}
		}
	}
}

// A degraded_poll link is not Ready and its message carries the error to fix.
func TestDegradedPollReadyMessage(t *testing.T) {
	snap := syncer.LinkStatus{Phase: "degraded_poll", Connectivity: "online", RepairAttempts: 3, LastError: "subscribe: 500 internal"}
	c := cond(status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, snap, in(v1alpha1.DirectionBoth)), "Ready")
	if c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "subscribe: 500 internal") || !strings.Contains(c.Message, "3 repairs failed") {
		t.Fatalf("Ready %s/%s: %s", c.Status, c.Reason, c.Message)
	}
}

// Dead letters do not make Converged false (the latest reconcile decides), but its message
// says they exist.
func TestConvergedMessageMentionsDeadLetters(t *testing.T) {
	snap := syncer.LinkStatus{Phase: "live", DeadLetters: 2, LastConvergedTime: t0, LastReconcileTime: t0}
	c := cond(status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, snap, in(v1alpha1.DirectionBoth)), "Converged")
	if c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "2 messages were dead-lettered") {
		t.Fatalf("Converged %s/%s: %s", c.Status, c.Reason, c.Message)
	}
	diverged := snap
	diverged.LastReconcileTime, diverged.LastError = t0.Add(time.Minute), "reconcile did not converge"
	c = cond(status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, diverged, in(v1alpha1.DirectionBoth)), "Converged")
	if c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "reconcile did not converge") {
		t.Fatalf("Converged %s/%s: %s", c.Status, c.Reason, c.Message)
	}
}

func TestUnauthorizedMessageSaysWhatToCheck(t *testing.T) {
	s := status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, syncer.LinkStatus{Phase: "initializing", LastError: "dwn MessagesQuery: Unauthorized (http 403)", LastErrorKind: "Unauthorized"}, in(v1alpha1.DirectionBoth))
	if m := cond(s, "Ready").Message; !strings.Contains(m, "grants") || !strings.Contains(m, "(http 403)") {
		t.Fatalf("message %q", m)
	}
}

func TestDirectionsAndProgress(t *testing.T) {
	snap := syncer.LinkStatus{Phase: "initializing", Pull: syncer.DirectionStatus{Applied: 5, Pending: 2, LastEventTime: t0.Add(1500 * time.Millisecond)},
		Push: syncer.DirectionStatus{Applied: 7}, Progress: syncer.Progress{Applied: 12, Total: 40}}
	s := status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, snap, in(v1alpha1.DirectionPull))
	if s.Push != nil || s.Pull == nil || s.Pull.Applied != 5 || s.Pull.Pending != 2 || s.Progress == nil || s.Progress.Total != 40 || s.Progress.Summary != "12/40" {
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
	base := syncer.LinkStatus{Phase: "initializing", Connectivity: "online", Pull: syncer.DirectionStatus{Applied: 1}, Progress: syncer.Progress{Applied: 1, Total: 9},
		LastReconcileTime: t0.Add(-time.Hour), LastConvergedTime: t0.Add(-time.Hour)}
	a := status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, base, in(v1alpha1.DirectionBoth))

	counters := base
	// Another converged reconcile moves both times: Converged stays True.
	counters.Pull.Applied, counters.Pull.Checkpoint, counters.Progress.Applied = 50, "c9", 5
	counters.LastReconcileTime, counters.LastConvergedTime = t0, t0
	b := status.FromSnapshot(a, counters, status.Inputs{Generation: 3, Now: t0.Add(time.Minute), Direction: v1alpha1.DirectionBoth})
	if status.Significant(a, b) || status.Equal(a, b) {
		t.Fatalf("counter change: significant=%v equal=%v", status.Significant(a, b), status.Equal(a, b))
	}
	for name, edit := range map[string]func(*syncer.LinkStatus){
		"phase":        func(s *syncer.LinkStatus) { s.Phase = "live" },
		"connectivity": func(s *syncer.LinkStatus) { s.Connectivity = "offline" },
		"error":        func(s *syncer.LinkStatus) { s.Push.LastError = "boom" },
		"reconcile":    func(s *syncer.LinkStatus) { s.NeedsReconcile = true },
		"diverged":     func(s *syncer.LinkStatus) { s.LastReconcileTime = t0 },
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

// While the ledger cannot save checkpoints, every link says so in Degraded, ahead of its own
// troubles, with the error and what a restart would cost; Ready keeps following replication.
func TestCheckpointsNotSavedIsDegraded(t *testing.T) {
	for _, snap := range []syncer.LinkStatus{
		{Phase: "live", Connectivity: "online", LastConvergedTime: t0},
		{Phase: "degraded_poll", RepairAttempts: 3, LastError: "subscribe: 500"},
	} {
		snap.CheckpointsNotSaved = "ledger: commit 2 records: write ledger.db: no space left on device"
		s := status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, snap, in(v1alpha1.DirectionBoth))
		d := cond(s, v1alpha1.ConditionDegraded)
		if d.Status != metav1.ConditionTrue || d.Reason != status.ReasonCheckpointsNotSaved ||
			!strings.Contains(d.Message, "no space left on device") || !strings.Contains(d.Message, "restart") {
			t.Fatalf("%s: Degraded = %+v", snap.Phase, d)
		}
		if r, want := cond(s, v1alpha1.ConditionReady), snap.Phase == "live"; (r.Status == metav1.ConditionTrue) != want {
			t.Fatalf("%s: Ready = %+v", snap.Phase, r)
		}
		// Saved again: the condition goes back to the link's own state.
		snap.CheckpointsNotSaved = ""
		if d := cond(status.FromSnapshot(s, snap, in(v1alpha1.DirectionBoth)), v1alpha1.ConditionDegraded); d.Reason == status.ReasonCheckpointsNotSaved {
			t.Fatalf("%s: condition kept after recovery: %+v", snap.Phase, d)
		}
	}
}
