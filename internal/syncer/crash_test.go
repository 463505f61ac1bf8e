package syncer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/ledger"
)

// The crash test runs the engine in a child process (this test binary, re-executed) and
// kills it with SIGKILL mid-replication: nothing is flushed on the way out.
const crashChildEnv = "DWNSYNC_ENGINE_CRASH_CHILD"

type crashChildSpec struct {
	Ledger, Local, Remote, DID string
	JWK                        json.RawMessage
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		os.Exit(runCrashChild(spec))
	}
	os.Exit(m.Run())
}

func runCrashChild(raw string) int {
	var spec crashChildSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child spec:", err)
		return 2
	}
	signer, err := msg.NewSigner(spec.DID, spec.JWK)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child signer:", err)
		return 2
	}
	store, err := ledger.Open(spec.Ledger, ledger.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child ledger:", err)
		return 2
	}
	eng, err := New(Options{Ledger: store, Pool: dialect.NewPool(dialect.Options{}), Timing: fastTiming()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child engine:", err)
		return 2
	}
	if _, err := eng.Apply(LinkConfig{Name: "crash", Tenant: spec.DID, LocalEndpoint: spec.Local, RemoteEndpoint: spec.Remote,
		LocalSigner: signer, RemoteSigner: signer}); err != nil {
		fmt.Fprintln(os.Stderr, "child apply:", err)
		return 2
	}
	fmt.Println("started")
	_ = eng.Start(context.Background()) // runs until SIGKILL
	return 0
}

// Crash safety: kill -9 the engine in the middle of pushing a burst, start a new engine on the
// same ledger file: it resumes from the durable checkpoints and converges; nothing is lost.
func TestEngineCrashResumesFromCheckpoints(t *testing.T) {
	local := dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnbox})
	remote := dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnbox})
	id := dwntest.MustIdentity(t)
	p := &pair{local: local, remote: remote, id: id}
	p.write(t, local, 10, "seed-local")
	p.write(t, remote, 10, "seed-remote")
	ledgerPath := filepath.Join(t.TempDir(), "ledger.db")
	raw, _ := json.Marshal(crashChildSpec{Ledger: ledgerPath, Local: local.URL(), Remote: remote.URL(), DID: id.DID, JWK: id.PrivateJWK})

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+string(raw))
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "started" {
		t.Fatalf("child did not start: %q %s", line, stderr.String())
	}
	eventually(t, 30*time.Second, "child bootstrapped both servers", func() bool {
		return len(remote.CIDs(id.DID)) == 20 && len(local.CIDs(id.DID)) == 20
	})

	remote.SetLatency(15 * time.Millisecond) // slow the pushes down so the kill lands mid-burst
	burst := p.write(t, local, 150, "burst")
	// The first push batch holds up to 100 entries; wait until it committed (and the group
	// commit had time to make it durable) and the second batch is under way.
	eventually(t, 60*time.Second, "part of the burst pushed", func() bool {
		n := len(remote.CIDs(id.DID)) - 20
		return n >= 125
	})
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no flush, no cleanup
		t.Fatal(err)
	}
	killed = true
	_ = cmd.Wait()
	pushedAtCrash := len(remote.CIDs(id.DID)) - 20
	if pushedAtCrash >= 150 {
		t.Fatalf("the kill came too late: all %d pushed", pushedAtCrash)
	}

	store, err := ledger.Open(ledgerPath, ledger.Options{})
	if err != nil {
		t.Fatalf("reopening the ledger after kill -9: %v", err)
	}
	recs, _ := store.List()
	if len(recs) != 1 {
		t.Fatalf("ledger holds %d records", len(recs))
	}
	rec := recs[0]
	_ = store.Close()
	if rec.Push.Contiguous == nil || rec.Pull.Contiguous == nil {
		t.Fatalf("no durable checkpoints after the crash: pull %v push %v", rec.Pull.Contiguous, rec.Push.Contiguous)
	}
	t.Logf("killed with %d/150 of the burst on the remote; durable push checkpoint at position %s (local head %d)",
		pushedAtCrash, rec.Push.Contiguous.Position, local.Head(id.DID))

	remote.SetLatency(0)
	appliesBefore := remote.Count("dwn.applyReplicatedMessage")
	te := startEngine(t, engineOpts{ledgerPath: ledgerPath})
	key, err := te.Apply(LinkConfig{Name: "crash", Tenant: id.DID, LocalEndpoint: local.URL(), RemoteEndpoint: remote.URL(),
		LocalSigner: id.Signer, RemoteSigner: id.Signer})
	if err != nil {
		t.Fatal(err)
	}
	if key != rec.Key {
		t.Fatalf("key %s, ledger %s", key, rec.Key)
	}
	eventually(t, 60*time.Second, "converged after restart", func() bool {
		s, _ := te.Snapshot(key)
		return s.Phase == "live" && sameSet(local.CIDs(id.DID), remote.CIDs(id.DID))
	})
	rl := remote.CIDs(id.DID)
	for _, c := range burst {
		if !contains(rl, c) {
			t.Fatalf("lost %s", c)
		}
	}
	replayed := remote.Count("dwn.applyReplicatedMessage") - appliesBefore
	t.Logf("after restart: %d applies to the remote to finish (burst 150, %d already there)", replayed, pushedAtCrash)
	// Resumed from the checkpoint, not from the start: the new engine does not re-push the
	// part of the burst the durable checkpoint covers.
	var cp int
	fmt.Sscan(rec.Push.Contiguous.Position, &cp)
	if cp <= 20 {
		t.Fatalf("the durable push checkpoint (%d) never moved into the burst", cp)
	}
	// From the checkpoint there are 170-cp entries to push again (plus a few retried as
	// duplicates under load); from the start it would be the whole burst and the seed.
	if replayed > 170-cp+20 {
		t.Fatalf("re-pushed %d messages: the checkpoint was not used", replayed)
	}
}
