package standalone_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/standalone"
	"github.com/dwnsync/dwnsync/internal/status"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

// running is a `dwnsync run` in this process.
type running struct {
	addr string
	stop func() error
}

func startRun(t *testing.T, opts standalone.Options) (*running, error) {
	t.Helper()
	addr := make(chan string, 1)
	opts.Listen = "127.0.0.1:0"
	opts.Listening = func(a string) { addr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- standalone.Run(ctx, opts) }()
	select {
	case a := <-addr:
		r := &running{addr: a}
		stopped := false
		r.stop = func() error {
			if stopped {
				return nil
			}
			stopped = true
			cancel()
			return <-done
		}
		t.Cleanup(func() { _ = r.stop() })
		return r, nil
	case err := <-done:
		cancel()
		return nil, err
	case <-time.After(time.Minute):
		cancel()
		t.Fatal("dwnsync run did not start listening within a minute")
		return nil, nil
	}
}

func (r *running) get(path string) (int, string) {
	resp, err := http.Get("http://" + r.addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (r *running) degradedReason() string {
	list, err := standalone.FetchStatus(context.Background(), r.addr)
	if err != nil || len(list.Items) == 0 {
		return fmt.Sprint(err)
	}
	if c := meta.FindStatusCondition(list.Items[0].Status.Conditions, v1alpha1.ConditionDegraded); c != nil {
		return c.Reason
	}
	return ""
}

// While the ledger cannot save checkpoints (a full disk), /healthz fails with the reason and
// the link's status says Degraded/CheckpointsNotSaved; both clear once a commit succeeds.
func TestHealthzFailsWhileCheckpointsAreNotSaved(t *testing.T) {
	did, jwk := identity(t)
	// Nothing listens on these ports: the link runs (and persists its state) but cannot connect.
	file := write(t, secretDoc("s", did, jwk)+"---\n"+linkDoc("l", did, "http://127.0.0.1:9", "http://127.0.0.1:7", "s", ""))
	var disk ledger.FullDisk
	disk.Set(true)
	r, err := startRun(t, standalone.Options{Files: []string{file}, StateDir: t.TempDir(), LedgerBeforeCommit: disk.BeforeCommit})
	if err != nil {
		t.Fatal(err)
	}
	waittest.For(t, time.Minute, 20*time.Millisecond, "/healthz to fail and the link to say why", func() bool {
		code, body := r.get("/healthz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "no space left on device") &&
			r.degradedReason() == status.ReasonCheckpointsNotSaved
	})
	disk.Set(false)
	waittest.For(t, time.Minute, 20*time.Millisecond, "/healthz ok again once a commit succeeds", func() bool {
		code, _ := r.get("/healthz")
		return code == http.StatusOK && r.degradedReason() != status.ReasonCheckpointsNotSaved
	})
}

// The recovery the damaged-ledger message gives works and loses nothing: two real servers
// converge, dwnsync stops, both get new writes, the ledger is truncated; the next start refuses
// it with an mv command; after running that command, the next start re-verifies the link with
// a full reconcile and both servers hold every message, including those written while the
// ledger was gone (which no live feed would deliver).
func TestDamagedLedgerRecoveryLosesNothing(t *testing.T) {
	servers := dwnserver.Start(t, 2)
	a, b := servers[0].URL, servers[1].URL
	did, jwk := identity(t)
	id := dwnserver.Identity{DID: did, PrivateJWK: []byte(jwk)}
	client := dwnserver.NewClient(t)
	seed := func(url, prefix string, n int) {
		t.Helper()
		if _, err := client.Seed(url, id, dwnserver.SeedSpec{Records: n, Prefix: prefix}); err != nil {
			t.Fatal(err)
		}
	}
	equal := func() (bool, int) {
		la, _ := client.Query(a, id)
		lb, _ := client.Query(b, id)
		slices.Sort(la)
		slices.Sort(lb)
		return len(la) > 0 && slices.Equal(la, lb), len(la)
	}
	seed(a, "a1-", 4)
	seed(b, "b1-", 3)
	file := write(t, secretDoc("s", did, jwk)+"---\n"+linkDoc("l", did, b, a, "s", ""))
	stateDir := t.TempDir()
	opts := standalone.Options{Files: []string{file}, StateDir: stateDir}

	r, err := startRun(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	waittest.For(t, 3*time.Minute, 100*time.Millisecond, "both servers equal", func() bool { ok, _ := equal(); return ok })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	_, before := equal()

	seed(a, "a2-", 3)
	seed(b, "b2-", 2)
	path := filepath.Join(stateDir, standalone.LedgerFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw[:2*4096], 0o600); err != nil { // the two header pages, no data
		t.Fatal(err)
	}

	_, err = startRun(t, opts)
	var de *ledger.DamagedError
	if !errors.As(err, &de) {
		t.Fatalf("start on a truncated ledger: %v, want a *ledger.DamagedError", err)
	}
	msg := err.Error()
	line := msg[strings.Index(msg, "  mv ")+2:]
	line = line[:strings.IndexByte(line, '\n')]
	if out, err := exec.Command("sh", "-c", line).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", line, err, out)
	}

	if _, err := startRun(t, opts); err != nil {
		t.Fatal(err)
	}
	waittest.For(t, 3*time.Minute, 100*time.Millisecond, "both servers equal again, with the writes made while stopped", func() bool {
		ok, n := equal()
		return ok && n == before+5
	})
}
