package controllers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dwnsync/dwnsync/internal/operator"
)

// One control plane (etcd + kube-apiserver) for every test of this package: starting one takes
// about 3 s on two cores. Tests isolate themselves by namespace.
var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	assetsDir string
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.Level(zapLevel()))))
	dir, err := envtestAssets()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	assetsDir = dir
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: dir,
		// envtest's 20 s default for kube-apiserver to start is too short on a loaded machine.
		ControlPlaneStartTimeout: 2 * time.Minute,
	}
	start := time.Now()
	cfg, err = testEnv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: start envtest with assets %s: %v\n", dir, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "envtest control plane up in %v (assets %s)\n", time.Since(start).Round(time.Millisecond), dir)
	defer func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}()
	k8sClient, err = client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: client:", err)
		return 1
	}
	return m.Run()
}

// envtestAssets finds kube-apiserver and etcd: $KUBEBUILDER_ASSETS, else ../bin/k8s/<version>/
// (where hack/install-tools.sh builds them). Missing binaries fail the suite; never a skip.
func envtestAssets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, checkAssets(dir)
	}
	matches, _ := filepath.Glob(filepath.Join("..", "bin", "k8s", "*"))
	sort.Strings(matches)
	for i := len(matches) - 1; i >= 0; i-- {
		if checkAssets(matches[i]) == nil {
			return filepath.Abs(matches[i])
		}
	}
	return "", fmt.Errorf("kube-apiserver and etcd not found (KUBEBUILDER_ASSETS unset, nothing usable in bin/k8s/): run make test (it builds them)")
}

func checkAssets(dir string) error {
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return fmt.Errorf("%s missing in %s: run make test (it builds them): %w", bin, dir, err)
		}
	}
	return nil
}

func zapLevel() int8 {
	if os.Getenv("DWNSYNC_TEST_VERBOSE") != "" {
		return -2
	}
	return 1 // warnings and errors only; the tests log what matters with t.Log
}

var nsCounter atomic.Int64

// newNamespace creates a namespace for one test.
func newNamespace(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", time.Now().Unix()%100000, nsCounter.Add(1))
	if err := k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// eventually polls cond until it holds or within passes; the failure names what was awaited
// and the last observation.
func eventually(t testing.TB, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	eventuallyEvery(t, 50*time.Millisecond, within, what, cond)
}

// eventuallyEvery is eventually with a chosen polling period (for expensive conditions).
func eventuallyEvery(t testing.TB, every, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	err := wait.PollUntilContextTimeout(context.Background(), every, within, true, func(context.Context) (bool, error) {
		ok, seen := cond()
		last = seen
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out after %v waiting for %s; last seen: %s", within, what, last)
	}
}
