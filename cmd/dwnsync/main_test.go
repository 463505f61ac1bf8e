package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/standalone"
)

const sample = "../../config/samples/standalone-links.yaml"

// `dwnsync run -f config/samples/standalone-links.yaml` (pointed at two real local DWN servers
// instead of ports 3000/3001) converges, `dwnsync status` shows it live, SIGHUP reloads the
// file (suspend → paused) and SIGTERM stops it cleanly.
func TestRunSampleAndStatusOnRealServers(t *testing.T) {
	servers := dwnserver.Start(t, 2)
	a, b := servers[0].URL, servers[1].URL
	raw, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("http://127.0.0.1:3000", a, "http://127.0.0.1:3001", b).Replace(string(raw))
	file := filepath.Join(t.TempDir(), "links.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	id := sampleIdentity(t, raw)
	client := dwnserver.NewClient(t)
	if _, err := client.Seed(a, id, dwnserver.SeedSpec{Records: 10, Large: 1, Prefix: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Seed(b, id, dwnserver.SeedSpec{Records: 5, Prefix: "b"}); err != nil {
		t.Fatal(err)
	}

	addr := freeAddr(t)
	stateDir := t.TempDir()
	done := make(chan error, 1)
	go func() {
		done <- runStandalone([]string{"-f", file, "--state-dir", stateDir, "--listen", addr, "--progress-every", "1s", "--zap-log-level", "info"})
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
			<-done
		}
	})

	start := time.Now()
	poll(t, 3*time.Minute, "the link live and both servers equal", func() (bool, string) {
		list, err := standalone.FetchStatus(context.Background(), addr)
		if err != nil || len(list.Items) != 1 {
			return false, fmt.Sprint(err)
		}
		s := list.Items[0].Status
		if s.Phase != v1alpha1.PhaseLive || s.NeedsReconcile {
			return false, fmt.Sprintf("phase %s needsReconcile %v", s.Phase, s.NeedsReconcile)
		}
		la, _ := client.Query(a, id)
		lb, _ := client.Query(b, id)
		slices.Sort(la)
		slices.Sort(lb)
		return len(la) > 0 && slices.Equal(la, lb), fmt.Sprintf("A %d CIDs, B %d", len(la), len(lb))
	})
	t.Logf("converged and live %v after start", time.Since(start).Round(time.Millisecond))
	poll(t, 30*time.Second, "the bootstrap's progress in the status", func() (bool, string) {
		list, err := standalone.FetchStatus(context.Background(), addr)
		if err != nil || len(list.Items) != 1 || list.Items[0].Status.Progress == nil {
			return false, fmt.Sprint(err)
		}
		p := list.Items[0].Status.Progress
		return p.Applied > 0 && p.Total >= p.Applied, fmt.Sprintf("%d/%d", p.Applied, p.Total)
	})

	out := captureStdout(t, func() error { return runStatus([]string{"--addr", addr}) })
	t.Logf("dwnsync status --addr %s\n%s", addr, out)
	if !strings.Contains(out, "STATUS") || !strings.Contains(out, " live ") || !strings.Contains(out, "alice") {
		t.Fatalf("status table does not show the link live:\n%s", out)
	}

	var dl bytes.Buffer
	if err := runDeadLetters([]string{"list", "alice", "--addr", addr}, &dl); err != nil || dl.String() != "link alice has no dead letters\n" {
		t.Fatalf("dwnsync deadletters list alice: %v\n%s", err, dl.String())
	}
	dl.Reset()
	if err := runDeadLetters([]string{"retry", "--addr", addr, "default/alice"}, &dl); err != nil || !strings.Contains(dl.String(), "0 dead letter(s) retried") {
		t.Fatalf("dwnsync deadletters retry default/alice: %v\n%s", err, dl.String())
	}

	// SIGHUP re-reads the file: suspend the link.
	if err := os.WriteFile(file, []byte(strings.Replace(text, "  signer:\n", "  suspend: true\n  signer:\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "paused after SIGHUP", func() (bool, string) {
		list, err := standalone.FetchStatus(context.Background(), addr)
		if err != nil || len(list.Items) != 1 {
			return false, fmt.Sprint(err)
		}
		return list.Items[0].Status.Phase == v1alpha1.PhasePaused, string(list.Items[0].Status.Phase)
	})

	// SIGTERM: stops cleanly (links stopped, ledger flushed), returns no error.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped = true
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop within 30s of SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(stateDir, standalone.LedgerFile)); err != nil {
		t.Fatalf("no ledger in --state-dir: %v", err)
	}
}

// A file that is not Secrets and ReplicationLinks stops `run` before anything starts, naming the
// file and document. (A link that is merely wrong is refused alone: see internal/standalone.)
func TestRunRefusesInvalidFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {did: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	err := runStandalone([]string{"-f", file, "--state-dir", t.TempDir(), "--listen", freeAddr(t)})
	if err == nil || !strings.Contains(err.Error(), file+" document 2: v1 ConfigMap is not used by dwnsync run") {
		t.Fatalf("got %v", err)
	}
}

func sampleIdentity(t *testing.T, raw []byte) dwnserver.Identity {
	t.Helper()
	var secret struct {
		StringData struct {
			DID        string `json:"did"`
			PrivateJWK string `json:"privateJwk"`
		} `json:"stringData"`
	}
	first := strings.SplitN(string(raw), "\n---\n", 2)[0]
	if err := yaml.Unmarshal([]byte(first), &secret); err != nil || secret.StringData.DID == "" {
		t.Fatalf("sample's first document is not the signer Secret: %v", err)
	}
	return dwnserver.Identity{DID: secret.StringData.DID, PrivateJWK: []byte(secret.StringData.PrivateJWK)}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func poll(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, within, true, func(context.Context) (bool, error) {
		ok, seen := cond()
		last = seen
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out after %v waiting for %s; last seen: %s", within, what, last)
	}
}

func captureStdout(t *testing.T, fn func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	orig := os.Stdout
	os.Stdout = w
	var buf bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&buf, r); close(copied) }()
	ferr := fn()
	os.Stdout = orig
	_ = w.Close()
	<-copied
	if ferr != nil {
		t.Fatal(ferr)
	}
	return buf.String()
}

// --egress-allow/--egress-deny reach both commands; a bad entry stops them before anything
// starts, naming the flag and the entry.
func TestEgressFlagsRefuseBadEntries(t *testing.T) {
	err := runStandalone([]string{"--egress-deny", "10.0.0.0/8, 10.1.0.0/33", "--state-dir", t.TempDir(), "--listen", freeAddr(t)})
	if err == nil || !strings.Contains(err.Error(), "--egress-deny") || !strings.Contains(err.Error(), "10.1.0.0/33") {
		t.Fatalf("run: got %v", err)
	}
	err = runOperator([]string{"--egress-allow", "http://metadata", "--state-dir", t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "--egress-allow") || !strings.Contains(err.Error(), "http://metadata") {
		t.Fatalf("operator: got %v", err)
	}
}
