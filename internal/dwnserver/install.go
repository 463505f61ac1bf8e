package dwnserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// RootEnv overrides where the dwnsync checkout is (the directory holding hack/dwn-server).
const RootEnv = "DWNSYNC_ROOT"

// ErrNotInstalled is returned (wrapped) when hack/dwn-server/node_modules is missing.
var ErrNotInstalled = errors.New("@web5/dwn-server is not installed: run hack/dwn-server/install.sh (make test does it)")

// harness is what this package needs from hack/dwn-server.
type harness struct {
	dir string // hack/dwn-server
}

func (h harness) startScript() string  { return filepath.Join(h.dir, "start.sh") }
func (h harness) clientScript() string { return filepath.Join(h.dir, "client.mjs") }

// locateHarness finds hack/dwn-server: $DWNSYNC_ROOT, else upwards from the working
// directory (tests run in their package directory), else upwards from this source file.
func locateHarness() (harness, error) {
	var starts []string
	if root := os.Getenv(RootEnv); root != "" {
		dir := filepath.Join(root, "hack", "dwn-server")
		if !isFile(filepath.Join(dir, "package.json")) {
			return harness{}, fmt.Errorf("%s=%s: no hack/dwn-server/package.json there; point it at the dwnsync checkout", RootEnv, root)
		}
		starts = append(starts, root)
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, start := range starts {
		for dir := start; ; dir = filepath.Dir(dir) {
			candidate := filepath.Join(dir, "hack", "dwn-server")
			if isFile(filepath.Join(candidate, "package.json")) {
				return checkInstalled(harness{dir: candidate})
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return harness{}, fmt.Errorf("cannot find hack/dwn-server above %v; run from the dwnsync checkout or set %s", starts, RootEnv)
}

func checkInstalled(h harness) (harness, error) {
	main := filepath.Join(h.dir, "node_modules", "@web5", "dwn-server", "dist", "esm", "src", "main.js")
	if !isFile(main) {
		return h, fmt.Errorf("%w (missing %s)", ErrNotInstalled, main)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return h, fmt.Errorf("node is not on PATH (needed to run @web5/dwn-server): %w", err)
	}
	return h, nil
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}
