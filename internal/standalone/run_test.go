package standalone_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/linkconfig/secrettest"
	"github.com/dwnsync/dwnsync/internal/standalone"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

// logBuffer collects log lines (the runtime logs from several goroutines).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) write(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(&l.buf, prefix, args)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// runFiles starts Run on path and returns the address of its status server and the reload
// channel; Run stops when the test ends.
func runFiles(t *testing.T, path string, logs *logBuffer) (addr string, reload chan struct{}) {
	t.Helper()
	reload = make(chan struct{})
	listening := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- standalone.Run(ctx, standalone.Options{
			Files: []string{path}, StateDir: t.TempDir(), Listen: "127.0.0.1:0", Reload: reload,
			Logger:    funcr.New(logs.write, funcr.Options{}),
			Listening: func(a string) { listening <- a },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case addr = <-listening:
	case err := <-done:
		done <- err
		t.Fatalf("run refused the files: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("run did not start serving within a minute")
	}
	return addr, reload
}

// statusOf fetches one link's status from a running `dwnsync run`.
func statusOf(t *testing.T, addr, name string) (v1alpha1.ReplicationLinkStatus, bool) {
	t.Helper()
	list, err := standalone.FetchStatus(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list.Items {
		if l.Namespace+"/"+l.Name == name {
			return l.Status, true
		}
	}
	return v1alpha1.ReplicationLinkStatus{}, false
}

// refusedWith waits until /status lists name with Ready=False/reason and returns the message.
func refusedWith(t *testing.T, addr, name, reason string) string {
	t.Helper()
	msg := ""
	waittest.For(t, time.Minute, 50*time.Millisecond, name+" listed as "+reason, func() bool {
		s, ok := statusOf(t, addr, name)
		c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady)
		if !ok || c == nil || c.Status != "False" || c.Reason != reason {
			return false
		}
		msg = c.Message
		return true
	})
	return msg
}

// converged waits until both servers hold the same messages of id, at least want of them.
func converged(t *testing.T, client *dwnserver.Client, a, b string, id dwnserver.Identity, want int) {
	t.Helper()
	waittest.For(t, 2*time.Minute, 200*time.Millisecond, fmt.Sprintf("%d messages of %s on both servers", want, id.DID[:20]), func() bool {
		la, _ := client.Query(a, id)
		lb, _ := client.Query(b, id)
		slices.Sort(la)
		slices.Sort(lb)
		return len(la) >= want && slices.Equal(la, lb)
	})
}

// One bad Secret among good links: the good link replicates between two real servers, the bad
// one is listed in /status with its reason and logged, and nothing shows a piece of its key. A
// SIGHUP reload bringing new mistakes leaves the good link replicating.
func TestRunRunsTheGoodLinksAndListsTheBadOne(t *testing.T) {
	servers := dwnserver.Start(t, 2)
	a, b := servers[0].URL, servers[1].URL
	client := dwnserver.NewClient(t)
	good, err := client.NewTenant()
	if err != nil {
		t.Fatal(err)
	}
	bad, err := client.NewTenant()
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{
		secretDoc("good", good.DID, string(good.PrivateJWK)),
		linkDoc("good", good.DID, b, a, "good", ""),
		secretDoc("swapped", string(bad.PrivateJWK), bad.DID),
		linkDoc("swapped", bad.DID, b, a, "swapped", ""),
	}
	path := write(t, strings.Join(docs, "---\n"))
	logs := &logBuffer{}
	addr, reload := runFiles(t, path, logs)

	seeded, err := client.Seed(a, good, dwnserver.SeedSpec{Records: 3, Prefix: "before"})
	if err != nil {
		t.Fatal(err)
	}
	converged(t, client, a, b, good, seeded.ExpectedCIDs)
	msg := refusedWith(t, addr, "default/swapped", linkconfig.ReasonSecretInvalid)
	if !strings.Contains(msg, `key "did": does not look like a DID (it looks like a JSON object; did you swap did and privateJwk?)`) {
		t.Errorf("refusal does not say what is wrong: %s", msg)
	}
	if !strings.Contains(logs.String(), "link refused") || !strings.Contains(logs.String(), "default/swapped") {
		t.Errorf("the refusal is not logged:\n%s", logs.String())
	}
	out := &bytes.Buffer{}
	list, _ := standalone.FetchStatus(context.Background(), addr)
	if err := standalone.PrintTable(out, list, time.Now(), true); err != nil {
		t.Fatal(err)
	}
	t.Logf("dwnsync status:\n%s", out)
	if !strings.Contains(out.String(), "default/swapped: SignerSecretInvalid: ") {
		t.Errorf("dwnsync status does not show why swapped is not running:\n%s", out)
	}

	// Reload with new mistakes: a link whose Secret is missing, and one with an invalid spec.
	docs = append(docs,
		linkDoc("no-secret", good.DID, b+"/other", a, "missing", ""),
		linkDoc("too-fast", bad.DID, b+"/fast", a, "good", "  pollInterval: 1s\n"))
	if err := os.WriteFile(path, []byte(strings.Join(docs, "---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	refusedWith(t, addr, "default/no-secret", linkconfig.ReasonSecretMissing)
	refusedWith(t, addr, "default/too-fast", linkconfig.ReasonInvalidSpec)
	more, err := client.Seed(a, good, dwnserver.SeedSpec{Records: 2, Prefix: "after"})
	if err != nil {
		t.Fatal(err)
	}
	converged(t, client, a, b, good, seeded.ExpectedCIDs+more.ExpectedCIDs-more.Configured)
	if s, _ := statusOf(t, addr, "default/good"); meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady).Reason != "Live" {
		t.Errorf("the good link after the reload: %+v", s)
	}
	// The reload built the good link's config again (a new signer from the same Secret): the
	// same configuration, so it kept running rather than restarting.
	if strings.Contains(logs.String(), "link updated") {
		t.Errorf("an unchanged link restarted on reload:\n%s", logs.String())
	}

	// A mistake in the running link's own Secret: it keeps its last good key and replicates,
	// and the status says what is wrong, as in the operator.
	docs[0] = secretDoc("good", good.DID, `{"kty":"OKP"}`)
	if err := os.WriteFile(path, []byte(strings.Join(docs, "---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	refusedWith(t, addr, "default/good", linkconfig.ReasonSecretInvalid)
	last, err := client.Seed(a, good, dwnserver.SeedSpec{Records: 1, Prefix: "broken"})
	if err != nil {
		t.Fatal(err)
	}
	converged(t, client, a, b, good, seeded.ExpectedCIDs+more.ExpectedCIDs-more.Configured+last.ExpectedCIDs-last.Configured)

	// Nothing anywhere shows a piece of the swapped Secret.
	list, _ = standalone.FetchStatus(context.Background(), addr)
	raw, _ := json.Marshal(list)
	for what, text := range map[string]string{"status": string(raw), "logs": logs.String()} {
		if piece := secrettest.Leak(text, secrettest.PrivateParts(t, bad.PrivateJWK)...); piece != "" {
			t.Errorf("%s hold %q, a piece of the swapped Secret", what, piece)
		}
	}
}
