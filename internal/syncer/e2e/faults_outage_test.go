package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/faulttest"
	"github.com/dwnsync/dwnsync/internal/syncer"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

const (
	// outageWrites is how long writes continue on A while B is down, and at most how many.
	outageWrites    = 20 * time.Second
	maxOutageWrites = 2000
	// writesAtRestart is how many writes land on B (then on A) as soon as B is back.
	writesAtRestart = 10
)

// The phase changes the README's status table documents: a feed that lost its place repairs
// (`repairing`) and goes back to `live`; three failed repairs give `degraded_poll`, which keeps
// trying to go live. A change to the same phase (a new trigger) is allowed anywhere.
var documentedPhaseChanges = map[string][]string{
	"initializing":  {"live", "repairing"},
	"live":          {"repairing"},
	"repairing":     {"live", "degraded_poll"},
	"degraded_poll": {"live", "repairing"},
}

// The remote server stops for 20 s while writes go on at the local one, then comes back on the
// same store and port and takes writes at once. Without a restart of the engine and with the
// periodic verify out of reach, every write reaches the other side, and the link's phases only
// change the ways the README documents, ending live.
func TestRemoteOutageConvergesWithoutVerify(t *testing.T) {
	a, b, client, id := twoServersOneTenant(t)
	if _, err := client.Seed(a.URL, id, dwnserver.SeedSpec{Records: 20, Prefix: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Seed(b.URL, id, dwnserver.SeedSpec{Records: 5, Prefix: "b"}); err != nil {
		t.Fatal(err)
	}
	signer, err := msg.NewSigner(id.DID, id.PrivateJWK)
	if err != nil {
		t.Fatal(err)
	}
	var rec phaseRecorder
	te := startEngine(t, engineOpts{
		timing:  func(tm *linkstate.Timing) { tm.VerifyInterval = 24 * time.Hour }, // the verify cannot help
		onEvent: rec.add,
	})
	key, err := te.Apply(syncer.LinkConfig{Name: "e2e/outage", Tenant: id.DID, LocalEndpoint: a.URL, RemoteEndpoint: b.URL,
		LocalSigner: signer, RemoteSigner: signer})
	if err != nil {
		t.Fatal(err)
	}
	ta, tb := tenantsOn(t, id.DID, signer, a.URL, b.URL)
	eventually(t, 3*time.Minute, "the bootstrap converged and live", func() bool {
		s, _ := te.Snapshot(key)
		return s.Phase == "live" && !s.NeedsReconcile && sameSet(listCIDs(t, ta), listCIDs(t, tb))
	})
	rec.mark()

	// B goes down; writes go on at A for a bounded time.
	outage := time.Now()
	b.Kill() // a graceful stop would wait up to 15 s for the engine's WebSockets to close
	note := func(url, what string, i int) string {
		w, err := client.Write(url, id, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "note",
			Data: []byte(fmt.Sprintf(`{"what":%q,"i":%d}`, what, i))})
		if err != nil {
			t.Fatalf("write %d %s (%s): %v", i, what, url, err)
		}
		return w.CID
	}
	var written []string
	for time.Since(outage) < outageWrites && len(written) < maxOutageWrites {
		written = append(written, note(a.URL, "on A during the outage", len(written)))
	}
	duringOutage := len(written)
	mid, _ := te.Snapshot(key)

	// B is back on its own store and port, and takes writes at once; A too.
	b = dwnserver.Restart(t, b)
	back := time.Now()
	for i := range writesAtRestart {
		written = append(written, note(b.URL, "on B right after its restart", i))
	}
	for i := range writesAtRestart {
		written = append(written, note(a.URL, "on A after B's restart", i))
	}

	faulttest.Await(t, 5*time.Minute, "every write on both sides, the link live and reconciled", nil, func() (bool, string) {
		s, _ := te.Snapshot(key)
		la, lb := listCIDs(t, ta), listCIDs(t, tb)
		missing := 0
		for _, c := range written {
			if !contains(la, c) || !contains(lb, c) {
				missing++
			}
		}
		return s.Phase == "live" && !s.NeedsReconcile && missing == 0 && sameSet(la, lb),
			fmt.Sprintf("phase %s needsReconcile %v; %d of %d writes not yet on both sides; A %d CIDs, B %d",
				s.Phase, s.NeedsReconcile, missing, len(written), len(la), len(lb))
	})
	ia, ib := inventory(t, ta), inventory(t, tb)
	if err := faulttest.SameInventory(ia, ib); err != nil {
		t.Fatalf("A and B differ: %v", err)
	}
	phases := rec.since()
	t.Logf("%d writes on A during the %v outage (phase then %s, connectivity %s), %d on B and %d on A after the restart; "+
		"converged %v after B was back; phases after the outage began: %s",
		duringOutage, outageWrites, mid.Phase, mid.Connectivity, writesAtRestart, writesAtRestart,
		time.Since(back).Round(time.Millisecond), strings.Join(phases, " → "))
	if err := documentedPath(phases); err != nil {
		t.Fatal(err)
	}
	b.Kill() // the engine still holds B's WebSockets: a graceful stop at cleanup would wait 15 s
}

// phaseRecorder keeps the link's phase changes from engine events.
type phaseRecorder struct {
	mu      sync.Mutex
	changes [][2]string // from, to
	from    int         // index of the first change after mark
}

func (r *phaseRecorder) add(ev syncer.Event) {
	if ev.Type != syncer.EventStatusChange {
		return
	}
	r.mu.Lock()
	r.changes = append(r.changes, [2]string{ev.From, ev.To})
	r.mu.Unlock()
}

// mark starts the part of the record that since returns.
func (r *phaseRecorder) mark() {
	r.mu.Lock()
	r.from = len(r.changes)
	r.mu.Unlock()
}

// since is the phase sequence after mark: "live", then each change's target.
func (r *phaseRecorder) since() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	path := []string{"live"}
	for _, c := range r.changes[r.from:] {
		if c[0] != path[len(path)-1] {
			path = append(path, "?"+c[0]) // a change from a phase the record never entered
		}
		path = append(path, c[1])
	}
	return path
}

// documentedPath checks that each step of path is a change the README documents and that the
// path ends live.
func documentedPath(path []string) error {
	for i := 1; i < len(path); i++ {
		from, to := path[i-1], path[i]
		if from != to && !slices.Contains(documentedPhaseChanges[from], to) {
			return fmt.Errorf("phase change %s → %s (step %d of %s) is not one the README documents",
				from, to, i, strings.Join(path, " → "))
		}
	}
	if last := path[len(path)-1]; last != "live" {
		return fmt.Errorf("the link ended %s, not live: %s", last, strings.Join(path, " → "))
	}
	return nil
}
