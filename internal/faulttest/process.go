package faulttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// buildTimeout bounds `go build` of the binary (the test binary's own build has already
// compiled every dependency, so this is mostly the link).
const buildTimeout = 5 * time.Minute

// BuildDwnsync builds ./cmd/dwnsync into a temporary directory of the test and returns the
// binary's path: the fault tests run the real binary, not the test process.
func BuildDwnsync(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dwnsync")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/dwnsync/dwnsync/cmd/dwnsync").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/dwnsync: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// Process is one run of a command whose output goes to a log file. The test kills it with
// SIGKILL (Kill) or asks it to stop (Terminate); a process still running when the test ends is
// killed.
type Process struct {
	Log    string // combined stdout and stderr
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // valid once exited is closed
}

// StartProcess runs bin with args and extra environment (KEY=VALUE), its output appended to
// logPath.
func StartProcess(t testing.TB, logPath string, env []string, bin string, args ...string) *Process {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &Process{Log: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.Kill()
	})
	return p
}

// Kill sends SIGKILL (no flush, no goodbye) and waits for the process to be gone.
func (p *Process) Kill() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.exited
	return nil
}

// Terminate sends SIGTERM and waits up to within for a clean exit.
func (p *Process) Terminate(within time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.exited:
		return p.err
	case <-time.After(within):
		_ = p.Kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.cmd.Path, within)
	}
}

// Exited is closed once the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the process ended; call it after Exited is closed.
func (p *Process) Err() error { return p.err }
