package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/standalone"
)

// statusFlags are the flags of `dwnsync status`: kubectl's names where kubectl has one.
type statusFlags struct {
	addr, output             string
	cluster, allNamespaces   bool
	kubeconfig, kubeContext  string
	namespace                string
	clusterFlagsSet, addrSet bool
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
			for _, name := range []string{"kubeconfig", "context", "namespace", "all-namespaces"} {
				f.clusterFlagsSet = f.clusterFlagsSet || cmd.Flags().Changed(name)
			}
			f.addrSet = cmd.Flags().Changed("addr")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			list, err := f.fetch(ctx)
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
	fs.BoolVar(&f.cluster, "cluster", false, "read the links from the cluster of the kubeconfig (implied by --kubeconfig, --context, -n, -A and by running as kubectl-dwnsync)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	_ = cmd.MarkFlagFilename("kubeconfig")
	fs.StringVar(&f.kubeContext, "context", "", "kubeconfig context (default: the current one)")
	fs.StringVarP(&f.namespace, "namespace", "n", "", "namespace (default: the context's)")
	fs.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "links of all namespaces")
	// --n, --A and --o, as Go's flag package took them.
	aliases(fs, map[string]string{"n": "namespace", "A": "all-namespaces", "o": "output"})
	return cmd
}

func (f statusFlags) fetch(ctx context.Context) (*v1alpha1.ReplicationLinkList, error) {
	cluster := f.cluster || f.clusterFlagsSet || (isKubectlPlugin(os.Args[0]) && !f.addrSet)
	if !cluster {
		return standalone.FetchStatus(ctx, f.addr)
	}
	if f.addrSet {
		return nil, fmt.Errorf("--addr reads a 'dwnsync run' and the cluster flags read a cluster: pass one or the other")
	}
	return fetchClusterLinks(ctx, f.kubeconfig, f.kubeContext, f.namespace, f.allNamespaces)
}

// fetchClusterLinks lists the ReplicationLinks of a namespace (or all) with kubectl's
// kubeconfig rules.
func fetchClusterLinks(ctx context.Context, kubeconfig, kubeContext, namespace string, all bool) (*v1alpha1.ReplicationLinkList, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: kubeContext}
	overrides.Context.Namespace = namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no cluster to read (kubeconfig): %w; pass --kubeconfig, or --addr for a 'dwnsync run'", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig namespace: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
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
