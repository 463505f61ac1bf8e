package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
)

// https://remote.dwn.test and HTTPS://Remote.dwn.test/ are one server: the second link is a
// duplicate of the first, not a second engine link with its own key.
func TestReconcilerDuplicateLinkInAnotherSpelling(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	eng := newFakeEngine()
	startReconciler(t, ns, eng, nil)
	secret, did := signerSecret(t, ns, "erin-signer")
	if err := k8sClient.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(ctx, newLink(ns, "erin", did, remote, "erin-signer")); err != nil {
		t.Fatal(err)
	}
	first := readyIs(t, ns, "erin", metav1.ConditionFalse, "Initializing", 20*time.Second)
	if err := k8sClient.Create(ctx, newLink(ns, "erin-slash", did, "HTTPS://Remote.dwn.test/", "erin-signer")); err != nil {
		t.Fatal(err)
	}
	l := readyIs(t, ns, "erin-slash", metav1.ConditionFalse, "DuplicateLink", 20*time.Second)
	if msg := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady).Message; !strings.Contains(msg, first.Status.LinkKey) {
		t.Fatalf("duplicate message does not name the shared key %s: %s", first.Status.LinkKey, msg)
	}
	if keys := eng.keys(); len(keys) != 1 || keys[0] != first.Status.LinkKey {
		t.Fatalf("engine links %q, want only %s", keys, first.Status.LinkKey)
	}
}
