package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/status"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// A link the engine moved to degraded_poll because the remote refuses the signer is not Ready
// (reason Unauthorized), and the Event says how often it really polls: the engine's fixed
// interval, not spec.pollInterval.
func TestDegradedPollIsNotReadyAndItsEventNamesTheRealInterval(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	eng := newFakeEngine()
	startReconciler(t, ns, eng, nil)
	secret, did := signerSecret(t, ns, "frank-signer")
	if err := k8sClient.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	link := newLink(ns, "frank", did, remote, "frank-signer")
	link.Spec.PollInterval = &metav1.Duration{Duration: 45 * time.Second}
	if err := k8sClient.Create(ctx, link); err != nil {
		t.Fatal(err)
	}
	key := readyIs(t, ns, "frank", metav1.ConditionFalse, "Initializing", 20*time.Second).Status.LinkKey

	eng.update(key, "link:status-change", func(s *syncer.LinkStatus) {
		s.Phase, s.Connectivity, s.RepairAttempts, s.LastError = "degraded_poll", "online", 3, "subscribe: 401 Unauthorized"
		s.LastErrorKind = string(dwn.Unauthorized) // the reason comes from the kind, never the text
	})
	l := readyIs(t, ns, "frank", metav1.ConditionFalse, "Unauthorized", 20*time.Second)
	if c := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionDegraded); c == nil || c.Status != metav1.ConditionTrue || c.Reason != "DegradedPoll" {
		t.Fatalf("Degraded condition %+v", c)
	}
	var note string
	eventually(t, 20*time.Second, "a DegradedPoll Event", func() (bool, string) {
		var list corev1.EventList
		if err := k8sClient.List(ctx, &list); err != nil {
			return false, err.Error()
		}
		for _, e := range list.Items {
			if e.Namespace == ns && e.InvolvedObject.Name == "frank" && e.Reason == "DegradedPoll" {
				note = e.Message
				return true, note
			}
		}
		return false, "none yet"
	})
	if !strings.Contains(note, status.DegradedPollEvery) || strings.Contains(note, "45s") {
		t.Fatalf("DegradedPoll Event %q: want the engine's %s, not the link's pollInterval 45s", note, status.DegradedPollEvery)
	}
	t.Logf("Event: %s", note)
}
