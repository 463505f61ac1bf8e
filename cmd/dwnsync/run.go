package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/spf13/cobra"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/engineruntime"
	"github.com/dwnsync/dwnsync/internal/standalone"
)

func runStandalone(args []string) error { return runCommand(newRunCommand(), args) }

// newRunCommand is `dwnsync run`: the links of YAML files, without a cluster.
func newRunCommand() *cobra.Command {
	var files []string
	var o standalone.Options
	var localDialect string
	// Human-readable console logs for a terminal, at info: --zap-log-level=debug shows every
	// feed and WebSocket event.
	zopts := zap.Options{Development: true, Level: zapcore.InfoLevel}
	cmd := &cobra.Command{
		Use:   "run -f FILE... [flags]",
		Short: "Run links from YAML (Secrets and ReplicationLinks), without a cluster",
		Long: `Run the ReplicationLinks of YAML files (with the Secrets holding their signers) without a
Kubernetes cluster, keeping their checkpoints in the ledger under --state-dir. --listen serves
/healthz, /metrics and /status (read by 'dwnsync status' and 'dwnsync deadletters').
SIGHUP re-reads the files; SIGTERM or Ctrl-C stops the links and flushes the ledger.`,
		Example: `  dwnsync run -f config/samples/standalone-links.yaml
  dwnsync run -f secrets.yaml -f links.yaml --state-dir ./state --listen 127.0.0.1:8089
  dwnsync run links.yaml --local-endpoint http://127.0.0.1:3000 --zap-log-level=debug`,
		RunE: func(_ *cobra.Command, args []string) error {
			if err := validateEgress(o.Egress); err != nil {
				return err
			}
			o.Files = append(files, args...)
			o.Defaults.LocalDialect = dwn.Dialect(localDialect)
			o.Logger = zap.New(zap.UseFlagOptions(&zopts))
			o.Logger.V(1).Info("Go memory limit", "goMemLimit", engineruntime.SetMemoryLimit(memlimit.FromCgroup))
			return runLinks(o)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&files, "filename", "f", nil, "YAML file of Secrets and ReplicationLinks (repeatable; files may also be given as arguments)")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml")
	aliases(fs, map[string]string{"f": "filename"}) // --f, as Go's flag package took it
	fs.StringVar(&o.StateDir, "state-dir", "./dwnsync-state", "directory of the ledger (checkpoints)")
	fs.StringVar(&o.Listen, "listen", standalone.DefaultListen, "address of /healthz, /metrics and /status")
	fs.StringVar(&o.Defaults.LocalEndpoint, "local-endpoint", "", "local DWN server for links without spec.localEndpoint")
	localDialectFlag(cmd, &localDialect)
	fs.DurationVar(&o.ProgressEvery, "progress-every", standalone.DefaultProgressEvery, "period of the progress log lines")
	egressFlags(fs, &o.Egress)
	zapFlags(cmd, &zopts)
	return cmd
}

// runLinks runs standalone until SIGTERM or an interrupt; SIGHUP reloads the files.
func runLinks(o standalone.Options) error {
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
