package controllers_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/syncer"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

const remote = "https://remote.dwn.test"

// Secret + link → finalizer, engine.Apply with the resolved config, status from the engine's
// snapshot (initializing, then live on an engine event), Events; delete → engine.Remove and
// the finalizer goes.
func TestReconcilerLifecycle(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	eng := newFakeEngine()
	startReconciler(t, ns, eng, nil)

	secret, did := signerSecret(t, ns, "alice-signer")
	if err := k8sClient.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	link := newLink(ns, "alice", did, remote, "alice-signer")
	if err := k8sClient.Create(ctx, link); err != nil {
		t.Fatal(err)
	}
	l := readyIs(t, ns, "alice", metav1.ConditionFalse, "Initializing", 20*time.Second)
	if !controllerutil.ContainsFinalizer(l, controllers.FinalizerName) {
		t.Fatalf("finalizer missing: %v", l.Finalizers)
	}
	key, _ := ledger.LinkKey(did, remote, linkconfig.Scope(&l.Spec))
	cfg, applies := eng.config(key)
	if applies != 1 || cfg.Name != ns+"/alice" || cfg.LocalEndpoint != "http://local.dwn.test:3000" || cfg.RemoteEndpoint != remote ||
		cfg.LocalSigner == nil || cfg.LocalSigner.DID != did || cfg.Direction != linkstate.Both || cfg.PollInterval != 2*time.Minute {
		t.Fatalf("engine got applies=%d cfg=%+v", applies, cfg)
	}
	if l.Status.Phase != v1alpha1.PhaseInitializing || l.Status.LinkKey != key || l.Status.ObservedGeneration != l.Generation {
		t.Fatalf("status %+v", l.Status)
	}

	eng.update(key, "link:status-change", func(s *syncer.LinkStatus) {
		s.Phase, s.Connectivity, s.NeedsReconcile, s.Dialect = "live", "online", false, "web5"
		s.LastConvergedTime = time.Now()
	})
	l = readyIs(t, ns, "alice", metav1.ConditionTrue, "Live", 20*time.Second)
	if l.Status.Connectivity != "online" || l.Status.Dialect != "web5" || !meta.IsStatusConditionTrue(l.Status.Conditions, v1alpha1.ConditionConverged) {
		t.Fatalf("status %+v", l.Status)
	}
	eventually(t, 20*time.Second, "Events Initializing, Live, Converged", func() (bool, string) {
		ev := recorded(t, ns, "alice")
		return slices.Contains(ev, "Live") && slices.Contains(ev, "Converged") && slices.Contains(ev, "Initializing"), strings.Join(ev, ",")
	})

	// A dead letter: a Warning Event with the engine's reason, and Degraded=True.
	eng.update(key, "link:status-change", func(s *syncer.LinkStatus) { s.DeadLetters = 1 })
	eng.publish(syncer.Event{Key: key, Type: "dead-letter", Reason: "Invalid", Message: "bafy123 refused by " + remote + ": cid-mismatch"})
	eventually(t, 20*time.Second, "a DeadLetter Event and Degraded=True", func() (bool, string) {
		ev := recorded(t, ns, "alice")
		c := meta.FindStatusCondition(getLink(t, ns, "alice").Status.Conditions, v1alpha1.ConditionDegraded)
		return slices.Contains(ev, "DeadLetter") && c != nil && c.Status == metav1.ConditionTrue && c.Reason == "DeadLetters", strings.Join(ev, ",")
	})

	if err := k8sClient.Delete(ctx, l); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "link deleted after the finalizer ran", func() (bool, string) {
		err := k8sClient.Get(ctx, keyOf(ns, "alice"), &v1alpha1.ReplicationLink{})
		return apierrors.IsNotFound(err), errString(err)
	})
	if got := eng.removedKeys(); !slices.Equal(got, []string{key}) {
		t.Fatalf("engine.Remove calls %q, want [%s]", got, key)
	}
}

