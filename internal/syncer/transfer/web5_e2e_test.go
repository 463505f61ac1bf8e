package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// Two real @web5/dwn-server instances with disjoint content (each side also configured the
// seed protocol itself, so the two configures meet and the newer one wins on both).
// Reconcile both ways; both sides end with the same CID set and the same data per record;
// a second reconcile is a no-op; re-applying what was copied is Duplicate/Superseded.
func TestReconcileTwoRealWeb5Servers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // 4 min ran out under make test-stress
	defer cancel()
	start := time.Now()
	servers := dwnserver.Start(t, 2)
	client := dwnserver.NewClient(t)
	id, err := client.NewTenant()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("servers and client up in %v", time.Since(start).Round(time.Millisecond))

	// Both servers are seeded at once (the dwn-sdk-js client serves concurrent calls).
	seedStart := time.Now()
	var seedA, seedB dwnserver.SeedResult
	var errA, errB error
	seeded := make(chan struct{})
	go func() {
		defer close(seeded)
		seedB, errB = client.Seed(servers[1].URL, id, dwnserver.SeedSpec{Records: 40, Large: 5, Updates: 10, Deletes: 5, Prefix: "b"})
	}()
	seedA, errA = client.Seed(servers[0].URL, id, dwnserver.SeedSpec{Records: 300, Large: 20, Updates: 50, Deletes: 20, Prefix: "a"})
	<-seeded
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	// One record above the 1 MiB buffering limit of the seed engine (docs/engine-behaviour.md#e18):
	// it must arrive whole.
	huge := make([]byte, 2<<20+123)
	for i := range huge {
		huge[i] = byte(i*31 + i>>11)
	}
	if _, err := client.Write(servers[0].URL, id, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "blob", Data: huge}); err != nil {
		t.Fatal(err)
	}
	seedA.ExpectedCIDs++
	t.Logf("seeded A with %d messages (%d CIDs, one of 2 MiB) at %.0f/s, B with %d messages (%d CIDs) at %.0f/s in %v",
		seedA.Messages+1, seedA.ExpectedCIDs, seedA.Rate(), seedB.Messages, seedB.ExpectedCIDs, seedB.Rate(), time.Since(seedStart).Round(time.Millisecond))

	signer, err := msg.NewSigner(id.DID, id.PrivateJWK)
	if err != nil {
		t.Fatal(err)
	}
	tenants := make([]dwn.Tenant, 2)
	for i, s := range servers {
		c, err := dialect.Open(ctx, s.URL, dialect.Options{Dialect: dwn.DialectWeb5})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		tenants[i] = c.Tenant(id.DID, signer)
	}
	local, remote := tenants[0], tenants[1]

	before := [2][]string{listCIDs(ctx, t, local), listCIDs(ctx, t, remote)}
	if len(before[0]) != seedA.ExpectedCIDs || len(before[1]) != seedB.ExpectedCIDs {
		t.Fatalf("listings before: %d and %d CIDs, seed expected %d and %d", len(before[0]), len(before[1]), seedA.ExpectedCIDs, seedB.ExpectedCIDs)
	}

	copyStart := time.Now()
	res, err := Reconcile(ctx, local, remote, dwn.Scope{}, linkstate.Both)
	copyTime := time.Since(copyStart)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Failed {
		t.Errorf("failed: %v", f)
	}
	if !res.Converged {
		t.Fatalf("not converged: %+v", res)
	}
	moved := len(res.PullResult.Outcomes) + len(res.PushResult.Outcomes)
	t.Logf("reconcile: %s, %d remote-only + %d local-only, pulled %d, pushed %d (superseded %d/%d), %v → %.1f messages/s",
		res.Method, res.OnlyRemote, res.OnlyLocal, res.Pulled, res.Pushed,
		res.PullResult.Count(dwn.Superseded), res.PushResult.Count(dwn.Superseded), copyTime.Round(time.Millisecond), float64(moved)/copyTime.Seconds())
	if res.Pulled < seedB.ExpectedCIDs-1 || res.Pushed < seedA.ExpectedCIDs-1 {
		t.Fatalf("pulled %d / pushed %d, want at least everything but one configure (%d / %d)", res.Pulled, res.Pushed, seedB.ExpectedCIDs-1, seedA.ExpectedCIDs-1)
	}

	// Same CID set: by our client and by the independent dwn-sdk-js client.
	after := [2][]string{listCIDs(ctx, t, local), listCIDs(ctx, t, remote)}
	if !reflect.DeepEqual(after[0], after[1]) {
		t.Fatalf("CID sets differ after reconcile: %d vs %d", len(after[0]), len(after[1]))
	}
	if want := seedA.ExpectedCIDs + seedB.ExpectedCIDs - 1; len(after[0]) != want { // one configure superseded
		t.Fatalf("%d CIDs after reconcile, want %d", len(after[0]), want)
	}
	for i, s := range servers {
		cids, err := client.Query(s.URL, id)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(cids)
		if !reflect.DeepEqual(cids, after[0]) {
			t.Fatalf("dwn-sdk-js listing of server %d differs from ours", i)
		}
	}

	// Same data per record.
	hashStart := time.Now()
	hashesA, hashesB := dataHashes(ctx, t, local, after[0]), dataHashes(ctx, t, remote, after[0])
	hugeSum := sha256.Sum256(huge)
	hugeFound := false
	for _, h := range hashesB {
		hugeFound = hugeFound || h == hex.EncodeToString(hugeSum[:])
	}
	if !hugeFound {
		t.Fatal("the 2 MiB record did not arrive whole on B")
	}
	withData := 0
	for _, cid := range after[0] {
		if hashesA[cid] != hashesB[cid] {
			t.Fatalf("%s: data hash %q on A, %q on B", cid, hashesA[cid], hashesB[cid])
		}
		if hashesA[cid] != "" {
			withData++
		}
	}
	t.Logf("data identical for all %d messages (%d with data), checked in %v", len(after[0]), withData, time.Since(hashStart).Round(time.Millisecond))
	if withData < seedA.ExpectedCIDs/2 {
		t.Fatalf("only %d messages carry data; the comparison would prove little", withData)
	}

	// A second reconcile finds nothing to do.
	res2, err := Reconcile(ctx, local, remote, dwn.Scope{}, linkstate.Both)
	if err != nil || !res2.Converged || res2.Method != MethodDigestEqual || res2.Pulled+res2.Pushed != 0 {
		t.Fatalf("second reconcile: %v %+v", err, res2)
	}

	// Echo: re-applying what was copied to where it came from (all of the smaller side, every
	// third message of the larger one, to keep the test within its time on a busy machine).
	echo := func(src, dst dwn.Tenant, r Result, every int) {
		var es []dwn.Entry
		for i, o := range r.Outcomes {
			if i%every == 0 {
				es = append(es, dwn.Entry{CID: o.CID})
			}
		}
		got, err := (&Copier{}).Copy(ctx, src, dst, es)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range got.Outcomes {
			if o.Err != nil || (o.Kind != dwn.Duplicate && o.Kind != dwn.Superseded && o.Kind != KindSourceGone) {
				t.Fatalf("echo %s → %s: %v", src.Endpoint(), dst.Endpoint(), o)
			}
		}
		t.Logf("echo %s → %s: %d duplicate, %d superseded, %d gone", src.Endpoint(), dst.Endpoint(),
			got.Count(dwn.Duplicate), got.Count(dwn.Superseded), got.Count(KindSourceGone))
	}
	echoStart := time.Now()
	echo(local, remote, res.PullResult, 1)
	echo(remote, local, res.PushResult, 3)
	t.Logf("echo passes in %v", time.Since(echoStart).Round(time.Millisecond))
	final := [2][]string{listCIDs(ctx, t, local), listCIDs(ctx, t, remote)}
	if !reflect.DeepEqual(final[0], after[0]) || !reflect.DeepEqual(final[1], after[1]) {
		t.Fatal("echo changed a CID set")
	}

	// Incomplete against the real server: copy only an update to a server that has neither the
	// protocol nor the record; the copier must fetch both from the source and apply them first.
	t.Run("incomplete resolved from the source", func(t *testing.T) {
		id2, err := client.NewTenant()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Seed(servers[0].URL, id2, dwnserver.SeedSpec{Records: 3, Updates: 1, Prefix: "c"}); err != nil {
			t.Fatal(err)
		}
		signer2, err := msg.NewSigner(id2.DID, id2.PrivateJWK)
		if err != nil {
			t.Fatal(err)
		}
		a2, b2 := reopen(ctx, t, servers[0].URL).Tenant(id2.DID, signer2), reopen(ctx, t, servers[1].URL).Tenant(id2.DID, signer2)
		var update string
		for _, cid := range listCIDs(ctx, t, a2) {
			rr, err := a2.Read(ctx, cid)
			if err != nil {
				t.Fatal(err)
			}
			if rr.Data != nil {
				rr.Data.Close()
			}
			if info, _ := msg.Inspect(rr.Message); info.Kind() == "RecordsWrite" && !info.IsInitialWrite {
				update = cid
			}
		}
		if update == "" {
			t.Fatal("the seed wrote no update")
		}
		res, err := (&Copier{}).Copy(ctx, a2, b2, []dwn.Entry{{CID: update}})
		if err != nil {
			t.Fatal(err)
		}
		o := res.Outcomes[0]
		if o.Kind != dwn.Applied || o.Dependencies < 2 {
			t.Fatalf("update: %v (dependencies %d), want Applied after the configure and the initial write", o, o.Dependencies)
		}
		if got := listCIDs(ctx, t, b2); len(got) != 1+o.Dependencies {
			t.Fatalf("target lists %d CIDs, want the update and its %d dependencies", len(got), o.Dependencies)
		}
		t.Logf("update applied after %d dependencies fetched from the source", o.Dependencies)
	})
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

