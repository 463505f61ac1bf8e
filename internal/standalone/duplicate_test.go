package standalone_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

// Two links of the files replicate one tenant, endpoint and scope: the engine runs the first in
// the files and refuses the other as a duplicate naming the first one's document (the engine's
// DuplicateLinkError, not a check of its own). When the first leaves the files, a reload hands
// the key to the other.
func TestRunRefusesASecondLinkOfOneKey(t *testing.T) {
	did, jwk := identity(t)
	// Nobody listens there: the links run without replicating, which is all this test needs.
	first := linkDoc("zeta", did, "http://127.0.0.1:7", "http://127.0.0.1:9", "s", "")
	second := linkDoc("alpha", did, "http://127.0.0.1:7/", "http://127.0.0.1:9", "s", "")
	path := write(t, strings.Join([]string{secretDoc("s", did, jwk), first, second}, "---\n"))
	logs := &logBuffer{}
	addr, reload := runFiles(t, path, logs)

	msg := refusedWith(t, addr, "default/alpha", "DuplicateLink")
	if !strings.Contains(msg, "replicates the same tenant, endpoint and scope as "+path+" document 2") {
		t.Errorf("refusal: %s", msg)
	}
	if s, ok := statusOf(t, addr, "default/zeta"); !ok || s.LinkKey == "" {
		t.Fatalf("the first link does not run: %+v", s)
	}

	// Reloading the same files refuses it again without a new refusal in the log (the second
	// send returns once the loop has applied the first).
	reload <- struct{}{}
	reload <- struct{}{}
	if n := strings.Count(logs.String(), `"link refused: fix it and send SIGHUP; the other links run" "link"="default/alpha"`); n != 1 {
		t.Errorf("alpha's refusal logged %d times over two reloads, want once:\n%s", n, logs.String())
	}

	if err := os.WriteFile(path, []byte(strings.Join([]string{secretDoc("s", did, jwk), second}, "---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	waittest.For(t, time.Minute, 50*time.Millisecond, "alpha runs the key", func() bool {
		s, ok := statusOf(t, addr, "default/alpha")
		c := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady)
		return ok && s.LinkKey != "" && c != nil && c.Reason != "DuplicateLink"
	})
	if _, ok := statusOf(t, addr, "default/zeta"); ok {
		t.Fatal("the link that left the files is still listed")
	}
}