// Missing and malformed signer Secrets give Ready=False with a reason naming the Secret and
// the key; fixing the Secret starts the link without touching the ReplicationLink.
func TestReconcilerSignerSecretProblems(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	eng := newFakeEngine()
	startReconciler(t, ns, eng, nil)

	good, did := signerSecret(t, ns, "bob-signer")
	if err := k8sClient.Create(ctx, newLink(ns, "bob", did, remote, "bob-signer")); err != nil {
		t.Fatal(err)
	}
	l := readyIs(t, ns, "bob", metav1.ConditionFalse, "SignerSecretMissing", 20*time.Second)
	msg := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady).Message
	if !strings.Contains(msg, ns+"/bob-signer") || !strings.Contains(msg, "privateJwk") {
		t.Fatalf("message does not name the Secret and its keys: %s", msg)
	}
	t.Logf("missing Secret: %s", msg)
	if len(eng.keys()) != 0 {
		t.Fatal("engine got a link without a signer")
	}

	bad := good.DeepCopy()
	bad.Data["privateJwk"] = []byte("not json")
	if err := k8sClient.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	l = readyIs(t, ns, "bob", metav1.ConditionFalse, "SignerSecretInvalid", 20*time.Second)
	msg = meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady).Message
	if !strings.Contains(msg, ns+"/bob-signer") || !strings.Contains(msg, `"privateJwk"`) {
		t.Fatalf("message does not name the Secret and key: %s", msg)
	}
	t.Logf("malformed Secret: %s", msg)

	// A did that does not match the key is refused too, naming the key.
	other, _ := signerSecret(t, ns, "x")
	fix := &corev1.Secret{}
	if err := k8sClient.Get(ctx, keyOf(ns, "bob-signer"), fix); err != nil {
		t.Fatal(err)
	}
	fix.Data["privateJwk"] = other.Data["privateJwk"]
	if err := k8sClient.Update(ctx, fix); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "mismatched key refused", func() (bool, string) {
		c := meta.FindStatusCondition(getLink(t, ns, "bob").Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Reason == "SignerSecretInvalid" && strings.Contains(c.Message, "different DID"), c.Message
	})

	fix.Data["privateJwk"] = good.Data["privateJwk"]
	if err := k8sClient.Update(ctx, fix); err != nil {
		t.Fatal(err)
	}
	readyIs(t, ns, "bob", metav1.ConditionFalse, "Initializing", 20*time.Second)
	if len(eng.keys()) != 1 {
		t.Fatalf("engine links %v", eng.keys())
	}
	eventually(t, 20*time.Second, "a SignerSecretMissing Event", func() (bool, string) {
		ev := recorded(t, ns, "bob")
		return slices.Contains(ev, "SignerSecretMissing") && slices.Contains(ev, "SignerSecretInvalid"), strings.Join(ev, ",")
	})
}

// Mutable fields reach the engine as a new config for the same key (the engine keeps the
// checkpoints); suspend → paused and back.
func TestReconcilerMutableSpecAndSuspend(t *testing.T) {
	ns := newNamespace(t)
	eng := newFakeEngine()
	startReconciler(t, ns, eng, nil)
	createTenantLink(t, ns, "carol")
	l := readyIs(t, ns, "carol", metav1.ConditionFalse, "Initializing", 20*time.Second)
	key := l.Status.LinkKey

	updateLink(t, ns, "carol", func(l *v1alpha1.ReplicationLink) {
		l.Spec.Mode, l.Spec.PollInterval, l.Spec.Direction = v1alpha1.ModePoll, &metav1.Duration{Duration: 45 * time.Second}, v1alpha1.DirectionPull
	})
	eventually(t, 20*time.Second, "the engine gets the new mode", func() (bool, string) {
		cfg, n := eng.config(key)
		return n == 2 && cfg.Mode == linkstate.ModePoll && cfg.PollInterval == 45*time.Second && cfg.Direction == linkstate.PullOnly, cfg.Name
	})

	updateLink(t, ns, "carol", func(l *v1alpha1.ReplicationLink) { l.Spec.Suspend = true })
	l = readyIs(t, ns, "carol", metav1.ConditionFalse, "Suspended", 20*time.Second)
	if l.Status.Phase != v1alpha1.PhasePaused || l.Status.Push != nil {
		t.Fatalf("suspended link: phase %q push %+v (a pull link has no push status)", l.Status.Phase, l.Status.Push)
	}
	updateLink(t, ns, "carol", func(l *v1alpha1.ReplicationLink) { l.Spec.Suspend = false })
	readyIs(t, ns, "carol", metav1.ConditionFalse, "Initializing", 20*time.Second)
	if _, n := eng.config(key); n != 4 {
		t.Fatalf("applies %d, want 4 (create, mode, suspend, resume)", n)
	}
	if len(eng.keys()) != 1 {
		t.Fatalf("a spec change created another engine link: %v", eng.keys())
	}
}

// Two links for the same tenant, endpoint and scope: the second is refused with a reason.
func TestReconcilerDuplicateLink(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	eng := newFakeEngine()
	startReconciler(t, ns, eng, nil)
	secret, did := signerSecret(t, ns, "dave-signer")
	if err := k8sClient.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(ctx, newLink(ns, "dave", did, remote, "dave-signer")); err != nil {
		t.Fatal(err)
	}
	readyIs(t, ns, "dave", metav1.ConditionFalse, "Initializing", 20*time.Second)
	if err := k8sClient.Create(ctx, newLink(ns, "dave-again", did, remote, "dave-signer")); err != nil {
		t.Fatal(err)
	}
	l := readyIs(t, ns, "dave-again", metav1.ConditionFalse, "DuplicateLink", 20*time.Second)
	t.Logf("duplicate: %s", meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady).Message)

	// Deleting the duplicate must not stop the original's engine link.
	if err := k8sClient.Delete(ctx, l); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "duplicate deleted", func() (bool, string) {
		err := k8sClient.Get(ctx, keyOf(ns, "dave-again"), &v1alpha1.ReplicationLink{})
		return apierrors.IsNotFound(err), errString(err)
	})
	if r := eng.removedKeys(); len(r) != 0 {
		t.Fatalf("deleting the duplicate removed %v from the engine", r)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
