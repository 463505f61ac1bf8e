package main

import (
	goflag "flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/engineruntime"
	"github.com/dwnsync/dwnsync/internal/operator"
	"github.com/dwnsync/dwnsync/internal/version"
)

func runOperator(args []string) error { return runCommand(newOperatorCommand(), args) }

// newOperatorCommand is `dwnsync operator`; the Helm chart's StatefulSet passes these flags
// (internal/shiptest checks that every flag it passes is one of them).
func newOperatorCommand() *cobra.Command {
	var o operator.Options
	var localDialect, watch string
	zopts := zap.Options{}
	cmd := &cobra.Command{
		Use:   "operator [flags]",
		Short: "Run the Kubernetes operator (the controller manager)",
		Long: `Run the Kubernetes operator: reconcile the ReplicationLinks of the cluster (in-cluster
config, or $KUBECONFIG / --kubeconfig), keeping their checkpoints in the ledger under
--state-dir. The Helm chart runs it in a StatefulSet. With --leader-elect one replica runs the
links; with --sharding as well, every replica runs a share of them.`,
		Example: `  dwnsync operator --local-endpoint=http://dwn.dwn-system:3000 --state-dir=/var/lib/dwnsync
  dwnsync operator --leader-elect --sharding --shard-ring=dwnsync --zap-log-level=debug`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateEgress(o.Egress); err != nil {
				return err
			}
			o.LocalDialect = dwn.Dialect(localDialect)
			for _, ns := range strings.Split(watch, ",") {
				if ns = strings.TrimSpace(ns); ns != "" {
					o.WatchNamespaces = append(o.WatchNamespaces, ns)
				}
			}
			o.Logger = zap.New(zap.UseFlagOptions(&zopts))
			ctrl.SetLogger(o.Logger)
			memLimit := engineruntime.SetMemoryLimit(memlimit.FromCgroup)
			o.Logger.Info("starting dwnsync operator", "version", version.Version, "commit", version.Commit(), "localEndpoint", o.LocalEndpoint, "stateDir", o.StateDir, "leaderElect", o.LeaderElect, "sharding", o.Sharding.Enabled, "shard", o.Sharding.ShardName, "goMemLimit", memLimit)
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("no Kubernetes API server (in-cluster config, KUBECONFIG or --kubeconfig): %w; without a cluster use 'dwnsync run -f FILE'", err)
			}
			op, err := operator.New(cfg, o)
			if err != nil {
				return err
			}
			return op.Start(ctrl.SetupSignalHandler())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.LocalEndpoint, "local-endpoint", "", "base URL of the cluster's own DWN server; links without spec.localEndpoint replicate to it")
	localDialectFlag(cmd, &localDialect)
	fs.StringVar(&o.StateDir, "state-dir", "/var/lib/dwnsync", "directory of the ledger (checkpoints); a PVC in the chart")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", ":8080", "address of /metrics; 0 disables")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 disables")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect one active replica; only the leader runs links")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the election Lease (default: the pod's)")
	fs.BoolVar(&o.Sharding.Enabled, "sharding", false, "every replica is a shard running a share of the links (needs --leader-elect: the leader assigns them)")
	fs.StringVar(&o.Sharding.ShardName, "shard-name", os.Getenv("POD_NAME"), "this replica's shard name (default: $POD_NAME)")
	fs.StringVar(&o.Sharding.LeaseNamespace, "shard-lease-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the shard Leases (default: $POD_NAMESPACE)")
	fs.IntVar(&o.Sharding.MaxDrains, "shard-max-drains", operator.DefaultMaxDrains, "links drained at once when shards join or the ring rebalances (a joining shard's share moves in batches of this size)")
	fs.StringVar(&o.Sharding.Ring, "shard-ring", "dwnsync", "name of this installation's set of shards (the Leases' shard.dwnsync.io/ring label)")
	fs.StringVar(&watch, "watch-namespaces", "", "comma-separated namespaces to watch (default: all; alias --watch-namespace)")
	aliases(fs, map[string]string{"watch-namespace": "watch-namespaces"})
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", 4, "ReplicationLinks reconciled in parallel")
	fs.DurationVar(&o.MinCounterInterval, "status-counter-interval", 5*time.Second, "shortest time between two counter-only status writes of one link")
	fs.DurationVar(&o.GracefulShutdownTimeout, "graceful-shutdown-timeout", 30*time.Second, "how long shutdown waits for links to stop and the ledger to flush")
	egressFlags(fs, &o.Egress)
	zapFlags(cmd, &zopts)
	// controller-runtime registers --kubeconfig on Go's command line; ctrl.GetConfig reads it.
	if kc := goflag.CommandLine.Lookup("kubeconfig"); kc != nil {
		fs.AddGoFlag(kc)
	}
	return cmd
}
