package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/status"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// Engine event types that carry details the status does not keep; they become Kubernetes Events
// as they happen. Transitions visible in the status are recorded when the status is written.
var engineEventsToRecord = map[string]struct{ reason, action string }{
	syncer.EventDeadLetter:   {"DeadLetter", "Replicate"},
	syncer.EventRepairFailed: {"RepairFailed", "Repair"},
	syncer.EventGapDetected:  {"FeedGap", "Replicate"},
	// The ledger's volume is full or read-only: the Degraded condition says so too, but an
	// Event with the error reaches whoever watches Warnings.
	syncer.EventCheckpointsNotSaved: {"CheckpointsNotSaved", "Checkpoint"},
}

// pumpEngineEvents wakes the reconciler of the link each engine event is about, and records the
// events worth a person's attention. It runs next to the engine (on the leader only).
func (r *ReplicationLinkReconciler) pumpEngineEvents(ctx context.Context) error {
	events := r.Engine.Events()
	if l, ok := r.Engine.(eventLossReporter); ok {
		go r.wakeAllOnLoss(ctx, l.EventsLost())
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			nn, uid, ok := r.linkOfEvent(ev)
			if !ok {
				continue // a link being removed, or not reconciled yet
			}
			stub := linkStub(nn, uid)
			if rec, ok := engineEventsToRecord[ev.Type]; ok {
				r.event(stub, corev1.EventTypeWarning, rec.reason, rec.action, "%s", eventNote(ev))
			}
			select {
			case r.wake <- event.GenericEvent{Object: stub}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// linkStub names a link for the wake channel (the controller reads the object itself).
func linkStub(nn types.NamespacedName, uid types.UID) *v1alpha1.ReplicationLink {
	return &v1alpha1.ReplicationLink{ObjectMeta: metav1.ObjectMeta{Namespace: nn.Namespace, Name: nn.Name, UID: uid}}
}

// eventLossReporter is an engine that says when its event channel dropped events
// (syncer.Engine, and the operator's engine on the leader).
type eventLossReporter interface {
	EventsLost() <-chan struct{}
}

// wakeAllOnLoss reconciles every link this reconciler runs each time the engine reports lost
// events: a dropped event may have been a link's only word of a change (10,000 links going live
// at once overflow the channel), and without it that link's status would wait for an unrelated
// event. The signal coalesces (one pending at most), so a loss during a pass makes exactly one
// more pass; a pass writes only statuses that changed.
func (r *ReplicationLinkReconciler) wakeAllOnLoss(ctx context.Context, lost <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-lost:
		}
		r.mu.Lock()
		stubs := make([]*v1alpha1.ReplicationLink, 0, len(r.links))
		for nn, t := range r.links {
			stubs = append(stubs, linkStub(nn, t.uid))
		}
		r.mu.Unlock()
		r.resyncs.Add(1)
		for _, stub := range stubs {
			select {
			case r.wake <- event.GenericEvent{Object: stub}:
			case <-ctx.Done():
				return
			}
		}
	}
}

func eventNote(ev syncer.Event) string {
	note := ev.Message
	if note == "" {
		note = ev.Reason
	}
	if note == "" {
		note = ev.Type
	}
	return note
}

// recordTransitions records Kubernetes Events for what changed between two written statuses.
func (r *ReplicationLinkReconciler) recordTransitions(link *v1alpha1.ReplicationLink, old, cur v1alpha1.ReplicationLinkStatus) {
	if old.Phase != cur.Phase && cur.Phase != "" {
		from := string(old.Phase)
		if from == "" {
			from = "new"
		}
		switch cur.Phase {
		case v1alpha1.PhaseLive:
			r.event(link, corev1.EventTypeNormal, "Live", "Replicate", "link is live (was %s)", from)
		case v1alpha1.PhaseRepairing:
			r.event(link, corev1.EventTypeWarning, "Repairing", "Repair", "re-reading the feeds from their checkpoints (was %s); last error: %s", from, orNone(cur.LastError))
		case v1alpha1.PhaseDegradedPoll:
			r.event(link, corev1.EventTypeWarning, "DegradedPoll", "Repair", "%d repairs failed; polling every %s (not spec.pollInterval) until one succeeds; last error: %s", cur.RepairAttempts, status.DegradedPollEvery, orNone(cur.LastError))
		case v1alpha1.PhasePaused:
			r.event(link, corev1.EventTypeNormal, "Suspended", "Replicate", "link paused (spec.suspend is true); checkpoints kept")
		case v1alpha1.PhaseInitializing:
			r.event(link, corev1.EventTypeNormal, "Initializing", "Replicate", "link started: copying what each server lacks")
		}
	}
	if isTrue(cur.Conditions, v1alpha1.ConditionConverged) && !isTrue(old.Conditions, v1alpha1.ConditionConverged) {
		r.event(link, corev1.EventTypeNormal, "Converged", "Reconcile", "the latest reconcile found nothing left to copy in the link's direction(s)")
	}
	if c := meta.FindStatusCondition(cur.Conditions, v1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse {
		if o := meta.FindStatusCondition(old.Conditions, v1alpha1.ConditionReady); o == nil || o.Reason != c.Reason {
			if isInputProblem(c.Reason) {
				r.event(link, corev1.EventTypeWarning, c.Reason, "Configure", "%s", c.Message)
			}
		}
	}
}

func (r *ReplicationLinkReconciler) event(obj *v1alpha1.ReplicationLink, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, eventType, reason, action, note, args...)
	}
}

func isInputProblem(reason string) bool {
	switch reason {
	case linkconfig.ReasonSecretMissing, linkconfig.ReasonSecretInvalid, linkconfig.ReasonLocalEndpointMissing,
		linkconfig.ReasonInvalidSpec, ReasonDuplicateLink, "EngineRejected":
		return true
	}
	return false
}

func isTrue(conds []metav1.Condition, t string) bool {
	return meta.IsStatusConditionTrue(conds, t)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
