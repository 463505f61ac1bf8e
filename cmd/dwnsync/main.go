// Command dwnsync replicates DWN tenants between DWN servers: `dwnsync operator` in a
// Kubernetes cluster, `dwnsync run -f links.yaml` without one. The logic lives in internal/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/operator"
	"github.com/dwnsync/dwnsync/internal/standalone"
	"github.com/dwnsync/dwnsync/internal/version"
)

const usage = `dwnsync keeps DWN tenants converged between DWN servers.

Usage:
  dwnsync operator [flags]        run the Kubernetes operator (controller manager)
  dwnsync run -f FILE... [flags]  run links from YAML (Secrets + ReplicationLinks), no cluster
  dwnsync status [flags]          print the links of a running 'dwnsync run' (--addr), or of a
                                  cluster (--kubeconfig, -n, -A); as kubectl-dwnsync, a kubectl plugin
  dwnsync deadletters list|retry|clear LINK [--addr ADDR]
                                  list a link's dead letters, retry them, or forget them
  dwnsync ledger check --state-dir DIR
                                  verify the ledger file (exit 0 sound, 1 damaged, 2 cannot check)
  dwnsync version                 print the version

Run 'dwnsync COMMAND -h' for the flags of a command.
`

func main() {
	if isKubectlPlugin(os.Args[0]) && (len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-")) {
		// `kubectl dwnsync [-A|-n NS|-o wide]` lists the links, like `kubectl dwnsync status`.
		os.Args = append([]string{os.Args[0], "status"}, os.Args[1:]...)
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "operator":
		err = runOperator(args)
	case "run":
		err = runStandalone(args)
	case "status":
		err = runStatus(args)
	case "ledger":
		os.Exit(runLedger(args, os.Stdout, os.Stderr))
	case "deadletters":
		err = runDeadLetters(args, os.Stdout)
	case "version", "--version":
		fmt.Println("dwnsync", version.Version, "commit", version.Commit())
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "dwnsync: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dwnsync:", err)
		os.Exit(1)
	}
}

// aliasFlag forwards to another flag of the same set.
type aliasFlag struct {
	fs   *flag.FlagSet
	name string
}

func (a aliasFlag) String() string {
	if a.fs == nil {
		return ""
	}
	return a.fs.Lookup(a.name).Value.String()
}
func (a aliasFlag) Set(v string) error { return a.fs.Set(a.name, v) }

// stringList is a repeatable flag (-f a.yaml -f b.yaml).
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// egressList is a repeatable flag of comma-separated CIDRs, IPs and host names.
type egressList struct{ list *[]string }

func (e egressList) String() string {
	if e.list == nil {
		return ""
	}
	return strings.Join(*e.list, ",")
}

func (e egressList) Set(v string) error {
	*e.list = append(*e.list, wire.SplitEgressList(v)...)
	return nil
}

// egressFlags binds --egress-allow and --egress-deny (operator and run share them).
func egressFlags(fs *flag.FlagSet, p *wire.EgressPolicy) {
	fs.Var(egressList{&p.Allow}, "egress-allow", "CIDRs, IPs or host names the DWN client may reach even if denied (comma-separated, repeatable)")
	fs.Var(egressList{&p.Deny}, "egress-deny", "CIDRs, IPs or host names the DWN client must not reach, beyond the default (link-local and cloud metadata addresses) (comma-separated, repeatable)")
}

// validateEgress names the flag of a bad entry.
func validateEgress(p wire.EgressPolicy) error {
	if err := (wire.EgressPolicy{Allow: p.Allow}).Validate(); err != nil {
		return fmt.Errorf("--egress-allow: %w", err)
	}
	if err := (wire.EgressPolicy{Deny: p.Deny}).Validate(); err != nil {
		return fmt.Errorf("--egress-deny: %w", err)
	}
	return nil
}

