// Package status turns the engine's view of a link (a syncer.LinkStatus snapshot) into the
// ReplicationLink status a person reads: phase, counters, times and conditions with reasons
// they can act on. The operator writes it to the CR; `dwnsync run` serves it as JSON.
package status

import (
	"fmt"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/syncer"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// Condition reasons (besides the linkconfig ones about Secrets and the spec).
const (
	ReasonLive                = "Live"
	ReasonInitializing        = "Initializing"
	ReasonRepairing           = "Repairing"
	ReasonDegradedPoll        = "DegradedPoll"
	ReasonSuspended           = "Suspended"
	ReasonUnauthorized        = "Unauthorized"
	ReasonUnsupported         = "Unsupported"
	ReasonEndpointUnreachable = "EndpointUnreachable"
	ReasonRepairFailed        = "RepairFailed"
	ReasonDeadLetters         = "DeadLetters"
	ReasonHealthy             = "Healthy"
	ReasonConverged           = "Converged"
	ReasonReconcilePending    = "ReconcilePending"
	ReasonNotYetCompared      = "NotYetCompared"
	ReasonDiverged            = "Diverged"
	ReasonEngineNotRunning    = "EngineNotRunning"
	ReasonEngineRejected      = "EngineRejected"
	ReasonCheckpointsNotSaved = "CheckpointsNotSaved"
)

// DegradedPollEvery is how often a degraded_poll link polls: fixed by the engine, not
// spec.pollInterval (which applies to poll-mode links only).
var DegradedPollEvery = func() string {
	t := linkstate.DefaultTiming()
	return fmt.Sprintf("%v-%v", t.DegradedPollBase, t.DegradedPollBase+t.DegradedPollJitter)
}()

// Inputs is what the status needs besides the snapshot.
type Inputs struct {
	Generation int64
	Now        time.Time
	Direction  v1alpha1.Direction
	// Mode is the link's spec.mode ("" = live); it only shapes the Ready message.
	Mode      v1alpha1.Mode
	Suspended bool
	// Remote names the remote endpoint in messages.
	Remote string
}

// InputsFor reads the inputs of FromSnapshot off a link, the same way for the operator and for
// `dwnsync run`.
func InputsFor(link *v1alpha1.ReplicationLink, now time.Time) Inputs {
	return Inputs{Generation: link.Generation, Now: now, Direction: link.Spec.Direction, Mode: link.Spec.Mode,
		Suspended: link.Spec.Suspend, Remote: link.Spec.Endpoint}
}

// FromSnapshot computes the link's status from the engine's snapshot, keeping the condition
// transition times of cur where a condition did not change.
func FromSnapshot(cur v1alpha1.ReplicationLinkStatus, snap syncer.LinkStatus, in Inputs) v1alpha1.ReplicationLinkStatus {
	s := v1alpha1.ReplicationLinkStatus{
		ObservedGeneration: in.Generation,
		Phase:              apiPhase(snap.Phase),
		NeedsReconcile:     snap.NeedsReconcile,
		Connectivity:       apiConnectivity(snap.Connectivity),
		Dialect:            snap.Dialect,
		LinkKey:            snap.Key,
		LastReconcileTime:  timeOrNil(snap.LastReconcileTime),
		LastConvergedTime:  timeOrNil(snap.LastConvergedTime),
		RepairAttempts:     int32(snap.RepairAttempts),
		DeadLetters:        int32(snap.DeadLetters),
		LastError:          snap.LastError,
		Conditions:         cloneConditions(cur.Conditions),
	}
	if in.Direction != v1alpha1.DirectionPush {
		s.Pull = direction(snap.Pull)
	}
	if in.Direction != v1alpha1.DirectionPull {
		s.Push = direction(snap.Push)
	}
	if snap.Progress.Applied > 0 || snap.Progress.Total > 0 {
		// The engine keeps the figures of the latest pass that copied something (the
		// bootstrap, typically): applied < total while it runs.
		s.Progress = &v1alpha1.Progress{Applied: snap.Progress.Applied, Total: snap.Progress.Total,
			Summary: ProgressSummary(snap.Progress.Applied, snap.Progress.Total)}
		// Still copying: a pass that ended leaves applied < total for good when a listed
		// message turned out superseded, but then no reconcile is due.
		copying := snap.Progress.Total > snap.Progress.Applied && snap.NeedsReconcile
		sampleRate(cur.Progress, s.Progress, copying, in.Now)
		s.Progress.Summary = ProgressCell(s.Progress) // the rate changes at most every RateSampleEvery
	}
	now := metav1.NewTime(in.Now.UTC().Truncate(time.Second))
	set := func(c metav1.Condition) {
		c.ObservedGeneration = in.Generation
		c.LastTransitionTime = now
		meta.SetStatusCondition(&s.Conditions, c)
	}
	set(ready(snap, in))
	set(converged(snap))
	set(degraded(snap))
	return s
}

// WithProblem returns cur with Ready=False for a problem that keeps the engine from running the
// link as specified (Secret missing, engine refused it, ...). The rest of the status is kept.
func WithProblem(cur v1alpha1.ReplicationLinkStatus, generation int64, now time.Time, reason, message string) v1alpha1.ReplicationLinkStatus {
	s := *cur.DeepCopy()
	s.ObservedGeneration = generation
	meta.SetStatusCondition(&s.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: message,
		ObservedGeneration: generation, LastTransitionTime: metav1.NewTime(now.UTC().Truncate(time.Second)),
	})
	return s
}

