package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
)

// `dwnsync deadletters` against a real API server: list prints the status's dead letters and
// says how many it does not show; retry sets the annotation and prints the outcome the operator
// (played here by the test) writes for its request id; with no operator it gives up with a
// message saying so.
func TestDeadLettersInCluster(t *testing.T) {
	kubeconfig, c := startEnvtest(t)
	ctx := context.Background()
	ns := "letters"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	link := &v1alpha1.ReplicationLink{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bob"},
		Spec: v1alpha1.ReplicationLinkSpec{Tenant: "did:example:bob", Endpoint: "https://dwn.example.com",
			Signer: v1alpha1.SignerSpec{SecretRef: v1alpha1.SecretReference{Name: "bob-signer"}}},
	}
	if err := c.Create(ctx, link); err != nil {
		t.Fatal(err)
	}
	since := metav1.NewTime(time.Now().Add(-2 * time.Hour).Truncate(time.Second))
	link.Status = v1alpha1.ReplicationLinkStatus{DeadLetters: 3, DeadLetterList: []v1alpha1.DeadLetterEntry{
		{CID: "bafyone", Direction: "push", Reason: "refused: 401", Since: since},
		{CID: "bafytwo", Direction: "pull", Reason: "retries exhausted", Since: since}}}
	if err := c.Status().Update(ctx, link); err != nil {
		t.Fatal(err)
	}
	dl := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runDeadLetters(append(args, "--kubeconfig", kubeconfig), &out)
		return out.String(), err
	}

	out, err := dl("list", "-n", ns, "bob")
	t.Logf("deadletters list\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bafyone", "push", "refused: 401", "bafytwo", "pull", "120m", "1 older dead letter(s) not shown"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q", want)
		}
	}

	// The operator's part: handle the request, as the reconciler does.
	operated := make(chan error, 1)
	go func() { operated <- playOperator(ctx, c, client.ObjectKeyFromObject(link)) }()
	out, err = dl("retry", ns+"/bob", "--cid", "bafyone", "--timeout", "30s")
	if err != nil {
		t.Fatal(err)
	}
	if err := <-operated; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "1 dead letter(s) retried") || !strings.Contains(out, "link "+ns+"/bob") {
		t.Fatalf("retry printed %q", out)
	}

	// Nobody handles this one: the CLI gives up, naming the request and what to check.
	_, err = dl("clear", "-n", ns, "bob", "--timeout", "1s")
	if err == nil || !strings.Contains(err.Error(), "did not handle request") || !strings.Contains(err.Error(), "operator running") {
		t.Fatalf("clear without an operator: %v", err)
	}
	got := &v1alpha1.ReplicationLink{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(link), got); err != nil || got.Annotations[v1alpha1.AnnotationDeadLetters] != "clear" {
		t.Fatalf("the clear request is not left on the link: %v %v", err, got.Annotations)
	}
}

// playOperator waits for a retry request naming bafyone, then reports it handled.
func playOperator(ctx context.Context, c client.Client, key client.ObjectKey) error {
	link := &v1alpha1.ReplicationLink{}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, link); err != nil {
			return false, err
		}
		return link.Annotations[v1alpha1.AnnotationDeadLetters] == "retry:bafyone", nil
	})
	if err != nil {
		return err
	}
	link.Status.LastDeadLetterAction = &v1alpha1.DeadLetterAction{RequestID: link.Annotations[v1alpha1.AnnotationDeadLettersRequest],
		Action: "retry", Count: 1, Message: "1 dead letter(s) retried", Time: metav1.Now()}
	return c.Status().Update(ctx, link)
}
