package controllers_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/controllers"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/operator"
)

// applyCounter counts the messages the engine writes to a DWN server: dwn.processMessage
// calls (the JSON-RPC travels in the dwn-request header) for anything but Messages reads and
// queries.
type applyCounter struct {
	n    atomic.Int64
	base http.RoundTripper
}

func (c *applyCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if h := r.Header.Get("dwn-request"); strings.Contains(h, `"dwn.processMessage"`) && !strings.Contains(h, `"interface":"Messages"`) {
		c.n.Add(1)
	}
	return c.base.RoundTrip(r)
}

type runningOperator struct {
	op      *operator.Operator
	metrics string // host:port of /metrics
	stop    func()
}

// startOperator runs the real operator (manager + reconciler + engine) limited to ns.
func startOperator(t *testing.T, ns, local, stateDir string, counter *applyCounter) *runningOperator {
	t.Helper()
	return startOperatorIn(t, []string{ns}, local, stateDir, counter)
}

// startOperatorIn runs the real operator limited to namespaces.
func startOperatorIn(t *testing.T, namespaces []string, local, stateDir string, counter *applyCounter) *runningOperator {
	t.Helper()
	metricsAddr := freeAddr(t)
	op, err := operator.New(cfg, operator.Options{
		LocalEndpoint: local, StateDir: stateDir,
		MetricsBindAddress: metricsAddr, HealthProbeBindAddress: "0",
		WatchNamespaces: namespaces, SkipNameValidation: true,
		MinCounterInterval: time.Second,
		HTTPClient:         &http.Client{Transport: counter},
		Logger:             zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.Level(zapLevel()))),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := runUntilStopped(t, "operator", 60*time.Second, op.Start)
	return &runningOperator{op: op, metrics: metricsAddr, stop: stop}
}

