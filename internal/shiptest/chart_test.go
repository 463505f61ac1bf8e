package shiptest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

const chartDir = "charts/dwnsync"

func helmTemplate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	// No --include-crds: what is rendered is what `helm install` and `helm upgrade` apply.
	base := []string{"template", "dwnsync", chartDir, "--namespace", "dwnsync-system"}
	return run(t, nil, tool(t, "helm"), append(base, args...)...)
}

// valuesVariants are the values combinations the chart is linted and dry-run with.
var valuesVariants = [][]string{
	nil,
	{"--set", "watchNamespaces={team-a,team-b}", "--set", "leaderElection.enabled=false"},
	{"--set", "nameOverride=sync", "--set", "fullnameOverride=dwnsync-ops", "--set", "global.imageRegistry=example.com",
		"--set", "image.digest=sha256:" + strings.Repeat("ab", 32), "--set", "podLabels.team=a",
		"--set", "priorityClassName=system-cluster-critical", "--set", "logFormat=console",
		"--set", "persistence.existingClaim=dwnsync-state", "--set", "extraArgs={--zap-stacktrace-level=panic}",
		"--set", "extraEnv[0].name=GOMEMLIMIT", "--set", "extraEnv[0].value=400MiB",
		"--set", "topologySpreadConstraints[0].maxSkew=1", "--set", "topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname",
		"--set", "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
		"--set", "operator.maxConcurrentReconciles=8", "--set", "grafanaDashboard.enabled=true"},
	egressVariant,
	noCRDVariant,
	shardingVariant,
}

// shardingVariant runs three shards (with their PodDisruptionBudget).
var shardingVariant = []string{"--set", "sharding.enabled=true", "--set", "sharding.replicas=3"}

// noCRDVariant leaves the CRD to the cluster's admin.
var noCRDVariant = []string{"--set", "crds.enabled=false", "--set", "crds.keep=false"}

// egressVariant turns on the egress lists and the optional NetworkPolicy.
var egressVariant = []string{"--set", "egress.deny={10.0.0.0/8,metadata.internal}", "--set", "egress.allow={169.254.10.0/24}",
	"--set", "egress.networkPolicy.enabled=true", "--set", "egress.networkPolicy.apiServerCIDRs={10.96.0.1/32}",
	"--set-json", `egress.networkPolicy.rules=[{"to":[{"ipBlock":{"cidr":"203.0.113.0/24"}}],"ports":[{"protocol":"TCP","port":443}]}]`}

func TestChartLints(t *testing.T) {
	for _, variant := range append(valuesVariants, []string{"--set", "prometheusRule.enabled=true"}) {
		if out, err := run(t, nil, tool(t, "helm"), append([]string{"lint", "--strict", chartDir}, variant...)...); err != nil {
			t.Errorf("helm lint --strict %v: %v\n%s", variant, err, out)
		}
	}
}

// TestChartSchemaRejectsBadValues: values.schema.json must catch mistakes at install time.
func TestChartSchemaRejectsBadValues(t *testing.T) {
	for _, bad := range [][]string{
		{"--set", "localEndpoint=ftp://dwn.example"},
		{"--set", "logLevel=chatty"},
		{"--set", "persistence.size=lots"},
		{"--set", "unknownKey=1"},
		{"--set", "egress.deny=10.0.0.0/8"}, // a list, not a string
		{"--set", "logFormat=xml"},
		{"--set", "image.digest=latest"},
		{"--set", "operator.statusCounterInterval=soon"},
		{"--set", "sharding.enabled=true", "--set", "sharding.replicas=0"},
		{"--set", "sharding.enabled=true", "--set", "leaderElection.enabled=false"},
		{"--set", "sharding.enabled=true", "--set", "persistence.existingClaim=one-for-all"},
	} {
		if out, err := helmTemplate(t, bad...); err == nil {
			t.Errorf("helm template %v was accepted; the schema should reject it\n%s", bad, out)
		}
	}
}

