package controllers_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/operator"
)

func keyOf(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

func equalStatus(a, b v1alpha1.ReplicationLinkStatus) bool { return equality.Semantic.DeepEqual(a, b) }

// startReconciler runs a manager limited to ns with the reconciler on engine; it stops when
// the test ends.
func startReconciler(t *testing.T, ns string, engine controllers.LinkEngine, tune func(*controllers.ReplicationLinkReconciler)) *controllers.ReplicationLinkReconciler {
	t.Helper()
	return startReconcilerWith(t, cfg, ns, engine, tune)
}

// startReconcilerWith is startReconciler talking to the API server through restCfg.
func startReconcilerWith(t testing.TB, restCfg *rest.Config, ns string, engine controllers.LinkEngine, tune func(*controllers.ReplicationLinkReconciler)) *controllers.ReplicationLinkReconciler {
	t.Helper()
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 operator.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.CacheOptions([]string{ns}),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &controllers.ReplicationLinkReconciler{
		Client:   mgr.GetClient(),
		Engine:   engine,
		Recorder: mgr.GetEventRecorder("dwnsync-operator"),
		Defaults: linkconfig.Defaults{LocalEndpoint: "http://local.dwn.test:3000"},
	}
	if tune != nil {
		tune(r)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	runUntilStopped(t, "manager", 30*time.Second, mgr.Start)
	return r
}

// runUntilStopped runs start in the background until the returned stop is called or the test
// ends (whichever is first; stop is idempotent). stop cancels start's context and waits up to
// within for it to return, reporting its error or its hang under name.
func runUntilStopped(t testing.TB, name string, within time.Duration, start func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- start(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(within):
			t.Errorf("%s did not stop within %v", name, within)
		}
	}
	t.Cleanup(stop)
	return stop
}

// signerSecret is a valid signer Secret for a fresh identity; it returns the identity's DID.
func signerSecret(t testing.TB, ns, name string) (*corev1.Secret, string) {
	t.Helper()
	s, jwk, err := msg.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	return labelledSignerSecret(ns, name, s.DID, jwk), s.DID
}

// labelledSignerSecret is the signer Secret ns/name of did, labelled for the operator's cache.
func labelledSignerSecret(ns, name, did string, privateJWK []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{controllers.SignerLabel: "true"}},
		Data:       map[string][]byte{"did": []byte(did), "privateJwk": privateJWK},
	}
}

// createTenantLink creates the Secret "<name>-signer" of a new tenant and the link name of that
// tenant to remote; it returns the tenant's DID.
func createTenantLink(t *testing.T, ns, name string) (did string) {
	t.Helper()
	secret, did := signerSecret(t, ns, name+"-signer")
	if err := k8sClient.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(context.Background(), newLink(ns, name, did, remote, name+"-signer")); err != nil {
		t.Fatal(err)
	}
	return did
}

func newLink(ns, name, tenant, endpoint, secret string) *v1alpha1.ReplicationLink {
	return &v1alpha1.ReplicationLink{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ReplicationLinkSpec{Tenant: tenant, Endpoint: endpoint,
			Signer: v1alpha1.SignerSpec{SecretRef: v1alpha1.SecretReference{Name: secret}}},
	}
}

func getLink(t *testing.T, ns, name string) *v1alpha1.ReplicationLink {
	t.Helper()
	l := &v1alpha1.ReplicationLink{}
	if err := k8sClient.Get(context.Background(), keyOf(ns, name), l); err != nil {
		t.Fatalf("get %s/%s: %v", ns, name, err)
	}
	return l
}

// readyIs waits until the link's Ready condition has status and reason; it returns the link.
func readyIs(t *testing.T, ns, name string, status metav1.ConditionStatus, reason string, within time.Duration) *v1alpha1.ReplicationLink {
	t.Helper()
	var l *v1alpha1.ReplicationLink
	eventually(t, within, "Ready="+string(status)+"/"+reason+" on "+name, func() (bool, string) {
		l = &v1alpha1.ReplicationLink{}
		if err := k8sClient.Get(context.Background(), keyOf(ns, name), l); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil {
			return false, "no Ready condition; phase " + string(l.Status.Phase)
		}
		return c.Status == status && c.Reason == reason, string(c.Status) + "/" + c.Reason + ": " + c.Message
	})
	return l
}

// eventsAbout lists the Kubernetes Events about a link (events.k8s.io and core alike).
func eventsAbout(t *testing.T, ns, name string) []corev1.Event {
	t.Helper()
	var list corev1.EventList
	if err := k8sClient.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.Namespace == ns && e.InvolvedObject.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// recorded lists the reasons of the Events about a link.
func recorded(t *testing.T, ns, name string) []string {
	t.Helper()
	var out []string
	for _, e := range eventsAbout(t, ns, name) {
		out = append(out, e.Reason)
	}
	return out
}

// eventNotes lists the messages of the Events about a link.
func eventNotes(t *testing.T, ns, name string) []string {
	t.Helper()
	var out []string
	for _, e := range eventsAbout(t, ns, name) {
		out = append(out, e.Message)
	}
	return out
}

// updateLink applies edit to the latest version of a link, retrying on conflicts (the
// reconciler writes the same object).
func updateLink(t *testing.T, ns, name string, edit func(*v1alpha1.ReplicationLink)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l := &v1alpha1.ReplicationLink{}
		if err := k8sClient.Get(context.Background(), keyOf(ns, name), l); err != nil {
			return err
		}
		edit(l)
		return k8sClient.Update(context.Background(), l)
	})
	if err != nil {
		t.Fatalf("update %s/%s: %v", ns, name, err)
	}
}
