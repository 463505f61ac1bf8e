package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
)

// clusterFlags choose a cluster and a namespace, with kubectl's names and kubeconfig rules.
type clusterFlags struct {
	cluster                 bool
	kubeconfig, kubeContext string
	namespace               string
}

// clusterFlagNames are the flags that imply cluster mode.
var clusterFlagNames = []string{"kubeconfig", "context", "namespace", "cluster"}

func (f *clusterFlags) register(fs *pflag.FlagSet, what string) {
	fs.BoolVar(&f.cluster, "cluster", false, what+" of the cluster of the kubeconfig (implied by --kubeconfig, --context, -n and by running as kubectl-dwnsync)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&f.kubeContext, "context", "", "kubeconfig context (default: the current one)")
	fs.StringVarP(&f.namespace, "namespace", "n", "", "namespace (default: the context's)")
}

// inCluster says whether cmd reads a cluster rather than a 'dwnsync run' at --addr: a cluster flag
// was given, or it runs as the kubectl plugin without --addr.
func inCluster(cmd *cobra.Command, extra ...string) (bool, error) {
	cluster := false
	for _, name := range append(clusterFlagNames, extra...) {
		cluster = cluster || cmd.Flags().Changed(name)
	}
	addrSet := cmd.Flags().Changed("addr")
	if cluster && addrSet {
		return false, fmt.Errorf("--addr reads a 'dwnsync run' and the cluster flags read a cluster: pass one or the other")
	}
	return cluster || (isKubectlPlugin(os.Args[0]) && !addrSet), nil
}

// client connects to the cluster and returns the namespace to use.
func (f *clusterFlags) client() (client.Client, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: f.kubeContext}
	overrides.Context.Namespace = f.namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("no cluster to read (kubeconfig): %w; pass --kubeconfig, or --addr for a 'dwnsync run'", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig namespace: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	return c, ns, err
}
