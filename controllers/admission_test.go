package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/validation"
	"github.com/dwnsync/dwnsync/internal/validation/validationtest"
)

// skippedCEL is the API server's note that CEL rules did not run because the schema already
// failed; it is not a verdict about a field.
const skippedCEL = "some validation rules were not checked"

// apiVerdict is the API server's answer as sorted "CauseType field" lines plus the messages.
func apiVerdict(t *testing.T, err error) ([]string, string) {
	t.Helper()
	if err == nil {
		return nil, ""
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Details == nil {
		t.Fatalf("not a validation error: %v", err)
	}
	var out []string
	for _, c := range se.ErrStatus.Details.Causes {
		if strings.Contains(c.Message, skippedCEL) {
			continue
		}
		out = append(out, string(c.Type)+" "+c.Field)
	}
	sort.Strings(out)
	return out, err.Error()
}

// goVerdict is the Go validator's answer in the same form.
func goVerdict(errs field.ErrorList) ([]string, string) {
	var out []string
	for _, e := range errs {
		out = append(out, causeOf(e)+" "+e.Field)
	}
	sort.Strings(out)
	if len(errs) == 0 {
		return nil, ""
	}
	return slices.Compact(out), errs.ToAggregate().Error()
}

// causeOf is the metav1.CauseType the API server reports for a field error.
func causeOf(e *field.Error) string { return string(metav1.CauseType(e.Type)) }

func wantVerdict(ws []validationtest.Want) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Type+" "+w.Field)
	}
	sort.Strings(out)
	return out
}

func createDocument(ctx context.Context, ns string, doc []byte) error {
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(doc, &u.Object); err != nil {
		return err
	}
	u.SetNamespace(ns)
	return k8sClient.Create(ctx, u)
}

// One table, two judges: the API server running the generated CRD, and internal/validation
// (what `dwnsync run` uses). Both must give the table's verdict, with the same messages.
func TestAdmissionParityCreate(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	for i, c := range validationtest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			doc := validationtest.Document(fmt.Sprintf("case-%02d", i), c.Edit)
			apiGot, apiMsg := apiVerdict(t, createDocument(ctx, ns, doc))
			_, errs := validation.DecodeLink(doc)
			goGot, goMsg := goVerdict(errs)
			want := wantVerdict(c.Want)
			if !slices.Equal(apiGot, want) || !slices.Equal(goGot, want) {
				t.Fatalf("verdicts differ\nwant:       %q\nAPI server: %q (%s)\nGo:         %q (%s)", want, apiGot, apiMsg, goGot, goMsg)
			}
			for _, w := range c.Want {
				if w.Message != "" && (!strings.Contains(apiMsg, w.Message) || !strings.Contains(goMsg, w.Message)) {
					t.Errorf("message %q missing\nAPI server: %s\nGo: %s", w.Message, apiMsg, goMsg)
				}
			}
			if len(c.Want) > 0 {
				t.Logf("refused: %s", apiMsg)
			}
		})
	}
}

// Identity fields refuse change (with a message that says to create a new link); the mutable
// fields change freely. Both judges again.
func TestAdmissionParityUpdate(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	for i, c := range append(append([]validationtest.UpdateCase(nil), validationtest.UpdateCases...), validationtest.MutableEdits...) {
		t.Run(c.Name, func(t *testing.T) {
			name := fmt.Sprintf("upd-%02d", i)
			if err := createDocument(ctx, ns, validationtest.Document(name, nil)); err != nil {
				t.Fatal(err)
			}
			old := &v1alpha1.ReplicationLink{}
			if err := k8sClient.Get(ctx, keyOf(ns, name), old); err != nil {
				t.Fatal(err)
			}
			// Apply the edit to the stored object (as kubectl edit would) and update it.
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ReplicationLink"))
			if err := k8sClient.Get(ctx, keyOf(ns, name), u); err != nil {
				t.Fatal(err)
			}
			c.Edit(u.Object["spec"].(map[string]any))
			apiGot, apiMsg := apiVerdict(t, k8sClient.Update(ctx, u))

			updated, errs := validation.DecodeLink(validationtest.Document(name, c.Edit))
			if updated != nil {
				errs = append(errs, validation.ValidateLinkUpdate(updated, old)...)
			}
			goGot, goMsg := goVerdict(errs)
			want := wantVerdict(c.Want)
			if !slices.Equal(apiGot, want) || !slices.Equal(goGot, want) {
				t.Fatalf("verdicts differ\nwant:       %q\nAPI server: %q (%s)\nGo:         %q (%s)", want, apiGot, apiMsg, goGot, goMsg)
			}
			if len(c.Want) > 0 && !strings.Contains(apiMsg, "create a new ReplicationLink") {
				t.Errorf("immutable-field refusal does not say to create a new link: %s", apiMsg)
			}
		})
	}
}

