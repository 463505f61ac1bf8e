package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

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

func runStatus(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	var f statusFlags
	fs.StringVar(&f.addr, "addr", standalone.DefaultListen, "address of a running 'dwnsync run' (its --listen)")
	fs.StringVar(&f.output, "o", "", "output: wide, yaml or json (default: the narrow table)")
	fs.Var(aliasFlag{fs, "o"}, "output", "alias of -o")
	fs.BoolVar(&f.cluster, "cluster", false, "read the links from the cluster of the kubeconfig (implied by --kubeconfig, --context, -n, -A and by running as kubectl-dwnsync)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&f.kubeContext, "context", "", "kubeconfig context (default: the current one)")
	fs.StringVar(&f.namespace, "n", "", "namespace (default: the context's)")
	fs.Var(aliasFlag{fs, "n"}, "namespace", "alias of -n")
	fs.BoolVar(&f.allNamespaces, "A", false, "links of all namespaces")
	fs.Var(boolAlias{aliasFlag{fs, "A"}}, "all-namespaces", "alias of -A")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "kubeconfig", "context", "n", "namespace", "A", "all-namespaces":
			f.clusterFlagsSet = true
		case "addr":
			f.addrSet = true
		}
	})
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: status takes flags only (-n NAMESPACE, -A, -o wide)", fs.Arg(0))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := f.fetch(ctx)
	if err != nil {
		return err
	}
	return standalone.PrintLinks(os.Stdout, list, time.Now(), f.output)
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

// isKubectlPlugin reports whether the binary runs as kubectl's plugin `kubectl dwnsync`
// (installed or symlinked as kubectl-dwnsync on the PATH).
func isKubectlPlugin(argv0 string) bool {
	return strings.HasPrefix(filepath.Base(argv0), "kubectl-dwnsync")
}

// boolAlias is an aliasFlag for a bool flag (so `-A` and `--all-namespaces` take no value).
type boolAlias struct{ aliasFlag }

func (boolAlias) IsBoolFlag() bool { return true }
