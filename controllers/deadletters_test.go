package controllers_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// Dead letters in a cluster: the status lists them; the dwnsync.io/dead-letters annotation
// retries or clears them through the engine, goes away, and the outcome is in the status and an
// Event; a value the operator does not accept does nothing but say which ones it does.
func TestDeadLetterRequests(t *testing.T) {
	ns := newNamespace(t)
	eng := newFakeEngine()
	startReconciler(t, ns, eng, nil)
	did := createTenantLink(t, ns, "carol")
	l := readyIs(t, ns, "carol", metav1.ConditionFalse, "Initializing", 20*time.Second)
	key, _ := ledger.LinkKey(did, remote, linkconfig.Scope(&l.Spec))

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var ds []ledger.DeadLetter
	for i := range v1alpha1.MaxDeadLetterList + 2 {
		ds = append(ds, ledger.DeadLetter{CID: fmt.Sprintf("bafy%02d", i), Direction: linkstate.Push, Reason: "refused: 400", At: at.Add(time.Duration(i) * time.Minute)})
	}
	eng.addDeadLetters(key, ds...)
	l = statusShows(t, ns, "carol", "the newest 20 of 22 dead letters listed", func(s v1alpha1.ReplicationLinkStatus) bool {
		return s.DeadLetters == 22 && len(s.DeadLetterList) == v1alpha1.MaxDeadLetterList
	})
	first := l.Status.DeadLetterList[0]
	if first.CID != "bafy02" || first.Direction != "push" || first.Reason != "refused: 400" || !first.Since.Time.Equal(at.Add(2*time.Minute)) {
		t.Fatalf("first listed dead letter %+v, want bafy02 (the two oldest left out)", first)
	}

	request(t, ns, "carol", "retry:bafy05,bafy06", "r1")
	l = handled(t, ns, "carol", "r1")
	if a := l.Status.LastDeadLetterAction; a.Action != "retry" || a.Count != 2 || l.Status.DeadLetters != 20 {
		t.Fatalf("after retry of 2: action %+v, deadLetters %d", a, l.Status.DeadLetters)
	}
	eventNamed(t, ns, "carol", corev1.EventTypeNormal, "DeadLettersRetried", "bafy05")

	request(t, ns, "carol", "clear", "r2")
	l = handled(t, ns, "carol", "r2")
	if a := l.Status.LastDeadLetterAction; a.Action != "clear" || a.Count != 20 || l.Status.DeadLetters != 0 || len(l.Status.DeadLetterList) != 0 {
		t.Fatalf("after clear: action %+v, deadLetters %d, list %d", a, l.Status.DeadLetters, len(l.Status.DeadLetterList))
	}
	eventNamed(t, ns, "carol", corev1.EventTypeNormal, "DeadLettersCleared", "20 dead letter(s) cleared")

	request(t, ns, "carol", "wipe", "r3")
	l = handled(t, ns, "carol", "r3")
	if a := l.Status.LastDeadLetterAction; a.Action != "rejected" || a.Count != 0 || !strings.Contains(a.Message, `"retry:CID[,CID...]"`) {
		t.Fatalf("bad value: action %+v", a)
	}
	eventNamed(t, ns, "carol", corev1.EventTypeWarning, "DeadLetterRequestRejected", `"retry", "clear"`)
	if got := eng.deadLetterRequests(); !slices.Equal(got, []string{"retry bafy05,bafy06", "clear"}) {
		t.Fatalf("engine calls %q, want the retry and the clear only", got)
	}
}

// request sets the dead-letter annotations, as `dwnsync deadletters` does.
func request(t *testing.T, ns, name, value, id string) {
	t.Helper()
	updateLink(t, ns, name, func(l *v1alpha1.ReplicationLink) {
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[v1alpha1.AnnotationDeadLetters] = value
		l.Annotations[v1alpha1.AnnotationDeadLettersRequest] = id
	})
}

// handled waits for the outcome of request id in the status and for its annotations to go.
func handled(t *testing.T, ns, name, id string) *v1alpha1.ReplicationLink {
	t.Helper()
	var l *v1alpha1.ReplicationLink
	eventually(t, 20*time.Second, "request "+id+" handled and its annotations removed", func() (bool, string) {
		l = getLink(t, ns, name)
		a := l.Status.LastDeadLetterAction
		_, v := l.Annotations[v1alpha1.AnnotationDeadLetters]
		_, r := l.Annotations[v1alpha1.AnnotationDeadLettersRequest]
		return a != nil && a.RequestID == id && !v && !r, fmt.Sprintf("%+v %v", a, l.Annotations)
	})
	return l
}

func statusShows(t *testing.T, ns, name, what string, ok func(v1alpha1.ReplicationLinkStatus) bool) *v1alpha1.ReplicationLink {
	t.Helper()
	var l *v1alpha1.ReplicationLink
	eventually(t, 20*time.Second, what, func() (bool, string) {
		l = getLink(t, ns, name)
		return ok(l.Status), fmt.Sprintf("deadLetters %d, listed %d", l.Status.DeadLetters, len(l.Status.DeadLetterList))
	})
	return l
}

// eventNamed waits for an Event of type and reason whose message contains part.
func eventNamed(t *testing.T, ns, name, typ, reason, part string) {
	t.Helper()
	eventually(t, 20*time.Second, "a "+reason+" Event saying "+part, func() (bool, string) {
		var seen []string
		for _, e := range eventsAbout(t, ns, name) {
			if e.Type == typ && e.Reason == reason && strings.Contains(e.Message, part) {
				return true, ""
			}
			seen = append(seen, e.Reason+": "+e.Message)
		}
		return false, strings.Join(seen, " | ")
	})
}
