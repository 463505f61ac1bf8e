package controllers_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/operator"
	"github.com/dwnsync/dwnsync/internal/status"
)

// While the ledger cannot save checkpoints (a full volume), the operator is not ready and the
// link says Degraded/CheckpointsNotSaved, with a Warning event; both clear once a commit
// succeeds.
func TestOperatorNotReadyWhileCheckpointsAreNotSaved(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	secret, did := signerSecret(t, ns, "full-signer")
	if err := k8sClient.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	// Nothing listens on these ports: the link runs (and persists its state) but cannot connect.
	link := newLink(ns, "full", did, "http://127.0.0.1:9", "full-signer")
	link.Spec.LocalEndpoint = "http://127.0.0.1:7"
	if err := k8sClient.Create(ctx, link); err != nil {
		t.Fatal(err)
	}
	var disk ledger.FullDisk
	disk.Set(true)
	probe := freeAddr(t)
	op, err := operator.New(cfg, operator.Options{
		StateDir: t.TempDir(), MetricsBindAddress: "0", HealthProbeBindAddress: probe,
		WatchNamespaces: []string{ns}, SkipNameValidation: true,
		Logger:             zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.Level(zapLevel()))),
		LedgerBeforeCommit: disk.BeforeCommit,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{op: op, probe: probe}
	r.stop = runUntilStopped(t, "operator", 60*time.Second, op.Start)
	defer r.stop()

	degraded := func() string {
		c := meta.FindStatusCondition(getLink(t, ns, "full").Status.Conditions, v1alpha1.ConditionDegraded)
		if c == nil {
			return "none"
		}
		return c.Reason + ": " + c.Message
	}
	eventually(t, time.Minute, "not ready, and the link Degraded/CheckpointsNotSaved", func() (bool, string) {
		ok, why := r.healthy()
		if !ok {
			return false, why
		}
		ready, why := r.ready()
		d := degraded()
		return !ready && strings.HasPrefix(d, status.ReasonCheckpointsNotSaved+":"),
			fmt.Sprintf("%s; Degraded %s", why, d)
	})
	eventually(t, time.Minute, "a Warning event CheckpointsNotSaved on the link", func() (bool, string) {
		reasons := recorded(t, ns, "full")
		return slices.Contains(reasons, status.ReasonCheckpointsNotSaved), fmt.Sprint(reasons)
	})
	disk.Set(false)
	eventually(t, time.Minute, "ready again, and the condition gone", func() (bool, string) {
		ready, why := r.ready()
		d := degraded()
		return ready && d != "none" && !strings.HasPrefix(d, status.ReasonCheckpointsNotSaved+":"), fmt.Sprintf("%s; Degraded %s", why, d)
	})
}
