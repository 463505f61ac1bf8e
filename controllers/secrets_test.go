package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/linkconfig/secrettest"
)

// secretRequests records the operator's requests for Secrets.
type secretRequests struct {
	mu   sync.Mutex
	seen []string // "GET /api/v1/...?labelSelector=..."
}

// recordSecrets is a transport that records Secret requests in log.
type recordSecrets struct {
	log  *secretRequests
	base http.RoundTripper
}

func (rs recordSecrets) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/secrets") {
		rs.log.mu.Lock()
		rs.log.seen = append(rs.log.seen, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		rs.log.mu.Unlock()
	}
	return rs.base.RoundTrip(r)
}

func (s *secretRequests) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// The operator caches and reads only Secrets labelled dwnsync.io/signer=true: every request it
// makes for Secrets selects that label, an unlabelled Secret is never fetched, and a link that
// names one is told to label it.
func TestOnlyLabelledSecretsAreCachedOrRead(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	requests := &secretRequests{}
	counted := rest.CopyConfig(cfg)
	counted.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return recordSecrets{log: requests, base: rt} }
	eng := newFakeEngine()
	startReconcilerWith(t, counted, ns, eng, nil)

	labelled, did := signerSecret(t, ns, "labelled")
	unlabelled, other := signerSecret(t, ns, "unrelated")
	unlabelled.Labels = nil
	for _, s := range []*corev1.Secret{labelled, unlabelled} {
		if err := k8sClient.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := k8sClient.Create(ctx, newLink(ns, "good", did, remote, "labelled")); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(ctx, newLink(ns, "unlabelled", other, remote+"/other", "unrelated")); err != nil {
		t.Fatal(err)
	}
	readyIs(t, ns, "good", metav1.ConditionFalse, "Initializing", 20*time.Second)
	l := readyIs(t, ns, "unlabelled", metav1.ConditionFalse, "SignerSecretMissing", 20*time.Second)
	msg := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady).Message
	if !strings.Contains(msg, "kubectl label secret -n "+ns+" unrelated "+controllers.SignerLabel+"=true") {
		t.Errorf("the refusal does not say how to label the Secret: %s", msg)
	}

	seen := requests.list()
	t.Logf("Secret requests: %q", seen)
	if len(seen) == 0 {
		t.Fatal("no Secret requests seen: the counter is not in the path")
	}
	for _, r := range seen {
		q, _ := url.ParseQuery(r[strings.Index(r, "?")+1:])
		if q.Get("labelSelector") != controllers.SignerLabel+"=true" {
			t.Errorf("a Secret request without the signer label selector: %s", r)
		}
		if strings.Contains(r, "/secrets/unrelated") {
			t.Errorf("the unlabelled Secret was read: %s", r)
		}
	}
}

