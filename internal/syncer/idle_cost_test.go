package syncer

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwntest"
)

// IdleLinkGoroutines is what one idle live link may keep running: its supervisor. A feed whose
// subscription notifies (every WebSocket feed) drains only while events wait, and its ack
// loop and the link's armed timers cost none while idle (10,000 links held 80,000 goroutines,
// then 30,000 with a waiting reader per feed).
const IdleLinkGoroutines = 1

// engineCode is where the engine's goroutines run: the syncer and the dwn clients (not the
// in-process dwntest nodes, whose files are under /internal/dwntest/).
var engineCode = []string{"/internal/syncer/", "/internal/dwn/"}

// An idle live link costs at most IdleLinkGoroutines of the engine's goroutines, however many
// links share the endpoints: the engine's goroutines (the dwntest nodes' own are not counted)
// grow by no more than that per link from 1 link to 1+extra links.
func TestIdleLiveLinkGoroutines(t *testing.T) {
	const extra = 20
	local := dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnbox})
	remote := dwntest.Start(t, dwntest.Options{Mode: dwntest.ModeEnbox})
	te := startEngine(t, engineOpts{})
	var keys []string
	addLinks := func(n int) {
		t.Helper()
		for range n {
			id := dwntest.MustIdentity(t)
			key, err := te.Apply(LinkConfig{Name: fmt.Sprintf("ns/idle-%d", len(keys)), Tenant: id.DID,
				LocalEndpoint: local.URL(), RemoteEndpoint: remote.URL(), LocalSigner: id.Signer, RemoteSigner: id.Signer})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			keys = append(keys, key)
		}
		eventually(t, 30*time.Second, "every link live", func() bool {
			for _, k := range keys {
				if s, ok := te.Snapshot(k); !ok || s.Phase != "live" || s.NeedsReconcile {
					return false
				}
			}
			return true
		})
	}
	// settled waits until the engine's goroutines stop changing between two looks (passes, ack
	// flushes and timer callbacks end on their own) and returns their count.
	settled := func() int {
		t.Helper()
		last := -1
		eventually(t, 30*time.Second, "the engine's goroutines settled", func() bool {
			n, _ := codeGoroutines(engineCode...)
			same := n == last
			last = n
			return same
		})
		return last
	}

	addLinks(1)
	one := settled()
	addLinks(extra)
	t.Cleanup(func() {
		if t.Failed() {
			_, stacks := codeGoroutines(engineCode...)
			t.Logf("the engine's goroutines:\n%s", stacks)
		}
	})
	var got int
	eventually(t, 30*time.Second, fmt.Sprintf("at most %d engine goroutines per idle live link", IdleLinkGoroutines), func() bool {
		got = settled() - one
		return got <= IdleLinkGoroutines*extra
	})
	t.Logf("%d idle live links added %d engine goroutines", extra, got)
	if got < extra { // each has its supervisor at least: the count would be broken
		t.Fatalf("%d links added only %d engine goroutines", extra, got)
	}
}

// codeGoroutines counts the goroutines with a frame in a non-test file under one of dirs (e.g.
// "/internal/syncer/"), and returns their stacks for a failure message.
func codeGoroutines(dirs ...string) (int, string) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	var stacks strings.Builder
	for _, g := range strings.Split(string(buf), "\n\n") {
		if slices.ContainsFunc(strings.Split(g, "\n"), func(line string) bool {
			return strings.Contains(line, ".go:") && !strings.Contains(line, "_test.go:") &&
				slices.ContainsFunc(dirs, func(d string) bool { return strings.Contains(line, d) })
		}) {
			count++
			stacks.WriteString(g)
			stacks.WriteString("\n\n")
		}
	}
	return count, stacks.String()
}
