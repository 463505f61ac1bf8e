package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/standalone"
)

// statusFlags are the flags of `dwnsync status`: kubectl's names where kubectl has one.
type statusFlags struct {
	clusterFlags
	addr, output  string
	allNamespaces bool
}

func runStatus(args []string) error { return runCommand(newStatusCommand(), args) }

// outputs are the values of `dwnsync status -o`.
var outputs = []string{"wide", "yaml", "json"}

func newStatusCommand() *cobra.Command {
	var f statusFlags
	cmd := &cobra.Command{
		Use:   "status [-n NAMESPACE | -A] [-o wide|yaml|json]",
		Short: "Print the links of a running 'dwnsync run', or of a cluster",
		Long: `Print the links and their state, in the columns of 'kubectl get replicationlinks': from a
running 'dwnsync run' (--addr, its --listen), or from a cluster (--kubeconfig, --context, -n,
-A, or --cluster). Installed or symlinked on the PATH as kubectl-dwnsync it is a kubectl
plugin reading the cluster: 'kubectl dwnsync -A' is 'kubectl dwnsync status -A'.`,
		Example: `  dwnsync status
  dwnsync status --addr 127.0.0.1:8089 -o wide
  dwnsync status --kubeconfig ~/.kube/config -A -o json
  kubectl dwnsync -n team-a`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cluster, err := inCluster(cmd, "all-namespaces")
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			list, err := f.fetch(ctx, cluster)
			if err != nil {
				return err
			}
			return standalone.PrintLinks(os.Stdout, list, time.Now(), f.output)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.addr, "addr", standalone.DefaultListen, "address of a running 'dwnsync run' (its --listen)")
	fs.StringVarP(&f.output, "output", "o", "", "output: wide, yaml or json (default: the narrow table)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputs, cobra.ShellCompDirectiveNoFileComp))
	f.register(fs, "read the links")
	_ = cmd.MarkFlagFilename("kubeconfig")
	fs.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "links of all namespaces")
	// --n, --A and --o, as Go's flag package took them.
	aliases(fs, map[string]string{"n": "namespace", "A": "all-namespaces", "o": "output"})
	return cmd
}

func (f statusFlags) fetch(ctx context.Context, cluster bool) (*v1alpha1.ReplicationLinkList, error) {
	if !cluster {
		return standalone.FetchStatus(ctx, f.addr)
	}
	return fetchClusterLinks(ctx, &f.clusterFlags, f.allNamespaces)
}

// fetchClusterLinks lists the ReplicationLinks of a namespace (or all) with kubectl's
// kubeconfig rules.
func fetchClusterLinks(ctx context.Context, f *clusterFlags, all bool) (*v1alpha1.ReplicationLinkList, error) {
	c, ns, err := f.client()
	if err != nil {
		return nil, err
	}
	list := &v1alpha1.ReplicationLinkList{}
	var opts []client.ListOption
	if !all {
		opts = append(opts, client.InNamespace(ns))
	}
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, fmt.Errorf("listing ReplicationLinks (is the dwnsync CRD installed?): %w", err)
	}
	list.APIVersion, list.Kind = v1alpha1.GroupVersion.String(), "ReplicationLinkList"
	return list, nil
}