func ready(snap syncer.LinkStatus, in Inputs) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse}
	switch snap.Phase {
	case linkstate.Live:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonLive, replicatingMessage(in)
		return c
	case linkstate.Paused:
		c.Reason, c.Message = ReasonSuspended, "spec.suspend is true: set it to false to resume from the checkpoints"
		return c
	}
	if reason, msg := classify(snap, in.Remote); reason != "" {
		c.Reason, c.Message = reason, msg
		return c
	}
	switch snap.Phase {
	case linkstate.DegradedPoll:
		// Not Ready: the feeds failed repeatedly and whatever broke them (a key, a server) is
		// still broken until a repair succeeds; the fallback poll only keeps trying.
		c.Reason = ReasonRepairFailed
		c.Message = fmt.Sprintf("%d repairs failed; polling every %s until one succeeds; last error: %s", snap.RepairAttempts, DegradedPollEvery, orNone(firstError(snap)))
	case linkstate.Repairing:
		c.Reason, c.Message = ReasonRepairing, "re-reading the feeds from the checkpoints after a gap or an error; see status.progress"
	default:
		c.Reason, c.Message = ReasonInitializing, "bootstrapping: copying what the other server lacks; see status.progress"
	}
	return c
}

// replicatingMessage says how a healthy link moves messages, in its direction and mode.
func replicatingMessage(in Inputs) string {
	way, feeds := "both ways", "both servers' feeds"
	switch in.Direction {
	case v1alpha1.DirectionPull:
		way, feeds = "from the remote to the local server", "the remote server's feed"
	case v1alpha1.DirectionPush:
		way, feeds = "from the local to the remote server", "the local server's feed"
	}
	if in.Mode == v1alpha1.ModePoll {
		return "replicating " + way + " by comparing both servers every spec.pollInterval"
	}
	return "replicating " + way + " as writes happen (subscribed to " + feeds + ")"
}

// converged reflects the latest reconcile only: an old success does not hide a newer compare
// that found differences (the engine stamps both times with the same instant on success).
func converged(snap syncer.LinkStatus) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionConverged}
	switch {
	case snap.NeedsReconcile:
		c.Status, c.Reason = metav1.ConditionFalse, ReasonReconcilePending
		c.Message = "a comparison of both servers is due (after a gap, a restart or an error)"
	case snap.LastConvergedTime.IsZero() && snap.LastReconcileTime.IsZero():
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, ReasonNotYetCompared, "the servers have not been compared yet"
	case snap.LastConvergedTime.Before(snap.LastReconcileTime):
		c.Status, c.Reason = metav1.ConditionFalse, ReasonDiverged
		c.Message = "the latest reconcile (status.lastReconcileTime) left differences or failed; it is retried. Last error: " + orNone(firstError(snap))
	default:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonConverged
		c.Message = "the latest reconcile found nothing left to copy (status.lastConvergedTime)"
		if snap.DeadLetters > 0 {
			c.Message += fmt.Sprintf("; but %d messages were dead-lettered (status.deadLetters): the link's Events say which and why", snap.DeadLetters)
		}
	}
	return c
}

func degraded(snap syncer.LinkStatus) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionDegraded, Status: metav1.ConditionTrue}
	switch {
	case snap.CheckpointsNotSaved != "":
		// First: it concerns every link, and a restart while it lasts costs re-copying.
		c.Reason = ReasonCheckpointsNotSaved
		c.Message = "the ledger cannot save checkpoints (free space or fix the --state-dir volume); replication goes on, " +
			"the checkpoints are kept in memory and retried, and a restart meanwhile resumes from older ones (messages are re-copied, not lost). Error: " + snap.CheckpointsNotSaved
	case snap.Phase == linkstate.DegradedPoll:
		c.Reason = ReasonDegradedPoll
		c.Message = fmt.Sprintf("%d repairs failed; polling every %s until a repair succeeds. Last error: %s", snap.RepairAttempts, DegradedPollEvery, orNone(snap.LastError))
	case snap.RepairAttempts > 0 && snap.LastError != "":
		c.Reason = ReasonRepairFailed
		c.Message = "a repair failed and will be retried; last error: " + snap.LastError
	case snap.DeadLetters > 0:
		c.Reason = ReasonDeadLetters
		c.Message = "some messages were given up on (count in status.deadLetters); see the link's Events for which and why"
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonHealthy, "no failed repairs or dead letters"
	}
	return c
}

