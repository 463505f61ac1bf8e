package dwnserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// tmpfsRoot is where data directories go when it is usable: the server is fsync-bound on
// disk (~23 small writes/s) and about three times faster on tmpfs.
const tmpfsRoot = "/dev/shm"

// Start starts n servers in parallel, each on a free 127.0.0.1 port with its own data
// directory, and stops them (SIGTERM, then wait) when the test ends. It fails the test
// (never skips) when the server is not installed or does not become healthy; when the
// test has failed, the cleanup logs the tail of every server's log.
func Start(t testing.TB, n int) []*Server {
	t.Helper()
	if _, err := locateHarness(); err != nil {
		t.Fatal(err)
	}
	servers := make([]*Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		dir := dataDir(t, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// t.Context is cancelled before cleanups run; the servers must outlive it
			// until their own cleanup, so they get a context of their own.
			s, err := StartProcess(context.Background(), dir)
			servers[i], errs[i] = s, err
		}()
	}
	wg.Wait()
	for _, s := range servers {
		if s != nil {
			stopAtCleanup(t, s)
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("dwn-server %d of %d: %v", i+1, n, err)
		}
	}
	return servers
}

// Restart starts s again on its own store and port (see RestartProcess) after stopping it if it
// still runs, and stops the new process when the test ends.
func Restart(t testing.TB, s *Server) *Server {
	t.Helper()
	if err := s.Stop(); err != nil && !errors.Is(err, ErrStopTimeout) {
		t.Logf("stop before restart: %v", err)
	}
	restarted, err := RestartProcess(context.Background(), s)
	if err != nil {
		t.Fatalf("restart dwn-server on %s with data %s: %v", s.URL, s.DataDir, err)
	}
	stopAtCleanup(t, restarted)
	return restarted
}

// stopAtCleanup stops s when the test ends; when the test has failed it logs the tail of the
// server's log first.
func stopAtCleanup(t testing.TB, s *Server) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dwn-server %s (data %s), last lines of its log:\n%s", s.URL, s.DataDir, s.LogTail(30))
		}
		switch err := s.Stop(); {
		case errors.Is(err, ErrStopTimeout):
			// A slow graceful stop (a loaded CI machine) is not a failure of the test
			// that used the server; the process is gone either way.
			t.Logf("stop: %v", err)
		case err != nil:
			t.Errorf("stop: %v\n%s", err, s.LogTail(30))
		}
	})
}

// dataDir makes a fresh directory for server i, on tmpfs when possible, removed at cleanup.
func dataDir(t testing.TB, i int) string {
	t.Helper()
	if dir, err := os.MkdirTemp(tmpfsRoot, fmt.Sprintf("dwnserver-%d-", i)); err == nil {
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return filepath.Join(t.TempDir(), fmt.Sprintf("server-%d", i))
}