// A valid link is stored with the CRD's defaults, and its status subresource round-trips
// (status is ignored on the main resource and kept through /status).
func TestValidLinkDefaultsAndStatusSubresource(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	if err := createDocument(ctx, ns, validationtest.Document("alice", nil)); err != nil {
		t.Fatal(err)
	}
	link := &v1alpha1.ReplicationLink{}
	if err := k8sClient.Get(ctx, keyOf(ns, "alice"), link); err != nil {
		t.Fatal(err)
	}
	s := link.Spec
	if s.Direction != "both" || s.Mode != "live" || s.Dialect != "auto" || s.PollInterval == nil || s.PollInterval.Duration != v1alpha1.DefaultPollInterval {
		t.Fatalf("defaults not applied: %+v", s)
	}

	now := metav1.NewTime(metav1.Now().Rfc3339Copy().Time)
	link.Status = v1alpha1.ReplicationLinkStatus{
		ObservedGeneration: link.Generation, Phase: v1alpha1.PhaseLive, NeedsReconcile: true,
		Connectivity: v1alpha1.ConnectivityOnline, Dialect: "web5", LinkKey: "k",
		Pull:              &v1alpha1.DirectionStatus{Checkpoint: "c1", Applied: 7, Pending: 1, LastEventTime: &now},
		Push:              &v1alpha1.DirectionStatus{Applied: 3, LastError: "boom"},
		LastConvergedTime: &now, RepairAttempts: 2, DeadLetters: 1,
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Live",
			Message: "ok", LastTransitionTime: now, ObservedGeneration: link.Generation}},
	}
	want := *link.Status.DeepCopy()
	if err := k8sClient.Status().Update(ctx, link); err != nil {
		t.Fatal(err)
	}
	got := &v1alpha1.ReplicationLink{}
	if err := k8sClient.Get(ctx, keyOf(ns, "alice"), got); err != nil {
		t.Fatal(err)
	}
	if !equalStatus(got.Status, want) {
		t.Fatalf("status did not round-trip:\n got %+v\nwant %+v", got.Status, want)
	}

	// A status written through the main resource is dropped (status is a subresource).
	got.Status.Phase = v1alpha1.PhasePaused
	got.Spec.Suspend = true
	if err := k8sClient.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	again := &v1alpha1.ReplicationLink{}
	if err := k8sClient.Get(ctx, keyOf(ns, "alice"), again); err != nil {
		t.Fatal(err)
	}
	if again.Status.Phase != v1alpha1.PhaseLive || !again.Spec.Suspend || again.Generation != link.Generation+1 {
		t.Fatalf("main resource update: phase %q suspend %v generation %d", again.Status.Phase, again.Spec.Suspend, again.Generation)
	}
}

// The shipped samples are what a user applies first: the API server must accept them as they
// are (kubectl apply --dry-run=server, with strict field validation).
func TestSamplesApplyCleanly(t *testing.T) {
	ns := newNamespace(t)
	for _, f := range []string{"dwnsync_v1alpha1_replicationlink.yaml", "standalone-links.yaml"} {
		out := kubectl(t, "apply", "--dry-run=server", "--validate=strict", "-n", ns, "-f", "../config/samples/"+f)
		t.Logf("kubectl apply --dry-run=server -f config/samples/%s\n%s", f, out)
		if !strings.Contains(out, "replicationlink.dwnsync.io/") || !strings.Contains(out, "secret/") {
			t.Fatalf("sample %s not accepted:\n%s", f, out)
		}
	}
}