// Deleting a link's signer Secret stops the link (nothing signs with a deleted key) with
// Ready=False/SignerSecretMissing; re-creating the Secret starts it again.
func TestDeletedSecretStopsTheLink(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	eng := newFakeEngine()
	startReconciler(t, ns, eng, nil)
	secret, did := signerSecret(t, ns, "frank-signer")
	if err := k8sClient.Create(ctx, secret.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(ctx, newLink(ns, "frank", did, remote, "frank-signer")); err != nil {
		t.Fatal(err)
	}
	key := readyIs(t, ns, "frank", metav1.ConditionFalse, "Initializing", 20*time.Second).Status.LinkKey

	if err := k8sClient.Delete(ctx, secret); err != nil {
		t.Fatal(err)
	}
	readyIs(t, ns, "frank", metav1.ConditionFalse, "SignerSecretMissing", 20*time.Second)
	eventually(t, 20*time.Second, "the engine link stopped", func() (bool, string) {
		return len(eng.keys()) == 0 && slices.Equal(eng.removedKeys(), []string{key}), fmt.Sprintf("engine runs %q, removed %q", eng.keys(), eng.removedKeys())
	})
	eventually(t, 20*time.Second, "a Stopped Event", func() (bool, string) {
		ev := recorded(t, ns, "frank")
		return slices.Contains(ev, "Stopped"), strings.Join(ev, ",")
	})

	if err := k8sClient.Create(ctx, secret.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	readyIs(t, ns, "frank", metav1.ConditionFalse, "Initializing", 20*time.Second)
	if keys := eng.keys(); !slices.Equal(keys, []string{key}) {
		t.Fatalf("engine runs %q after the Secret came back, want [%s]", keys, key)
	}
}

// A Secret with did and privateJwk swapped: the status and the Events say which key looks wrong
// and hold no piece of the private key.
func TestSwappedSecretShowsNoKey(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	startReconciler(t, ns, newFakeEngine(), nil)
	secret, did := signerSecret(t, ns, "swapped")
	jwk := secret.Data["privateJwk"]
	secret.Data = map[string][]byte{"did": jwk, "privateJwk": []byte(did)}
	if err := k8sClient.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(ctx, newLink(ns, "swapped", did, remote, "swapped")); err != nil {
		t.Fatal(err)
	}
	l := readyIs(t, ns, "swapped", metav1.ConditionFalse, "SignerSecretInvalid", 20*time.Second)
	var notes []string
	eventually(t, 20*time.Second, "a SignerSecretInvalid Event", func() (bool, string) {
		notes = eventNotes(t, ns, "swapped")
		return len(notes) > 0, ""
	})
	status, _ := json.Marshal(l.Status)
	for _, text := range append(notes, string(status)) {
		if piece := secrettest.Leak(text, secrettest.PrivateParts(t, jwk)...); piece != "" {
			t.Fatalf("%q holds %q, a piece of the private key", text, piece)
		}
	}
	if msg := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady).Message; !strings.Contains(msg, `key "did": does not look like a DID (it looks like a JSON object; did you swap did and privateJwk?)`) {
		t.Fatalf("status does not say what is wrong: %s", msg)
	}
}

// A signer Secret that loses its dwnsync.io/signer label leaves the operator's view: the link
// stops as if the Secret were deleted, and its status says to label the Secret; labelling it
// again starts the link.
func TestUnlabelledSecretStopsTheLink(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	eng := newFakeEngine()
	startReconciler(t, ns, eng, nil)
	secret, did := signerSecret(t, ns, "gina-signer")
	if err := k8sClient.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(ctx, newLink(ns, "gina", did, remote, "gina-signer")); err != nil {
		t.Fatal(err)
	}
	key := readyIs(t, ns, "gina", metav1.ConditionFalse, "Initializing", 20*time.Second).Status.LinkKey

	relabel := func(labels map[string]string) {
		t.Helper()
		s := &corev1.Secret{}
		if err := k8sClient.Get(ctx, keyOf(ns, "gina-signer"), s); err != nil {
			t.Fatal(err)
		}
		s.Labels = labels
		if err := k8sClient.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	relabel(nil)
	l := readyIs(t, ns, "gina", metav1.ConditionFalse, "SignerSecretMissing", 20*time.Second)
	if msg := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "kubectl label secret -n "+ns+" gina-signer "+controllers.SignerLabel+"=true") {
		t.Errorf("the status does not say how to label the Secret: %s", msg)
	}
	eventually(t, 20*time.Second, "the engine link stopped", func() (bool, string) {
		return len(eng.keys()) == 0, fmt.Sprintf("engine runs %q", eng.keys())
	})

	relabel(map[string]string{controllers.SignerLabel: "true"})
	readyIs(t, ns, "gina", metav1.ConditionFalse, "Initializing", 20*time.Second)
	if keys := eng.keys(); !slices.Equal(keys, []string{key}) {
		t.Fatalf("engine runs %q after the label came back, want [%s]", keys, key)
	}
}
