package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/controllers"
)

// holdFinalizer stands for another controller's finalizer: it keeps a deleted link visible.
const holdFinalizer = "test.dwnsync.io/hold"

// A link whose deletion got stuck (the engine could not stop it) and whose finalizer a person
// then removed by hand must still be stopped in the engine: whether the object disappears at
// once (NotFound) or another finalizer keeps it (deleting without ours).
func TestLinkDeletedWithoutOurFinalizerIsStopped(t *testing.T) {
	for _, held := range []bool{false, true} {
		name := "gone"
		if held {
			name = "held"
		}
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t)
			ctx := context.Background()
			eng := newFakeEngine()
			// The reconciler reads the API server directly, so what it sees after each step
			// below is that step's result, not a lagging cache.
			startReconciler(t, ns, eng, func(r *controllers.ReplicationLinkReconciler) { r.Client = k8sClient })
			secret, did := signerSecret(t, ns, "signer")
			if err := k8sClient.Create(ctx, secret); err != nil {
				t.Fatal(err)
			}
			link := newLink(ns, "orphan", did, remote, "signer")
			if held {
				link.Finalizers = []string{holdFinalizer}
			}
			if err := k8sClient.Create(ctx, link); err != nil {
				t.Fatal(err)
			}
			l := readyIs(t, ns, "orphan", metav1.ConditionFalse, "Initializing", 20*time.Second)
			key := l.Status.LinkKey

			// The engine cannot stop the link: the finalizer stays and deletion is stuck.
			eng.failRemoves(errors.New("engine busy"))
			if err := k8sClient.Delete(ctx, l); err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "a failed engine.Remove from the finalizer", func() (bool, string) {
				n := eng.removeCalls()
				return n >= 1, fmt.Sprint(n, " calls")
			})
			// A person unblocks the deletion by removing our finalizer.
			updateLink(t, ns, "orphan", func(l *v1alpha1.ReplicationLink) { controllerutil.RemoveFinalizer(l, controllers.FinalizerName) })
			eng.failRemoves(nil)
			if !held {
				eventually(t, 20*time.Second, "the link gone", func() (bool, string) {
					err := k8sClient.Get(ctx, keyOf(ns, "orphan"), &v1alpha1.ReplicationLink{})
					return apierrors.IsNotFound(err), errString(err)
				})
			}
			eventually(t, 20*time.Second, "engine.Remove of "+key, func() (bool, string) {
				got := eng.removedKeys()
				return slices.Equal(got, []string{key}), fmt.Sprintf("removed %q, engine runs %q", got, eng.keys())
			})
			if held {
				updateLink(t, ns, "orphan", func(l *v1alpha1.ReplicationLink) { controllerutil.RemoveFinalizer(l, holdFinalizer) })
			}
			// The key is free again: a new link for it starts instead of being a duplicate.
			again := newLink(ns, "again", did, remote, "signer")
			if err := k8sClient.Create(ctx, again); err != nil {
				t.Fatal(err)
			}
			readyIs(t, ns, "again", metav1.ConditionFalse, "Initializing", 20*time.Second)
		})
	}
}
