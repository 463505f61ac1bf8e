package controllers_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/faulttest"
	"github.com/dwnsync/dwnsync/internal/operator"
)

// `dwnsync operator` (the binary, against the envtest API server) is killed with SIGKILL at
// random points of a 3,000-message bootstrap between two real servers and started again on the
// same --state-dir: no graceful shutdown, no final ledger flush. The ledger opens after every
// kill and says the bootstrap is unfinished; in the end the link is live with Ready=True, both
// servers hold the same messages with the same data, and the remote received at most 1.2
// writes per message (counted per CID by a proxy in front of it).
func TestOperatorSurvivesKill9DuringBootstrap(t *testing.T) {
	bs := faulttest.NewBootstrap(t)
	ns := newNamespace(t)
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenant-signer", Labels: map[string]string{controllers.SignerLabel: "true"}},
		Data: map[string][]byte{"did": []byte(bs.Tenant.DID), "privateJwk": bs.Tenant.PrivateJWK}}
	if err := k8sClient.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(ctx, newLink(ns, "tenant", bs.Tenant.DID, bs.Proxy.URL, "tenant-signer")); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	env := []string{"KUBECONFIG=" + kubeconfigFile(t, "dwnsync-operator")}
	bs.Run(t, faulttest.KillRun{
		Start: func(n int) *faulttest.Process {
			return faulttest.StartProcess(t, filepath.Join(dir, fmt.Sprintf("operator-%d.log", n)), env, bs.Bin, "operator",
				"--local-endpoint", bs.Source.URL, "--state-dir", stateDir, "--watch-namespaces", ns,
				"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--zap-log-level", "info")
		},
		Ledger: filepath.Join(stateDir, operator.LedgerFile),
		LinkKey: func(p *faulttest.Process) (key string) {
			faulttest.Await(t, 2*time.Minute, "the link's ledger key in its status", p, func() (bool, string) {
				key = getLink(t, ns, "tenant").Status.LinkKey
				return key != "", "no status.linkKey"
			})
			return key
		},
	}, func() (bool, string) {
		l := getLink(t, ns, "tenant")
		return l.Status.Phase == v1alpha1.PhaseLive && !l.Status.NeedsReconcile && meta.IsStatusConditionTrue(l.Status.Conditions, v1alpha1.ConditionReady),
			fmt.Sprintf("phase %q needsReconcile %v lastError %q", l.Status.Phase, l.Status.NeedsReconcile, l.Status.LastError)
	})
}