// TestChartCRDsMatchGenerated: the chart renders exactly the CRDs controller-gen generates,
// with the keep annotation while crds.keep is true, and none with crds.enabled=false.
func TestChartCRDsMatchGenerated(t *testing.T) {
	gen, _ := filepath.Glob(filepath.Join(repoRoot(t), "config/crd/bases/*.yaml"))
	if len(gen) == 0 {
		t.Fatal("no generated CRDs in config/crd/bases: run make manifests")
	}
	rendered := renderedCRDs(t)
	keepOff := renderedCRDs(t, "--set", "crds.keep=false")
	for _, g := range gen {
		raw, _ := os.ReadFile(g)
		var want apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		got, ok := rendered[want.Name]
		if !ok {
			t.Errorf("the chart renders no CRD %s: run make manifests", want.Name)
			continue
		}
		if !equality.Semantic.DeepEqual(got.Spec, want.Spec) {
			t.Errorf("the chart's CRD %s differs from %s: run make manifests", want.Name, filepath.Base(g))
		}
		if got.Annotations[keepPolicy] != "keep" {
			t.Errorf("CRD %s lacks %s: keep by default (crds.keep=true); annotations %v", want.Name, keepPolicy, got.Annotations)
		}
		if _, has := keepOff[want.Name].Annotations[keepPolicy]; has {
			t.Errorf("CRD %s has %s with crds.keep=false", want.Name, keepPolicy)
		}
	}
	if none := renderedCRDs(t, noCRDVariant...); len(none) != 0 {
		t.Errorf("crds.enabled=false still renders %d CRD(s)", len(none))
	}
}

const keepPolicy = "helm.sh/resource-policy"

// renderedCRDs renders the chart and returns its CRDs by name.
func renderedCRDs(t *testing.T, args ...string) map[string]apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	out, err := helmTemplate(t, args...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	crds := map[string]apiextensionsv1.CustomResourceDefinition{}
	for _, doc := range strings.Split(out, "\n---") {
		var crd apiextensionsv1.CustomResourceDefinition
		if yaml.Unmarshal([]byte(doc), &crd) == nil && crd.Kind == "CustomResourceDefinition" {
			crds[crd.Name] = crd
		}
	}
	return crds
}

// TestChartRBACCoversGeneratedRole: every permission the controller's markers ask for is
// granted by the chart, in both the cluster-wide and the per-namespace form.
func TestChartRBACCoversGeneratedRole(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "config/rbac/role.yaml"))
	if err != nil {
		t.Fatalf("config/rbac/role.yaml: %v (run make manifests)", err)
	}
	var generated rbacv1.ClusterRole
	if err := yaml.Unmarshal(raw, &generated); err != nil {
		t.Fatal(err)
	}
	for _, variant := range [][]string{nil, {"--set", "watchNamespaces={team-a,team-b}"}} {
		out, err := helmTemplate(t, variant...)
		if err != nil {
			t.Fatalf("helm template %v: %v\n%s", variant, err, out)
		}
		var chartRules []rbacv1.PolicyRule
		for _, doc := range strings.Split(out, "\n---") {
			var obj struct {
				Kind     string              `json:"kind"`
				Metadata metav1.ObjectMeta   `json:"metadata"`
				Rules    []rbacv1.PolicyRule `json:"rules"`
			}
			if yaml.Unmarshal([]byte(doc), &obj) != nil {
				continue
			}
			// The manager roles plus the leader-election Role (leases) together must cover it.
			if obj.Kind == "ClusterRole" || obj.Kind == "Role" {
				chartRules = append(chartRules, obj.Rules...)
			}
		}
		for _, rule := range generated.Rules {
			for _, group := range rule.APIGroups {
				for _, res := range rule.Resources {
					for _, verb := range rule.Verbs {
						if !allows(chartRules, group, res, verb) {
							t.Errorf("chart %v does not grant %s %s/%s that the controller needs", variant, verb, group, res)
						}
					}
				}
			}
		}
	}
}

func allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	has := func(list []string, v string) bool {
		for _, x := range list {
			if x == v || x == "*" {
				return true
			}
		}
		return false
	}
	for _, r := range rules {
		if has(r.APIGroups, group) && has(r.Resources, resource) && has(r.Verbs, verb) {
			return true
		}
	}
	return false
}

// TestChartAcceptedByAPIServer renders the chart and has a real kube-apiserver (envtest)
// validate every object with a server-side dry run.
func TestChartAcceptedByAPIServer(t *testing.T) {
	kcPath := startEnvtest(t, "dwnsync-system", "team-a", "team-b")
	for _, variant := range valuesVariants {
		rendered, err := helmTemplate(t, variant...)
		if err != nil {
			t.Fatalf("helm template %v: %v\n%s", variant, err, rendered)
		}
		manifest := filepath.Join(t.TempDir(), "rendered.yaml")
		if err := os.WriteFile(manifest, []byte(rendered), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := run(t, nil, tool(t, "kubectl"), "--kubeconfig", kcPath, "apply", "--dry-run=server", "-f", manifest)
		if err != nil {
			t.Fatalf("kubectl apply --dry-run=server of the chart %v: %v\n%s", variant, err, out)
		}
		if !strings.Contains(out, "statefulset.apps/dwnsync") {
			t.Errorf("dry run output lacks the StatefulSet:\n%s", out)
		}
		const crd = "customresourcedefinition.apiextensions.k8s.io/replicationlinks.dwnsync.io"
		if wantCRD := !slices.Equal(variant, noCRDVariant); strings.Contains(out, crd) != wantCRD {
			t.Errorf("variant %v: CRD rendered=%v, want %v:\n%s", variant, !wantCRD, wantCRD, out)
		}
		if hasPDB := strings.Contains(out, "poddisruptionbudget.policy/"); hasPDB != slices.Equal(variant, shardingVariant) {
			t.Errorf("variant %v: PodDisruptionBudget rendered=%v; want it only with sharding:\n%s", variant, hasPDB, out)
		}
		if hasPolicy := strings.Contains(out, "networkpolicy.networking.k8s.io/") && strings.Contains(out, "-egress"); hasPolicy != slices.Equal(variant, egressVariant) {
			t.Errorf("variant %v: egress NetworkPolicy rendered=%v; want it only when enabled:\n%s", variant, hasPolicy, out)
		}
	}
}

// startEnvtest starts a real kube-apiserver with the given namespaces and returns the path of
// an admin kubeconfig for kubectl and helm.
func startEnvtest(t *testing.T, namespaces ...string) string {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test` (it builds kube-apiserver and etcd)")
	}
	// envtest's 20 s default for kube-apiserver to start was exceeded under make test-stress.
	env := &envtest.Environment{ControlPlaneStartTimeout: 2 * time.Minute}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	cs := kubernetes.NewForConfigOrDie(cfg)
	for _, ns := range namespaces {
		if _, err := cs.CoreV1().Namespaces().Create(context.Background(),
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	user, err := env.AddUser(envtest.User{Name: "chart-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kcPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kcPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return kcPath
}

// TestChartREADMEMatchesValues: charts/dwnsync/README.md is generated from values.yaml.
func TestChartREADMEMatchesValues(t *testing.T) {
	want, err := run(t, nil, "go", "run", "./hack/chartdoc")
	if err != nil {
		t.Fatalf("go run ./hack/chartdoc: %v\n%s", err, want)
	}
	got, err := os.ReadFile(filepath.Join(repoRoot(t), chartDir, "README.md"))
	if err != nil || string(got) != want {
		t.Fatalf("charts/dwnsync/README.md is stale (or missing: %v): run make manifests", err)
	}
}
