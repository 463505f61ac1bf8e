package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/sharding"
	"github.com/dwnsync/dwnsync/internal/standalone"
	"github.com/dwnsync/dwnsync/internal/status"
)

// The views a person reads, on a real API server with a real ~190-character did:jwk:
// `kubectl get rl` fits 120 columns and shows the progress with its rate and ETA; -o wide adds
// the tenant and the endpoints; `dwnsync status --kubeconfig` prints the same columns.
func TestStatusViewsOnEnvtest(t *testing.T) {
	kubeconfig, c := startEnvtest(t)
	ns := "views"
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	tenant := longDIDJWK(t)
	link := &v1alpha1.ReplicationLink{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alice-to-dwn-eu-west",
			Labels: map[string]string{sharding.OwnerLabel: "dwnsync-2"}},
		Spec: v1alpha1.ReplicationLinkSpec{Tenant: tenant, Endpoint: "https://dwn.eu-west.example.com",
			Signer: v1alpha1.SignerSpec{SecretRef: v1alpha1.SecretReference{Name: "alice-signer"}}},
	}
	if err := c.Create(ctx, link); err != nil {
		t.Fatal(err)
	}
	converged := metav1.NewTime(time.Now().Add(-3 * time.Minute).Truncate(time.Second))
	link.Status = v1alpha1.ReplicationLinkStatus{Phase: v1alpha1.PhaseInitializing, NeedsReconcile: true,
		Connectivity: v1alpha1.ConnectivityOnline, DeadLetters: 2, LastConvergedTime: &converged,
		Progress: &v1alpha1.Progress{Applied: 120, Total: 400,
			RatePerMinute: 5100, SampleTime: &converged, SampleApplied: 120}, // 85/s: 280 left take 3s
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: status.ReasonEndpointUnreachable, Message: "x", LastTransitionTime: converged}}}
	link.Status.Progress.Summary = status.ProgressCell(link.Status.Progress) // as the operator writes it
	if err := c.Status().Update(ctx, link); err != nil {
		t.Fatal(err)
	}

	narrow := kubectl(t, kubeconfig, "get", "rl", "-n", ns)
	t.Logf("kubectl get rl\n%s", narrow)
	assertHeader(t, narrow, standalone.Columns)
	assertFits(t, narrow, 120)
	for _, want := range []string{"120/400 85/s ETA 3s", "initializing", "EndpointUnreachable", "3m"} {
		if !strings.Contains(narrow, want) {
			t.Errorf("kubectl get rl lacks %q", want)
		}
	}
	wide := kubectl(t, kubeconfig, "get", "rl", "-n", ns, "-o", "wide")
	kubectlWide := slices.Concat(standalone.Columns, standalone.WideColumns[:len(standalone.WideColumns)-1]) // all but LAST ERROR
	assertHeader(t, wide, kubectlWide)
	if !strings.Contains(wide, tenant) || !strings.Contains(wide, link.Spec.Endpoint) || !strings.Contains(wide, "dwnsync-2") {
		t.Errorf("kubectl get rl -o wide lacks the tenant, the endpoint or the shard:\n%s", wide)
	}

	ours := captureStdout(t, func() error { return runStatus([]string{"--kubeconfig", kubeconfig, "-n", ns}) })
	t.Logf("dwnsync status --kubeconfig K -n %s\n%s", ns, ours)
	assertHeader(t, ours, standalone.Columns)
	assertFits(t, ours, 120)
	if !strings.Contains(ours, "120/400 85/s ETA 3s") || !strings.Contains(ours, "alice-to-dwn-eu-west") {
		t.Errorf("dwnsync status does not show the link's progress, rate and ETA:\n%s", ours)
	}
	oursWide := captureStdout(t, func() error { return runStatus([]string{"--kubeconfig", kubeconfig, "-A", "-o", "wide"}) })
	assertHeader(t, oursWide, slices.Concat(standalone.Columns, standalone.WideColumns))
	if !strings.Contains(oursWide, tenant) || !strings.Contains(oursWide, "dwnsync-2") {
		t.Errorf("dwnsync status -o wide lacks the tenant or the shard:\n%s", oursWide)
	}
	asJSON := captureStdout(t, func() error { return runStatus([]string{"--kubeconfig", kubeconfig, "-n", ns, "-o", "json"}) })
	var list v1alpha1.ReplicationLinkList
	if err := json.Unmarshal([]byte(asJSON), &list); err != nil || len(list.Items) != 1 || list.Items[0].Status.Progress.Total != 400 || list.Items[0].Status.Progress.RatePerMinute != 5100 {
		t.Fatalf("dwnsync status -o json: %v\n%s", err, asJSON)
	}
}

// The CLI's wide columns are the CRD's printer columns (plus LAST ERROR), in the CRD's order.
func TestStatusColumnsAreTheCRDPrinterColumns(t *testing.T) {
	raw, err := os.ReadFile("../../config/crd/bases/dwnsync.io_replicationlinks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	var narrow, wide []string
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		name := strings.ToUpper(c.Name)
		if c.Priority == 0 {
			narrow = append(narrow, name)
		} else {
			wide = append(wide, name)
		}
	}
	if want := standalone.Columns[1:]; !slices.Equal(narrow, want) {
		t.Errorf("CRD default columns %q, dwnsync status prints %q", narrow, want)
	}
	if want := standalone.WideColumns[:len(standalone.WideColumns)-1]; !slices.Equal(wide, want) {
		t.Errorf("CRD wide columns %q, dwnsync status -o wide prints %q", wide, want)
	}
}

func assertHeader(t *testing.T, table string, want []string) {
	t.Helper()
	head := strings.Fields(strings.SplitN(table, "\n", 2)[0])
	// Column names hold spaces ("LAST CONVERGED"): compare the words.
	if w := strings.Fields(strings.Join(want, " ")); !slices.Equal(head, w) && !slices.Equal(head, append([]string{"NAMESPACE"}, w...)) {
		t.Errorf("header %q, want %q", head, w)
	}
}

func assertFits(t *testing.T, table string, width int) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimRight(table, "\n"), "\n") {
		if len(line) > width {
			t.Errorf("line of %d columns (> %d):\n%s", len(line), width, line)
		}
	}
}

// longDIDJWK is a real did:jwk of a fresh P-256 key with the usual optional members (alg, use,
// kid): about 190 characters, the long end of what users have.
func longDIDJWK(t *testing.T) string {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.PublicKey().Bytes() // 0x04 || X || Y
	b64 := base64.RawURLEncoding.EncodeToString
	jwk, _ := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
		"x": b64(pub[1:33]), "y": b64(pub[33:])})
	did := "did:jwk:" + b64(jwk)
	if len(did) < 160 {
		t.Fatalf("did:jwk of %d characters: not long enough to test the width", len(did))
	}
	return did
}

func startEnvtest(t *testing.T) (kubeconfig string, c client.Client) {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test` (it builds kube-apiserver, etcd and kubectl)")
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{"../../config/crd/bases"}, ErrorIfCRDPathMissing: true,
		ControlPlaneStartTimeout: 2 * time.Minute} // the default 20 s ran out under make test-stress
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	user, err := env.AddUser(envtest.User{Name: "views", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	c, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return kubeconfig, c
}

// kubectl runs the kubectl of KUBEBUILDER_ASSETS (built by hack/install-tools.sh).
func kubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	bin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	cmd := exec.Command(bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "COLUMNS=120")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
