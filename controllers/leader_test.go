package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dwnsync/dwnsync/internal/operator"
)

// Two replicas with leader election: only the leader runs links and reports ready; when it
// stops (releasing the lease), the standby takes over the links.
func TestOnlyTheLeaderRunsLinks(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	secret, did := signerSecret(t, ns, "ha-signer")
	if err := k8sClient.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	// Nothing listens on these ports: the link runs, but cannot reach its servers.
	link := newLink(ns, "ha", did, "http://127.0.0.1:9", "ha-signer")
	link.Spec.LocalEndpoint = "http://127.0.0.1:7"
	if err := k8sClient.Create(ctx, link); err != nil {
		t.Fatal(err)
	}

	first := startReplica(t, ns)
	eventually(t, time.Minute, "the first replica ready (leader)", first.ready)
	l := readyIs(t, ns, "ha", metav1.ConditionFalse, "EndpointUnreachable", time.Minute)
	key := l.Status.LinkKey
	if _, ok := first.op.Engine().Snapshot(key); !ok {
		t.Fatal("the leader does not run the link")
	}

	second := startReplica(t, ns)
	eventually(t, time.Minute, "the second replica healthy", second.healthy)
	if ok, why := second.ready(); ok {
		t.Fatalf("the standby reports ready: %s", why)
	}
	if _, ok := second.op.Engine().Snapshot(key); ok {
		t.Fatal("the standby runs the link")
	}

	first.stop()
	eventually(t, time.Minute, "the standby takes over", second.ready)
	eventually(t, time.Minute, "the new leader runs the link", func() (bool, string) {
		_, ok := second.op.Engine().Snapshot(key)
		return ok, "not running"
	})
}

type replica struct {
	op    *operator.Operator
	probe string
	stop  func()
}

func startReplica(t *testing.T, ns string) *replica {
	t.Helper()
	return startReplicaWith(t, ns, nil)
}

// startReplicaWith is startReplica with options changed by tune.
func startReplicaWith(t *testing.T, ns string, tune func(*operator.Options)) *replica {
	t.Helper()
	probe := freeAddr(t)
	opts := operator.Options{
		StateDir: t.TempDir(), MetricsBindAddress: "0", HealthProbeBindAddress: probe,
		LeaderElect: true, LeaderElectionNamespace: ns, LeaderElectionID: "dwnsync-" + ns,
		WatchNamespaces: []string{ns}, SkipNameValidation: true,
		Logger: zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.Level(zapLevel()))),
	}
	if tune != nil {
		tune(&opts)
	}
	op, err := operator.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &replica{op: op, probe: probe, stop: runUntilStopped(t, "replica", 60*time.Second, op.Start)}
}

func (r *replica) get(path string) (int, error) {
	resp, err := http.Get("http://" + r.probe + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (r *replica) ready() (bool, string) {
	code, err := r.get("/readyz")
	return code == http.StatusOK, fmt.Sprintf("readyz %d %v", code, err)
}

func (r *replica) healthy() (bool, string) {
	code, err := r.get("/healthz")
	return code == http.StatusOK, fmt.Sprintf("healthz %d %v", code, err)
}
