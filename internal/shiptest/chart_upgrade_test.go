package shiptest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const crdName = "replicationlinks.dwnsync.io"

// TestChartUpgradeUpdatesCRD installs the chart into a real kube-apiserver with helm, then
// upgrades it to a "new version" whose CRD has an extra printer column: the CRD in the API
// server must gain it (Helm never upgrades the files of a chart's crds/ directory). An
// uninstall must leave the CRD, and with it the links, in place (crds.keep).
func TestChartUpgradeUpdatesCRD(t *testing.T) {
	kubeconfig := startEnvtest(t, "dwnsync-system")
	chart := copyChart(t)
	helmHome := t.TempDir() // keep helm's cache and config out of the user's home
	helmEnv := []string{"HELM_CACHE_HOME=" + helmHome + "/cache", "HELM_CONFIG_HOME=" + helmHome + "/config", "HELM_DATA_HOME=" + helmHome + "/data"}
	helm := func(args ...string) {
		t.Helper()
		args = append(args, "--kubeconfig", kubeconfig, "--namespace", "dwnsync-system")
		if out, err := run(t, helmEnv, tool(t, "helm"), args...); err != nil {
			t.Fatalf("helm %v: %v\n%s", args, err, out)
		}
	}

	helm("install", "dwnsync", chart)
	if cols := printerColumns(t, kubeconfig); !slices.Contains(cols, "Status") || slices.Contains(cols, "Upgraded") {
		t.Fatalf("after install the CRD's printer columns are %v; want the chart's own", cols)
	}

	addPrinterColumn(t, chart, "Upgraded")
	helm("upgrade", "dwnsync", chart)
	if cols := printerColumns(t, kubeconfig); !slices.Contains(cols, "Upgraded") {
		t.Fatalf("helm upgrade left the CRD's printer columns at %v; want the new version's column Upgraded", cols)
	}

	helm("uninstall", "dwnsync")
	if out, err := run(t, nil, tool(t, "kubectl"), "--kubeconfig", kubeconfig, "get", "crd", crdName); err != nil {
		t.Fatalf("helm uninstall deleted the CRD (crds.keep=true should keep it): %v\n%s", err, out)
	}
}

// copyChart copies the chart into a temporary directory the test may change.
func copyChart(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "dwnsync")
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(repoRoot(t), chartDir))); err != nil {
		t.Fatal(err)
	}
	return dst
}

// addPrinterColumn makes the copied chart a new version whose CRD shows one more column.
func addPrinterColumn(t *testing.T, chart, name string) {
	t.Helper()
	edit(t, filepath.Join(chart, "Chart.yaml"), "\nversion: 0.1.0\n", "\nversion: 0.1.1\n")
	// Wherever the chart keeps the CRD (crds/ or templates/), the new version changes it there.
	var files []string
	for _, dir := range []string{"crds", "templates"} {
		found, _ := filepath.Glob(filepath.Join(chart, dir, "*.yaml"))
		for _, f := range found {
			if raw, _ := os.ReadFile(f); strings.Contains(string(raw), "\n  name: "+crdName+"\n") {
				files = append(files, f)
			}
		}
	}
	if len(files) != 1 {
		t.Fatalf("want one file with the CRD %s in the chart, found %v", crdName, files)
	}
	edit(t, files[0], "  - additionalPrinterColumns:\n",
		"  - additionalPrinterColumns:\n    - jsonPath: .metadata.generation\n      name: "+name+"\n      type: integer\n")
}

// edit replaces the one occurrence of old in a file.
func edit(t *testing.T, path, old, replacement string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(raw), old) != 1 {
		t.Fatalf("%s: want exactly one %q to replace", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(raw), old, replacement, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// printerColumns returns the names of the CRD's printer columns as the API server has them.
func printerColumns(t *testing.T, kubeconfig string) []string {
	t.Helper()
	out, err := run(t, nil, tool(t, "kubectl"), "--kubeconfig", kubeconfig, "get", "crd", crdName,
		"-o", "jsonpath={.spec.versions[0].additionalPrinterColumns[*].name}")
	if err != nil {
		t.Fatalf("kubectl get crd %s: %v\n%s", crdName, err, out)
	}
	return strings.Fields(out)
}