func reopen(ctx context.Context, t *testing.T, url string) *dialect.Client {
	t.Helper()
	c, err := dialect.Open(ctx, url, dialect.Options{Dialect: dwn.DialectWeb5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func listCIDs(ctx context.Context, t *testing.T, tenant dwn.Tenant) []string {
	t.Helper()
	cids, err := tenant.ListCIDs(ctx, dwn.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(cids)
	return cids
}

// dataHashes reads every cid (4 at a time) and returns the SHA-256 of its data ("" when the
// server holds none).
func dataHashes(ctx context.Context, t *testing.T, tenant dwn.Tenant, cids []string) map[string]string {
	t.Helper()
	out := make(map[string]string, len(cids))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, cid := range cids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h, err := dataHash(ctx, tenant, cid)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			out[cid] = h
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return out
}

func dataHash(ctx context.Context, tenant dwn.Tenant, cid string) (string, error) {
	rr, err := tenant.Read(ctx, cid)
	if err != nil {
		return "", fmt.Errorf("read %s from %s: %w", cid, tenant.Endpoint(), err)
	}
	if rr.Data == nil {
		return "", nil
	}
	defer rr.Data.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rr.Data); err != nil {
		return "", fmt.Errorf("read data of %s from %s: %w", cid, tenant.Endpoint(), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
