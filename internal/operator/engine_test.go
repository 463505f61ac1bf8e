package operator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/syncer"
)

// startEngine runs a leaderEngine on dir until the returned stop is called.
func startEngine(t *testing.T, dir string) (*leaderEngine, func()) {
	t.Helper()
	l := newLeaderEngine(dir, clock.RealClock{}, logr.Discard(), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Start(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer wcancel()
	if err := l.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine: %v", err)
		}
	}
	t.Cleanup(stop)
	return l, stop
}

// The ledger record names the owner of its key, durably; another owner's Apply is refused with
// a DuplicateLinkError naming the holder, and its Release leaves the link and its record alone;
// an Apply that supersedes the holder (the controller decided it is older) takes over.
func TestLedgerRecordKeepsTheOwner(t *testing.T) {
	signer, _, err := msg.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	// Nobody listens there: the link runs without replicating, which is all this test needs.
	cfg := syncer.LinkConfig{Name: "ns/owner", Tenant: signer.DID, LocalEndpoint: "http://127.0.0.1:9", RemoteEndpoint: "http://127.0.0.1:7",
		LocalSigner: signer, RemoteSigner: signer}
	owner, squatter := types.UID("uid-owner"), types.UID("uid-squatter")
	dir := t.TempDir()
	eng, stop := startEngine(t, dir)

	cfg.Owner = string(owner)
	key, err := eng.Apply(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ownerIs(t, eng, key, owner)
	squat := cfg
	squat.Owner = string(squatter)
	var dup *syncer.DuplicateLinkError
	if _, err := eng.Apply(squat); !errors.As(err, &dup) || dup.Owner != string(owner) {
		t.Fatalf("a squatter's Apply: %v, want a DuplicateLinkError naming %s", err, owner)
	}
	if removed, err := eng.Release(key, string(squatter)); err != nil || removed {
		t.Fatalf("a squatter's Remove: removed=%v err=%v", removed, err)
	}
	if _, ok := eng.Snapshot(key); !ok {
		t.Fatal("a squatter's Remove stopped the owner's link")
	}
	ownerIs(t, eng, key, owner)

	// Durable: a restart reads the same owner from the ledger.
	stop()
	eng, _ = startEngine(t, dir)
	ownerIs(t, eng, key, owner)

	// A new owner takes over; the old one's Remove is now refused, the new one's works.
	squat.Supersedes = string(owner)
	if _, err := eng.Apply(squat); err != nil {
		t.Fatal(err)
	}
	ownerIs(t, eng, key, squatter)
	if removed, err := eng.Release(key, string(owner)); err != nil || removed {
		t.Fatalf("the former owner's Remove: removed=%v err=%v", removed, err)
	}
	if removed, err := eng.Release(key, string(squatter)); err != nil || !removed {
		t.Fatalf("the owner's Remove: removed=%v err=%v", removed, err)
	}
	if _, found, _ := eng.Record(key); found {
		t.Fatal("the owner's Remove left the record")
	}
}

func ownerIs(t *testing.T, eng *leaderEngine, key string, want types.UID) {
	t.Helper()
	rec, found, err := eng.Record(key)
	if err != nil || !found || rec.OwnerUID != string(want) {
		t.Fatalf("record of %s: found=%v owner=%q err=%v, want owner %q", key, found, rec.OwnerUID, err, want)
	}
}

// A link whose key another ReplicationLink still runs with another local endpoint is refused
// by the engine; the refusal (it goes to the link's status and Events) names neither that link
// nor its namespace nor its endpoint, which may belong to another namespace.
func TestTakeoverRefusalNamesNoOtherLink(t *testing.T) {
	signer, _, err := msg.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	running := syncer.LinkConfig{Name: "other-team/their-link", Tenant: signer.DID, LocalEndpoint: "http://127.0.0.1:9", RemoteEndpoint: "http://127.0.0.1:7",
		LocalSigner: signer, RemoteSigner: signer}
	eng, _ := startEngine(t, t.TempDir())
	running.Owner = "uid-younger"
	key, err := eng.Apply(running)
	if err != nil {
		t.Fatal(err)
	}
	older := running
	older.Name, older.LocalEndpoint = "ns/owner", "http://127.0.0.1:8"
	older.Owner, older.Supersedes = "uid-older", "uid-younger" // the controller hands the key over
	_, err = eng.Apply(older)
	if err == nil {
		t.Fatal("the engine took over a link with another local endpoint")
	}
	for _, secret := range []string{"other-team", "their-link", running.LocalEndpoint} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the refusal names %q: %v", secret, err)
		}
	}
	if !strings.Contains(err.Error(), key) {
		t.Errorf("the refusal does not name the ledger key %s: %v", key, err)
	}
	ownerIs(t, eng, key, "uid-younger")
}
