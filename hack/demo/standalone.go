package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dwnsync/dwnsync/internal/standalone"
)

// standaloneOp is `bin/dwnsync run -f links.yaml` as a child process.
type standaloneOp struct {
	bin, addr string
	cmd       *exec.Cmd
	done      chan struct{}
}

func startStandalone(ctx context.Context, s *story) (operator, error) {
	links := filepath.Join(s.work, "links.yaml")
	if err := os.WriteFile(links, []byte(s.linksYAML("demo-signer")), 0o600); err != nil {
		return nil, err
	}
	step("Running dwnsync run -f links.yaml (a Secret and a ReplicationLink, as you would kubectl apply)")
	fmt.Println(indent(redactKey(s.linksYAML("demo-signer"))))
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	op := &standaloneOp{bin: filepath.Join(s.root, "bin", "dwnsync"), addr: addr, done: make(chan struct{})}
	if _, err := os.Stat(op.bin); err != nil {
		return nil, fmt.Errorf("%s is missing: run `make demo` (it builds it)", op.bin)
	}
	op.cmd = exec.Command(op.bin, "run", "-f", links,
		"--state-dir", filepath.Join(s.work, "state"), "--listen", addr, "--progress-every", "2s")
	out, err := op.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	op.cmd.Stdout = os.Stdout
	if err := op.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { prefixLines("  [dwnsync] ", out); close(op.done) }()
	return op, nil
}

func (op *standaloneOp) Phase(ctx context.Context) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := standalone.FetchStatus(ctx, op.addr)
	if err != nil {
		return "", false, fmt.Errorf("not answering yet")
	}
	if len(list.Items) == 0 {
		return "", false, fmt.Errorf("no link yet")
	}
	st := list.Items[0].Status
	return string(st.Phase), st.NeedsReconcile, nil
}

func (op *standaloneOp) PrintStatus(ctx context.Context) error {
	for _, extra := range [][]string{nil, {"-o", "wide"}} {
		args := append([]string{"status", "--addr", op.addr}, extra...)
		fmt.Printf("$ dwnsync %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, op.bin, args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return err
		}
	}
	return nil
}

func (op *standaloneOp) Stop() {
	if op.cmd.Process == nil {
		return
	}
	_ = op.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-op.done:
	case <-time.After(20 * time.Second):
		_ = op.cmd.Process.Kill()
	}
	_ = op.cmd.Wait()
}

// prefixLines copies a child's log to stdout, indented, so the story stays readable.
func prefixLines(prefix string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fmt.Println(prefix + sc.Text())
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// redactKey hides the private key when the links file is shown.
func redactKey(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, "privateJwk:") {
			line = line[:strings.Index(line, "privateJwk:")] + "privateJwk: '<the tenant's private JWK>'"
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
