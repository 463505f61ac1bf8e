package controllers

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// snapEngine is the smallest LinkEngine: one mutable snapshot per key.
type snapEngine struct {
	mu    sync.Mutex
	snaps map[string]syncer.LinkStatus
}

func (e *snapEngine) Apply(cfg syncer.LinkConfig) (string, error) {
	key, err := ledger.LinkKey(cfg.Tenant, cfg.RemoteEndpoint, cfg.Scope)
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.snaps[key]; !ok {
		e.snaps[key] = syncer.LinkStatus{Key: key, Owner: cfg.Owner, Phase: "initializing", Connectivity: "online"}
	}
	return key, err
}
func (e *snapEngine) Release(string, string) (bool, error) { return false, nil }
func (e *snapEngine) Snapshots() []syncer.LinkStatus       { return nil }
func (e *snapEngine) Snapshot(key string) (syncer.LinkStatus, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.snaps[key]
	return s, ok
}
func (e *snapEngine) Events() <-chan syncer.Event { return nil }
func (e *snapEngine) edit(fn func(*syncer.LinkStatus)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, s := range e.snaps {
		fn(&s)
		e.snaps[k] = s
	}
}

// Phase changes are written at once; counter changes wait for the link's interval, with the
// clock faked so the test needs no waiting.
func TestStatusCoalescingOnAFakeClock(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	signer, jwk, _ := msg.GenerateSigner()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"},
		Data: map[string][]byte{"did": []byte(signer.DID), "privateJwk": jwk}}
	link := &v1alpha1.ReplicationLink{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "l", Generation: 1},
		Spec: v1alpha1.ReplicationLinkSpec{Tenant: signer.DID, Endpoint: "https://remote.test",
			Signer: v1alpha1.SignerSpec{SecretRef: v1alpha1.SecretReference{Name: "s"}}}}
	link.Default()
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(secret, link).WithStatusSubresource(link).
		WithIndex(&v1alpha1.ReplicationLink{}, linkKeyIndex, indexLinkKey).Build()
	fc := clocktesting.NewFakeClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	eng := &snapEngine{snaps: map[string]syncer.LinkStatus{}}
	r := &ReplicationLinkReconciler{Client: c, Engine: eng, Clock: fc, Defaults: linkconfig.Defaults{LocalEndpoint: "http://local.test"},
		MinCounterInterval: 5 * time.Second, CounterWritesPerSecond: 100}
	r.init()
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(link)}
	step := func(want string, wantRequeue time.Duration) {
		t.Helper()
		res, err := r.Reconcile(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		tr, ct := r.StatusWrites()
		if s := fmtWrites(tr, ct); s != want || res.RequeueAfter != wantRequeue {
			t.Fatalf("writes %s requeue %v; want %s requeue %v", s, res.RequeueAfter, want, wantRequeue)
		}
	}
	step("1/0", 0) // initializing: a transition, written at once
	step("1/0", 0) // nothing changed: no write

	eng.edit(func(s *syncer.LinkStatus) { s.Pull.Applied = 10 })
	step("1/0", 5*time.Second) // counters only: wait for the interval
	fc.Step(2 * time.Second)
	step("1/0", 3*time.Second)
	fc.Step(3 * time.Second)
	step("1/1", 0) // interval over: written

	eng.edit(func(s *syncer.LinkStatus) { s.Pull.Applied = 20 })
	fc.Step(time.Second)
	step("1/1", 4*time.Second)
	eng.edit(func(s *syncer.LinkStatus) { s.Phase = "live" })
	step("2/1", 0) // a phase change goes out at once, counters with it

	var got v1alpha1.ReplicationLink
	if err := c.Get(context.Background(), req.NamespacedName, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != v1alpha1.PhaseLive || got.Status.Pull.Applied != 20 {
		t.Fatalf("stored status %+v", got.Status)
	}
}

func fmtWrites(transitions, counters int64) string {
	return strconv.FormatInt(transitions, 10) + "/" + strconv.FormatInt(counters, 10)
}
