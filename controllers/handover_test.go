package controllers_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/internal/linkconfig"
)

// A younger link runs a key that an older link claims (the older one's namespace informer
// delivered it later, or the operator started watching its namespace), and the older link
// cannot run: its Secret is missing. The younger link is refused, and the engine must stop
// signing with its Secret: a status of DuplicateLink with its engine link still running would
// disagree with what happens. When the older link's Secret appears, the older link runs.
func TestRefusedLinkStopsTheEngineLinkItRan(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	olderSecret, tenant := signerSecret(t, ns, "older-signer")
	older := newLink(ns, "older", tenant, "http://remote.dwn.test", "older-signer")
	if err := k8sClient.Create(ctx, older); err != nil {
		t.Fatal(err)
	}
	youngerThan(t, older)
	youngerSecret, _ := signerSecret(t, ns, "younger-signer")
	if err := k8sClient.Create(ctx, youngerSecret); err != nil {
		t.Fatal(err)
	}
	younger := newLink(ns, "younger", tenant, "http://remote.dwn.test", "younger-signer")
	if err := k8sClient.Create(ctx, younger); err != nil {
		t.Fatal(err)
	}
	key, err := linkconfig.Key(younger)
	if err != nil {
		t.Fatal(err)
	}
	eng := newFakeEngine()
	eng.seed(key, ns+"/younger", younger.UID)
	startReconciler(t, ns, eng, nil)

	readyIs(t, ns, "older", metav1.ConditionFalse, linkconfig.ReasonSecretMissing, 30*time.Second)
	readyIs(t, ns, "younger", metav1.ConditionFalse, "DuplicateLink", 30*time.Second)
	eventually(t, 30*time.Second, "the refused link's engine link stopped", func() (bool, string) {
		name := eng.runner(key)
		return name == "", "engine runs " + name
	})

	if err := k8sClient.Create(ctx, olderSecret); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the older link runs the key", func() (bool, string) {
		name := eng.runner(key)
		return name == ns+"/older" && eng.Owner(key) == older.UID, "engine runs " + name
	})
}
