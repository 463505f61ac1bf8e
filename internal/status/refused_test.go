package status_test

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/status"
	"github.com/dwnsync/dwnsync/internal/syncer"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

// A remote endpoint on a port whose number contains "401" (4010) that refuses connections is
// unreachable, not a refused signer: the reason comes from the client's typed error kind, not
// from the digits in "dial tcp 127.0.0.1:4010: connection refused".
func TestRefusedPort4010IsEndpointUnreachableNotUnauthorized(t *testing.T) {
	local := dwnserver.Start(t, 1)[0]
	remote := "http://" + refusedAddrContaining401(t)
	id := dwntest.MustIdentity(t)

	store, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool := dialect.NewPool(dialect.Options{})
	eng, err := syncer.New(syncer.Options{Ledger: store, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done; pool.Close(); _ = store.Close() })
	go func() { // nobody else reads the engine's events here
		for {
			select {
			case <-eng.Events():
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := eng.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := eng.Apply(syncer.LinkConfig{Name: "ns/refused", Tenant: id.DID, LocalEndpoint: local.URL, RemoteEndpoint: remote,
		LocalDialect: dwn.DialectWeb5, Dialect: dwn.DialectWeb5, LocalSigner: id.Signer, RemoteSigner: id.Signer})
	if err != nil {
		t.Fatal(err)
	}
	var snap syncer.LinkStatus
	waittest.For(t, 60*time.Second, 50*time.Millisecond, "the link offline with an error", func() bool {
		snap, _ = eng.Snapshot(key)
		return snap.Connectivity == "offline" && snap.LastError != ""
	})
	if !strings.Contains(snap.LastError+snap.Pull.LastError+snap.Push.LastError, "401") {
		t.Fatalf("the error text does not show the port, so this test proves nothing: %q", snap.LastError)
	}
	link := &v1alpha1.ReplicationLink{Spec: v1alpha1.ReplicationLinkSpec{Tenant: id.DID, Endpoint: remote}}
	s := status.FromSnapshot(v1alpha1.ReplicationLinkStatus{}, snap, status.InputsFor(link, time.Now()))
	ready := cond(s, v1alpha1.ConditionReady)
	if ready.Reason != status.ReasonEndpointUnreachable || strings.Contains(ready.Message, "Secret") {
		t.Fatalf("Ready = %s: %s (error kind %q, last error %q); want EndpointUnreachable without Secret advice",
			ready.Reason, ready.Message, snap.LastErrorKind, snap.LastError)
	}
}

// refusedAddrContaining401 returns 127.0.0.1:PORT with "401" in PORT and nothing listening:
// 4010 if it is free, else the next free one of a few such ports.
func refusedAddrContaining401(t *testing.T) string {
	for _, port := range []int{4010, 4011, 4012, 14010, 24010, 34010, 40100, 40101, 40102} {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // someone uses it: it would not refuse
		}
		_ = ln.Close()
		return addr
	}
	t.Fatal("no free port containing 401 among the candidates")
	return ""
}
