package dwnserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// storeGlob matches a server's store in its data directory: the SQLite file and its journal.
const storeGlob = "dwn.sqlite*"

// InstallID identifies what writes and serves messages here: a hash of hack/dwn-server's
// package-lock.json, client.mjs and start.sh. A store saved under one InstallID is only reused
// by the same installation.
func InstallID() (string, error) {
	h, err := locateHarness()
	if err != nil {
		return "", err
	}
	sum := sha256.New()
	for _, name := range []string{"package-lock.json", "client.mjs", "start.sh"} {
		raw, err := os.ReadFile(filepath.Join(h.dir, name))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(sum, "%s %d\n", name, len(raw))
		sum.Write(raw)
	}
	return hex.EncodeToString(sum.Sum(nil))[:16], nil
}

// SaveStore copies the store of s, which must have stopped, into dir (created if missing).
func SaveStore(s *Server, dir string) error {
	select {
	case <-s.exited:
	default:
		return fmt.Errorf("dwn-server on %s is still running; stop it before saving its store", s.URL)
	}
	return copyStore(s.DataDir, dir)
}

// StartWithStore starts one server whose data directory begins with a copy of the store saved
// in dir (by SaveStore), and stops it when the test ends.
func StartWithStore(t testing.TB, dir string) *Server {
	t.Helper()
	data := dataDir(t, 0)
	if err := copyStore(dir, data); err != nil {
		t.Fatal(err)
	}
	s, err := StartProcess(context.Background(), data) // as in Start: the server outlives t.Context
	if err != nil {
		t.Fatalf("dwn-server on a copy of the store in %s: %v", dir, err)
	}
	stopAtCleanup(t, s)
	return s
}

func copyStore(from, to string) error {
	files, err := filepath.Glob(filepath.Join(from, storeGlob))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no store (%s) in %s", storeGlob, from)
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := copyFile(f, filepath.Join(to, filepath.Base(f))); err != nil {
			return fmt.Errorf("copy the store %s: %w", f, err)
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
