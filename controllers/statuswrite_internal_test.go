package controllers

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
)

// A shard that takes a link over reconciles it from its informer's copy, which still shows the
// status the previous shard wrote (live, Ready=True) while its own writes are on their way: it
// writes initializing (Ready=False), then live (Ready=True) over the same stale copy. The server
// must end with what was written last. A merge patch against the copy omitted the phase (the
// copy already said live) and left "initializing" under Ready=True/Live for good: seen in
// TestShardKill9MovesItsLinksAndLosesNothing as a link that never turned live.
func TestStatusWrittenOverAStaleCopyIsWhatWasWritten(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	ready := func(s metav1.ConditionStatus, reason string, at time.Time) []metav1.Condition {
		return []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: s, Reason: reason, Message: reason, LastTransitionTime: metav1.NewTime(at)}}
	}
	link := &v1alpha1.ReplicationLink{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "l", Generation: 1},
		Status: v1alpha1.ReplicationLinkStatus{Phase: v1alpha1.PhaseLive, Conditions: ready(metav1.ConditionTrue, "Live", t0)}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(link).WithStatusSubresource(link).Build()
	r := &ReplicationLinkReconciler{Client: c, Engine: &snapEngine{}, Clock: clocktesting.NewFakeClock(t0.Add(time.Minute)),
		MinCounterInterval: time.Second, CounterWritesPerSecond: 100}
	r.init()
	ctx := context.Background()
	stale := &v1alpha1.ReplicationLink{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(link), stale); err != nil {
		t.Fatal(err)
	}

	starting := v1alpha1.ReplicationLinkStatus{Phase: v1alpha1.PhaseInitializing, Conditions: ready(metav1.ConditionFalse, "Initializing", t0.Add(time.Minute))}
	if _, err := r.writeStatus(ctx, stale.DeepCopy(), starting); err != nil {
		t.Fatal(err)
	}
	live := v1alpha1.ReplicationLinkStatus{Phase: v1alpha1.PhaseLive, Conditions: ready(metav1.ConditionTrue, "Live", t0.Add(2*time.Minute))}
	if _, err := r.writeStatus(ctx, stale.DeepCopy(), live); err != nil {
		t.Fatal(err)
	}

	got := &v1alpha1.ReplicationLink{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(link), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != v1alpha1.PhaseLive || got.Status.Conditions[0].Status != metav1.ConditionTrue {
		t.Fatalf("after writing initializing then live over a stale copy the server holds phase %q with Ready=%s/%s",
			got.Status.Phase, got.Status.Conditions[0].Status, got.Status.Conditions[0].Reason)
	}
}