// classify names an actionable reason for a link that is not running well, from its
// connectivity and the kind of its last error (the DWN client's typed dwn.ErrorKind, carried
// through the engine): never from words in the error text, which also holds URLs and ports.
func classify(snap syncer.LinkStatus, remote string) (string, string) {
	switch {
	case snap.LastErrorKind == string(dwn.Unauthorized):
		return ReasonUnauthorized, "a server refused the signer: check that the Secret's did is the tenant or holds Messages grants on both servers (Secret key grants); last error: " + firstError(snap)
	case snap.LastErrorKind == string(dwn.Unsupported):
		return ReasonUnsupported, fmt.Sprintf("a server lacks a method or feature the link needs: check spec.dialect and the server versions; last error: %s", firstError(snap))
	case snap.Connectivity == linkstate.Offline:
		return ReasonEndpointUnreachable, fmt.Sprintf("cannot reach %s (retrying); check the URL and the network; last error: %s", remote, orNone(firstError(snap)))
	case snap.Phase == linkstate.Repairing && snap.RepairAttempts > 0 && snap.LastError != "":
		return ReasonRepairFailed, "repair failed and will be retried; last error: " + snap.LastError
	}
	return "", ""
}

// Significant reports whether a and b differ in more than counters, checkpoints, progress and
// times: such a change is written to the API server at once; counter changes are coalesced.
func Significant(a, b v1alpha1.ReplicationLinkStatus) bool {
	return !equality.Semantic.DeepEqual(shape(a), shape(b))
}

// Equal reports whether writing b over a would change anything.
func Equal(a, b v1alpha1.ReplicationLinkStatus) bool { return equality.Semantic.DeepEqual(a, b) }

func shape(s v1alpha1.ReplicationLinkStatus) v1alpha1.ReplicationLinkStatus {
	c := *s.DeepCopy()
	for _, d := range []*v1alpha1.DirectionStatus{c.Pull, c.Push} {
		if d != nil {
			d.Applied, d.Pending, d.Checkpoint, d.LastEventTime = 0, 0, "", nil
		}
	}
	c.Progress, c.LastReconcileTime, c.LastConvergedTime = nil, nil, nil
	// Condition messages count: they carry the error or the Secret key to fix, never counters.
	for i := range c.Conditions {
		c.Conditions[i].LastTransitionTime = metav1.Time{}
	}
	return c
}

func direction(d syncer.DirectionStatus) *v1alpha1.DirectionStatus {
	return &v1alpha1.DirectionStatus{
		Checkpoint:    d.Checkpoint,
		Applied:       d.Applied,
		Pending:       int64(d.Pending),
		LastEventTime: timeOrNil(d.LastEventTime),
		LastError:     d.LastError,
	}
}

func timeOrNil(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

func cloneConditions(in []metav1.Condition) []metav1.Condition {
	if in == nil {
		return nil
	}
	return append([]metav1.Condition(nil), in...)
}

func firstError(snap syncer.LinkStatus) string {
	for _, e := range []string{snap.LastError, snap.Pull.LastError, snap.Push.LastError} {
		if e != "" {
			return e
		}
	}
	return ""
}

// apiPhase is the one mapping of the engine's phase to the API's.
func apiPhase(p linkstate.Phase) v1alpha1.Phase {
	switch p {
	case linkstate.Initializing:
		return v1alpha1.PhaseInitializing
	case linkstate.Live:
		return v1alpha1.PhaseLive
	case linkstate.Repairing:
		return v1alpha1.PhaseRepairing
	case linkstate.DegradedPoll:
		return v1alpha1.PhaseDegradedPoll
	case linkstate.Paused:
		return v1alpha1.PhasePaused
	}
	return v1alpha1.Phase(p) // a phase this build does not know (an older ledger's): shown as is
}

// apiConnectivity maps the engine's connectivity to the API's ("" is unknown).
func apiConnectivity(c linkstate.Connectivity) v1alpha1.Connectivity {
	switch c {
	case linkstate.Online:
		return v1alpha1.ConnectivityOnline
	case linkstate.Offline:
		return v1alpha1.ConnectivityOffline
	}
	return v1alpha1.ConnectivityUnknown
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// ProgressSummary is "applied/total", or applied alone when the dialect cannot tell the total.
func ProgressSummary(applied, total int64) string {
	if total <= 0 {
		return strconv.FormatInt(applied, 10)
	}
	return strconv.FormatInt(applied, 10) + "/" + strconv.FormatInt(total, 10)
}
