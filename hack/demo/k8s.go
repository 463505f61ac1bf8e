package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// k8sOp is `bin/dwnsync operator` against a local control plane (envtest: the kube-apiserver
// and etcd that hack/install-tools.sh built into ./bin), driven with bin/kubectl.
type k8sOp struct {
	env        *envtest.Environment
	kubectl    string
	dwnsync    string
	kubeconfig string
	cmd        *exec.Cmd
	done       chan struct{}
}

func startK8s(ctx context.Context, s *story) (operator, error) {
	step("Starting a local control plane (kube-apiserver + etcd from ./bin) with the ReplicationLink CRD")
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		matches, _ := filepath.Glob(filepath.Join(s.root, "bin", "k8s", "*"))
		if len(matches) == 0 {
			return nil, fmt.Errorf("no control-plane binaries in ./bin/k8s: run `make demo-k8s` (it builds them)")
		}
		os.Setenv("KUBEBUILDER_ASSETS", matches[0])
	}
	op := &k8sOp{
		env: &envtest.Environment{
			CRDDirectoryPaths:        []string{filepath.Join(s.root, "config", "crd", "bases")},
			ErrorIfCRDPathMissing:    true,
			ControlPlaneStartTimeout: 2 * time.Minute, // the default 20 s is short on a busy 2-core machine
		},
		kubectl: filepath.Join(s.root, "bin", "kubectl"),
		dwnsync: filepath.Join(s.root, "bin", "dwnsync"),
		done:    make(chan struct{}),
	}
	if _, err := op.env.Start(); err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	user, err := op.env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		op.Stop()
		return nil, err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		op.Stop()
		return nil, err
	}
	op.kubeconfig = filepath.Join(s.work, "kubeconfig")
	if err := os.WriteFile(op.kubeconfig, kc, 0o600); err != nil {
		op.Stop()
		return nil, err
	}

	step("Starting the operator: dwnsync operator --local-endpoint " + s.a.URL)
	metrics, _ := freeAddr()
	probes, _ := freeAddr()
	op.cmd = exec.Command(filepath.Join(s.root, "bin", "dwnsync"), "operator",
		"--local-endpoint", s.a.URL, "--state-dir", filepath.Join(s.work, "operator-state"),
		"--metrics-bind-address", metrics, "--health-probe-bind-address", probes, "--leader-elect=false")
	op.cmd.Env = append(os.Environ(), "KUBECONFIG="+op.kubeconfig)
	logs, err := op.cmd.StderrPipe()
	if err != nil {
		op.Stop()
		return nil, err
	}
	op.cmd.Stdout = os.Stdout
	if err := op.cmd.Start(); err != nil {
		op.Stop()
		return nil, err
	}
	go func() { prefixLines("  [operator] ", logs); close(op.done) }()

	step("kubectl apply -f links.yaml (a Secret and a ReplicationLink)")
	links := filepath.Join(s.work, "links.yaml")
	if err := os.WriteFile(links, []byte(s.linksYAML("demo-signer")), 0o600); err != nil {
		op.Stop()
		return nil, err
	}
	fmt.Println(indent(redactKey(s.linksYAML("demo-signer"))))
	if out, err := op.run(ctx, "apply", "-f", links); err != nil {
		op.Stop()
		return nil, fmt.Errorf("kubectl apply: %v\n%s", err, out)
	} else {
		fmt.Print(indent(out) + "\n")
	}
	return op, nil
}

func (op *k8sOp) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, op.kubectl, append([]string{"--kubeconfig", op.kubeconfig}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (op *k8sOp) Phase(ctx context.Context) (string, bool, error) {
	out, err := op.run(ctx, "get", "replicationlink", "demo-tenant", "-o", "jsonpath={.status.phase},{.status.needsReconcile}")
	if err != nil {
		return "", false, fmt.Errorf("kubectl get: %s", strings.TrimSpace(out))
	}
	phase, dirty, _ := strings.Cut(strings.TrimSpace(out), ",")
	d, _ := strconv.ParseBool(dirty)
	if phase == "" {
		phase = "(no status yet)"
	}
	return phase, d, nil
}

func (op *k8sOp) PrintStatus(ctx context.Context) error {
	for _, args := range [][]string{{"get", "replicationlinks"}, {"get", "rl", "-o", "wide"}} {
		fmt.Println("$ kubectl " + strings.Join(args, " "))
		out, err := op.run(ctx, args...)
		fmt.Print(out)
		if err != nil {
			return err
		}
	}
	// The same view from dwnsync itself (installed as kubectl-dwnsync: `kubectl dwnsync`).
	fmt.Println("$ dwnsync status --kubeconfig " + op.kubeconfig)
	cmd := exec.CommandContext(ctx, op.dwnsync, "status", "--kubeconfig", op.kubeconfig)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

func (op *k8sOp) Stop() {
	if op.cmd != nil && op.cmd.Process != nil {
		_ = op.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-op.done:
		case <-time.After(30 * time.Second):
			_ = op.cmd.Process.Kill()
		}
		_ = op.cmd.Wait()
	}
	_ = op.env.Stop()
}
