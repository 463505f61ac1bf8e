package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
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

// createSameSecondPair creates two links of one key, each with its own signer Secret, in one
// second of creationTimestamp (retrying with new names until a pair lands in one second), and
// returns them lower UID first.
func createSameSecondPair(t *testing.T, ns string) (lo, hi *v1alpha1.ReplicationLink) {
	t.Helper()
	ctx := context.Background()
	for try := 0; try < 10; try++ {
		_, tenant := signerSecret(t, ns, "unused")
		var pair [2]*v1alpha1.ReplicationLink
		for i := range pair {
			name := fmt.Sprintf("l%d-%d", try, i)
			secret, _ := signerSecret(t, ns, name+"-signer")
			if err := k8sClient.Create(ctx, secret); err != nil {
				t.Fatal(err)
			}
			pair[i] = newLink(ns, name, tenant, "http://remote.dwn.test", name+"-signer")
		}
		for _, l := range pair {
			if err := k8sClient.Create(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		if pair[0].CreationTimestamp.Equal(&pair[1].CreationTimestamp) {
			if pair[1].UID < pair[0].UID {
				pair[0], pair[1] = pair[1], pair[0]
			}
			return pair[0], pair[1]
		}
	}
	t.Fatal("no two links created in one second in 10 tries")
	return nil, nil
}

// Of two links created in one second, the one recorded as the owner keeps the key. When it
// stops (its Secret is deleted) and its record goes, the other one owns the key: it must be
// reconciled then, not stay refused as a duplicate of a link that runs nothing.
func TestSameSecondClaimantTakesOverWhenTheOwnerStops(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	lo, hi := createSameSecondPair(t, ns)
	key, err := linkconfig.Key(hi)
	if err != nil {
		t.Fatal(err)
	}
	eng := newFakeEngine()
	eng.seed(key, ns+"/"+hi.Name, hi.UID) // hi ran the key first
	startReconciler(t, ns, eng, nil)
	readyIs(t, ns, lo.Name, metav1.ConditionFalse, "DuplicateLink", 30*time.Second)
	eventually(t, 30*time.Second, "the incumbent keeps the key", func() (bool, string) {
		_, applies := eng.config(key)
		return applies > 0 && eng.runner(key) == ns+"/"+hi.Name, "engine runs " + eng.runner(key)
	})

	if err := k8sClient.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: hi.Name + "-signer"}}); err != nil {
		t.Fatal(err)
	}
	readyIs(t, ns, hi.Name, metav1.ConditionFalse, linkconfig.ReasonSecretMissing, 30*time.Second)
	eventually(t, 30*time.Second, "the other link of that second runs the key", func() (bool, string) {
		return eng.runner(key) == ns+"/"+lo.Name && eng.Owner(key) == lo.UID, "engine runs " + eng.runner(key)
	})
	readyIs(t, ns, lo.Name, metav1.ConditionFalse, "Initializing", 30*time.Second)
}