// The acceptance story on real parts: envtest + the operator with the real engine + two real
// @web5/dwn-server instances.
func TestOperatorReplicatesBetweenRealServers(t *testing.T) {
	servers := dwnserver.Start(t, 2)
	a, b := servers[0], servers[1] // a: the cluster's own server (--local-endpoint), b: remote
	client := dwnserver.NewClient(t)
	id, err := client.NewTenant()
	if err != nil {
		t.Fatal(err)
	}
	sa, err := client.Seed(a.URL, id, dwnserver.SeedSpec{Records: 15, Large: 2, Updates: 3, Deletes: 2, Prefix: "a"})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := client.Seed(b.URL, id, dwnserver.SeedSpec{Records: 10, Prefix: "b"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded A with %d messages, B with %d", sa.Messages, sb.Messages)

	ns := newNamespace(t)
	ctx := context.Background()
	stateDir := t.TempDir()
	counter := &applyCounter{base: http.DefaultTransport.(*http.Transport).Clone()}
	run := startOperator(t, ns, a.URL, stateDir, counter)

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenant-signer", Labels: map[string]string{controllers.SignerLabel: "true"}},
		Data: map[string][]byte{"did": []byte(id.DID), "privateJwk": id.PrivateJWK}}
	if err := k8sClient.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(ctx, newLink(ns, "tenant", id.DID, b.URL, "tenant-signer")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l := waitLive(t, ns, "tenant", 3*time.Minute)
	t.Logf("live with Ready=True after %v: pulled %d, pushed %d, dialect %s", time.Since(start).Round(time.Millisecond),
		applied(l.Status.Pull), applied(l.Status.Push), l.Status.Dialect)
	key := l.Status.LinkKey
	converged(t, client, a.URL, b.URL, id, 3*time.Minute)
	eventually(t, time.Minute, "the bootstrap's progress in the status", func() (bool, string) {
		p := getLink(t, ns, "tenant").Status.Progress
		if p == nil {
			return false, "no progress"
		}
		return p.Applied > 0 && p.Total >= p.Applied, fmt.Sprintf("%d/%d", p.Applied, p.Total)
	})

	// Live writes on either side reach the other.
	wa, err := client.Write(a.URL, id, dwnserver.WriteOpts{Data: []byte("written on A"), DataFormat: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	wb, err := client.Write(b.URL, id, dwnserver.WriteOpts{Data: []byte("written on B"), DataFormat: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	holds(t, client, b.URL, id, wa.CID, time.Minute)
	holds(t, client, a.URL, id, wb.CID, time.Minute)

	// The manager's /metrics carries the engine's per-link series and the status writes.
	metrics := scrape(t, run.metrics)
	for _, want := range []string{`dwnsync_link_phase{name="tenant",namespace="` + ns + `",phase="live"} 1`, "dwnsync_messages_applied_total{", "dwnsync_status_writes_total{"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	out := kubectl(t, "get", "replicationlinks", "-n", ns)
	t.Logf("bin/kubectl get replicationlinks -n %s\n%s", ns, out)
	if !strings.Contains(out, "live") || !strings.Contains(out, "STATUS") || !strings.Contains(out, "PROGRESS") {
		t.Fatalf("kubectl does not show the link live:\n%s", out)
	}
	t.Logf("bin/kubectl get rl -o wide -n %s\n%s", ns, kubectl(t, "get", "rl", "-o", "wide", "-n", ns))

	// suspend → paused → resume → live, and what was written meanwhile arrives.
	updateLink(t, ns, "tenant", func(l *v1alpha1.ReplicationLink) { l.Spec.Suspend = true })
	l = readyIs(t, ns, "tenant", metav1.ConditionFalse, "Suspended", time.Minute)
	if l.Status.Phase != v1alpha1.PhasePaused {
		t.Fatalf("suspended link phase %q", l.Status.Phase)
	}
	wp, err := client.Write(a.URL, id, dwnserver.WriteOpts{Data: []byte("written while paused"), DataFormat: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	updateLink(t, ns, "tenant", func(l *v1alpha1.ReplicationLink) { l.Spec.Suspend = false })
	waitLive(t, ns, "tenant", 2*time.Minute)
	holds(t, client, b.URL, id, wp.CID, time.Minute)
	converged(t, client, a.URL, b.URL, id, time.Minute)

	// Operator restart (new manager, same state dir): resumes from the checkpoints, copies only
	// what is new.
	before, _ := run.op.Engine().Snapshot(key) // the status counters are coalesced; the engine's are exact
	run.stop()
	wr, err := client.Write(a.URL, id, dwnserver.WriteOpts{Data: []byte("written while the operator was down"), DataFormat: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	appliesBefore := counter.n.Load()
	run = startOperator(t, ns, a.URL, stateDir, counter)
	restart := time.Now()
	holds(t, client, b.URL, id, wr.CID, 2*time.Minute)
	waitLive(t, ns, "tenant", 2*time.Minute)
	converged(t, client, a.URL, b.URL, id, time.Minute)
	after, _ := run.op.Engine().Snapshot(key)
	copied := counter.n.Load() - appliesBefore
	t.Logf("after restart: live again in %v; messages written to a server: %d (1 new); counters pulled %d→%d, pushed %d→%d",
		time.Since(restart).Round(time.Millisecond), copied, before.Pull.Applied, after.Pull.Applied, before.Push.Applied, after.Push.Applied)
	if copied > 3 {
		t.Fatalf("restart re-copied: %d messages written to the servers for 1 new record", copied)
	}
	if got := after.Pull.Applied + after.Push.Applied - before.Pull.Applied - before.Push.Applied; got != 1 {
		t.Fatalf("applied counters grew by %d across the restart, want 1", got)
	}

	// Delete → the finalizer stops the link and removes its ledger record.
	if err := k8sClient.Delete(ctx, getLink(t, ns, "tenant")); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "link deleted", func() (bool, string) {
		err := k8sClient.Get(ctx, keyOf(ns, "tenant"), &v1alpha1.ReplicationLink{})
		return apierrors.IsNotFound(err), errString(err)
	})
	if _, ok := run.op.Engine().Snapshot(key); ok {
		t.Fatal("engine still runs the deleted link")
	}
	run.stop()
	store, err := ledger.Open(filepath.Join(stateDir, operator.LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, found, err := store.Get(key); err != nil || found {
		t.Fatalf("ledger record of the deleted link: found=%v err=%v", found, err)
	}
}

func waitLive(t *testing.T, ns, name string, within time.Duration) *v1alpha1.ReplicationLink {
	t.Helper()
	var l *v1alpha1.ReplicationLink
	eventually(t, within, name+" live with Ready=True", func() (bool, string) {
		l = &v1alpha1.ReplicationLink{}
		if err := k8sClient.Get(context.Background(), keyOf(ns, name), l); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(l.Status.Conditions, v1alpha1.ConditionReady)
		seen := fmt.Sprintf("phase %q needsReconcile %v lastError %q", l.Status.Phase, l.Status.NeedsReconcile, l.Status.LastError)
		if c != nil {
			seen += " Ready=" + string(c.Status) + "/" + c.Reason
		}
		return l.Status.Phase == v1alpha1.PhaseLive && c != nil && c.Status == metav1.ConditionTrue, seen
	})
	return l
}

func converged(t *testing.T, client *dwnserver.Client, a, b string, id dwnserver.Identity, within time.Duration) {
	t.Helper()
	eventually(t, within, "both servers list the same CIDs", func() (bool, string) {
		la, err := client.Query(a, id)
		if err != nil {
			return false, err.Error()
		}
		lb, err := client.Query(b, id)
		if err != nil {
			return false, err.Error()
		}
		slices.Sort(la)
		slices.Sort(lb)
		return slices.Equal(la, lb), fmt.Sprintf("A %d CIDs, B %d", len(la), len(lb))
	})
}

func holds(t *testing.T, client *dwnserver.Client, url string, id dwnserver.Identity, cid string, within time.Duration) {
	t.Helper()
	eventually(t, within, url+" holds "+cid, func() (bool, string) {
		cids, err := client.Query(url, id)
		if err != nil {
			return false, err.Error()
		}
		return slices.Contains(cids, cid), fmt.Sprintf("%d CIDs", len(cids))
	})
}

func applied(d *v1alpha1.DirectionStatus) int64 {
	if d == nil {
		return 0
	}
	return d.Applied
}

// kubeconfigFile writes a kubeconfig for an admin user of the envtest API server, for a process
// of its own (kubectl, the dwnsync binary).
func kubeconfigFile(t *testing.T, user string) string {
	t.Helper()
	u, err := testEnv.AddUser(envtest.User{Name: user, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// kubectl runs the kubectl built by hack/install-tools.sh against the envtest API server.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	path := kubeconfigFile(t, "kubectl")
	bin := filepath.Join(assetsDir, "kubectl")
	if _, err := os.Stat(bin); err != nil {
		bin = filepath.Join("..", "bin", "kubectl")
	}
	out, err := exec.Command(bin, append([]string{"--kubeconfig", path}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
