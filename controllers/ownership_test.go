package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
)

// Unreachable servers: the engine runs the links (and keeps their ledger records) without
// replicating anything, which is all these tests look at.
const (
	nowhereLocal  = "http://127.0.0.1:9"
	nowhereRemote = "http://127.0.0.1:7"
)

// createNamespace creates a namespace with a chosen name (names order the informer's first list).
func createNamespace(t *testing.T, name string) string {
	t.Helper()
	if err := k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// createSignedLink creates a link to nowhereRemote for tenant and a signer Secret of its own.
func createSignedLink(t *testing.T, ns, name, tenant string) *v1alpha1.ReplicationLink {
	t.Helper()
	secret, _ := signerSecret(t, ns, name+"-signer")
	if err := k8sClient.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	link := newLink(ns, name, tenant, nowhereRemote, name+"-signer")
	if err := k8sClient.Create(context.Background(), link); err != nil {
		t.Fatal(err)
	}
	return link
}

// runsKey waits until the operator's engine runs key for the link ns/name and its ledger record
// names that link's UID as the owner.
func runsKey(t *testing.T, run *runningOperator, key, ns, name string) {
	t.Helper()
	uid := getLink(t, ns, name).UID
	eventually(t, 30*time.Second, ns+"/"+name+" running "+key, func() (bool, string) {
		snap, running := run.op.Engine().Snapshot(key)
		rec, found, err := run.op.LedgerRecord(key)
		seen := fmt.Sprintf("engine runs %q (%v); record found=%v owner=%q err=%v", snap.Name, running, found, rec.OwnerUID, err)
		return running && snap.Name == ns+"/"+name && found && rec.OwnerUID == string(uid), seen
	})
}

// refusedAsDuplicate waits for Ready=False/DuplicateLink on ns/name and checks that neither the
// status nor the Events name anything of the other namespace.
func refusedAsDuplicate(t *testing.T, ns, name, otherNS, otherName string) {
	t.Helper()
	l := readyIs(t, ns, name, metav1.ConditionFalse, "DuplicateLink", 30*time.Second)
	msg := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady).Message
	if !strings.Contains(msg, "another ReplicationLink already replicates this tenant, endpoint and scope") {
		t.Errorf("refusal: %s", msg)
	}
	var notes []string
	eventually(t, 20*time.Second, "a DuplicateLink Event on "+name, func() (bool, string) {
		notes = eventNotes(t, ns, name)
		return len(notes) > 0, ""
	})
	for _, text := range append(notes, msg) {
		if strings.Contains(text, otherNS) || strings.Contains(text, otherName) {
			t.Errorf("%s/%s is told about %s/%s: %s", ns, name, otherNS, otherName, text)
		}
	}
}

// Links in two namespaces claim one tenant, endpoint and scope. The oldest runs it, with its UID
// in the ledger record: a later squatter is refused without learning the owner's name, and
// deleting it leaves the owner running with its record; across a restart the owner stays the
// owner whatever is reconciled first; when the owner is deleted the next-oldest takes over.
func TestOldestLinkOwnsItsKeyAcrossNamespaces(t *testing.T) {
	ctx := context.Background()
	base := newNamespace(t)
	nsOwner := createNamespace(t, "z-"+base) // listed after the squatter's namespace
	nsSquat := createNamespace(t, "a-"+base)
	stateDir := t.TempDir()
	counter := &applyCounter{base: http.DefaultTransport}
	run := startOperatorIn(t, []string{nsOwner, nsSquat}, nowhereLocal, stateDir, counter)

	_, tenant := signerSecret(t, nsOwner, "unused")
	owner := createSignedLink(t, nsOwner, "owner", tenant)
	key := waitKey(t, nsOwner, "owner")
	runsKey(t, run, key, nsOwner, "owner")

	// A squatter created later, in another namespace.
	youngerThan(t, getLink(t, nsOwner, "owner"))
	createSignedLink(t, nsSquat, "squatter", tenant)
	refusedAsDuplicate(t, nsSquat, "squatter", nsOwner, "owner")
	if err := k8sClient.Delete(ctx, getLink(t, nsSquat, "squatter")); err != nil {
		t.Fatal(err)
	}
	gone(t, nsSquat, "squatter")
	runsKey(t, run, key, nsOwner, "owner")

	// Restart with a new squatter waiting: its namespace is listed first, and still the owner
	// keeps the key.
	run.stop()
	createSignedLink(t, nsSquat, "claimant", tenant)
	run = startOperatorIn(t, []string{nsOwner, nsSquat}, nowhereLocal, stateDir, counter)
	refusedAsDuplicate(t, nsSquat, "claimant", nsOwner, "owner")
	runsKey(t, run, key, nsOwner, "owner")

	// The owner goes: the claimant takes the key over.
	if err := k8sClient.Delete(ctx, owner); err != nil {
		t.Fatal(err)
	}
	gone(t, nsOwner, "owner")
	runsKey(t, run, key, nsSquat, "claimant")
	eventually(t, 30*time.Second, "the claimant no longer refused", func() (bool, string) {
		c := meta.FindStatusCondition(getLink(t, nsSquat, "claimant").Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Reason != "DuplicateLink", fmt.Sprint(c)
	})
}

// waitKey waits for the link's status.linkKey.
func waitKey(t *testing.T, ns, name string) string {
	t.Helper()
	key := ""
	eventually(t, 30*time.Second, ns+"/"+name+" status.linkKey", func() (bool, string) {
		key = getLink(t, ns, name).Status.LinkKey
		return key != "", ""
	})
	return key
}

// youngerThan waits until a link created now is younger than l: creationTimestamp counts
// whole seconds.
func youngerThan(t *testing.T, l *v1alpha1.ReplicationLink) {
	t.Helper()
	eventually(t, 5*time.Second, "a second after "+l.Name+" was created", func() (bool, string) {
		return time.Now().After(l.CreationTimestamp.Add(time.Second)), ""
	})
}

func gone(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, 30*time.Second, ns+"/"+name+" deleted", func() (bool, string) {
		err := k8sClient.Get(context.Background(), keyOf(ns, name), &v1alpha1.ReplicationLink{})
		return apierrors.IsNotFound(err), errString(err)
	})
}