func runOperator(args []string) error {
	fs := flag.NewFlagSet("operator", flag.ContinueOnError)
	var o operator.Options
	var localDialect string
	fs.StringVar(&o.LocalEndpoint, "local-endpoint", "", "base URL of the cluster's own DWN server; links without spec.localEndpoint replicate to it")
	fs.StringVar(&localDialect, "local-dialect", "auto", "dialect of the local server: auto, web5, enbox or enbox-smt")
	fs.StringVar(&o.StateDir, "state-dir", "/var/lib/dwnsync", "directory of the ledger (checkpoints); a PVC in the chart")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", ":8080", "address of /metrics; 0 disables")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 disables")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect one active replica; only the leader runs links")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the election Lease (default: the pod's)")
	fs.BoolVar(&o.Sharding.Enabled, "sharding", false, "every replica is a shard running a share of the links (needs --leader-elect: the leader assigns them)")
	fs.StringVar(&o.Sharding.ShardName, "shard-name", os.Getenv("POD_NAME"), "this replica's shard name (default: $POD_NAME)")
	fs.StringVar(&o.Sharding.LeaseNamespace, "shard-lease-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the shard Leases (default: $POD_NAMESPACE)")
	fs.StringVar(&o.Sharding.Ring, "shard-ring", "dwnsync", "name of this installation's set of shards (the Leases' shard.dwnsync.io/ring label)")
	watch := fs.String("watch-namespaces", "", "comma-separated namespaces to watch (default: all)")
	fs.Var(aliasFlag{fs, "watch-namespaces"}, "watch-namespace", "alias of --watch-namespaces")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", 4, "ReplicationLinks reconciled in parallel")
	fs.DurationVar(&o.MinCounterInterval, "status-counter-interval", 5*time.Second, "shortest time between two counter-only status writes of one link")
	fs.DurationVar(&o.GracefulShutdownTimeout, "graceful-shutdown-timeout", 30*time.Second, "how long shutdown waits for links to stop and the ledger to flush")
	egressFlags(fs, &o.Egress)
	zopts := zap.Options{}
	zopts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := validateEgress(o.Egress); err != nil {
		return err
	}
	o.LocalDialect = dwn.Dialect(localDialect)
	for _, ns := range strings.Split(*watch, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			o.WatchNamespaces = append(o.WatchNamespaces, ns)
		}
	}
	o.Logger = zap.New(zap.UseFlagOptions(&zopts))
	ctrl.SetLogger(o.Logger)
	o.Logger.Info("starting dwnsync operator", "version", version.Version, "localEndpoint", o.LocalEndpoint, "stateDir", o.StateDir, "leaderElect", o.LeaderElect, "sharding", o.Sharding.Enabled, "shard", o.Sharding.ShardName)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("no Kubernetes API server (in-cluster config or KUBECONFIG): %w; without a cluster use 'dwnsync run -f FILE'", err)
	}
	op, err := operator.New(cfg, o)
	if err != nil {
		return err
	}
	return op.Start(ctrl.SetupSignalHandler())
}

func runStandalone(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var files stringList
	var o standalone.Options
	var localDialect string
	fs.Var(&files, "f", "YAML file of Secrets and ReplicationLinks (repeatable)")
	fs.StringVar(&o.StateDir, "state-dir", "./dwnsync-state", "directory of the ledger (checkpoints)")
	fs.StringVar(&o.Listen, "listen", standalone.DefaultListen, "address of /healthz, /metrics and /status")
	fs.StringVar(&o.Defaults.LocalEndpoint, "local-endpoint", "", "local DWN server for links without spec.localEndpoint")
	fs.StringVar(&localDialect, "local-dialect", "auto", "dialect of the local server: auto, web5, enbox or enbox-smt")
	fs.DurationVar(&o.ProgressEvery, "progress-every", standalone.DefaultProgressEvery, "period of the progress log lines")
	egressFlags(fs, &o.Egress)
	// Human-readable console logs for a terminal, at info: --zap-log-level=debug shows every
	// feed and WebSocket event.
	zopts := zap.Options{Development: true, Level: zapcore.InfoLevel}
	zopts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := validateEgress(o.Egress); err != nil {
		return err
	}
	files = append(files, fs.Args()...)
	o.Files = files
	o.Defaults.LocalDialect = dwn.Dialect(localDialect)
	o.Logger = zap.New(zap.UseFlagOptions(&zopts))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	o.Reload = reload
	return standalone.Run(ctx, o)
}

// runLedger is `dwnsync ledger check --state-dir DIR`; the work is ledger.CheckCommand.
func runLedger(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: dwnsync ledger check --state-dir DIR")
		return ledger.CheckCannotRun
	}
	fs := flag.NewFlagSet("ledger check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", "", "directory of the ledger (the --state-dir of dwnsync run or the operator)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ledger.CheckOK
		}
		return ledger.CheckCannotRun
	}
	return ledger.CheckCommand(*stateDir, stdout, stderr)
}
