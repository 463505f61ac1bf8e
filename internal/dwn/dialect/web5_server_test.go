package dialect_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
)

// These tests run against two real @web5/dwn-server 0.6.1 processes with messages made by
// dwn-sdk-js (issue #3 acceptance). They share one pair of servers and one seeded tenant
// because starting and seeding real servers dominates the run time.

type web5Env struct {
	servers []*dwnserver.Server
	client  *dwnserver.Client
	alice   dwnserver.Identity
	signer  *msg.Signer
	seed    dwnserver.SeedResult
	a, b    dwn.Tenant

	blob      []byte
	blobWrite dwnserver.Written
}

func newWeb5Env(t *testing.T) *web5Env {
	t.Helper()
	env := &web5Env{servers: dwnserver.Start(t, 2), client: dwnserver.NewClient(t)}
	var err error
	if env.alice, err = env.client.NewTenant(); err != nil {
		t.Fatal(err)
	}
	if env.signer, err = msg.NewSigner(env.alice.DID, env.alice.PrivateJWK); err != nil {
		t.Fatal(err)
	}
	// 6 small + 3 large (40,000 B) records, the first 2 updated, the last 2 deleted.
	env.seed, err = env.client.Seed(env.servers[0].URL, env.alice, dwnserver.SeedSpec{Records: 6, Large: 3, Updates: 2, Deletes: 2})
	if err != nil {
		t.Fatal(err)
	}
	// One large blob whose bytes we know, to compare what comes back with what was written.
	env.blob = make([]byte, 300_000) // two UnixFS chunks: its dataCid is a dag-pb root
	for i := range env.blob {
		env.blob[i] = byte(i*7 + i/251)
	}
	if env.blobWrite, err = env.client.Write(env.servers[0].URL, env.alice, dwnserver.WriteOpts{
		Protocol: dwnserver.SeedProtocol, ProtocolPath: "blob", Data: env.blob}); err != nil {
		t.Fatal(err)
	}
	env.a = env.tenant(t, 0, env.signer)
	env.b = env.tenant(t, 1, env.signer)
	return env
}

func (env *web5Env) tenant(t *testing.T, server int, signer *msg.Signer) dwn.Tenant {
	t.Helper()
	c, err := dialect.Open(t.Context(), env.servers[server].URL, dialect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if c.Dialect() != dwn.DialectWeb5 {
		t.Fatalf("detected dialect %q, want web5", c.Dialect())
	}
	return c.Tenant(env.alice.DID, signer)
}

func TestWeb5Server(t *testing.T) {
	env := newWeb5Env(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	var feed []string
	t.Run("page the whole feed", func(t *testing.T) {
		feed = pageAll(t, ctx, env.a, 3)
		want, err := env.client.Query(env.servers[0].URL, env.alice)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(feed, want) {
			t.Fatalf("paged %d CIDs %v\nserver lists %d %v", len(feed), feed, len(want), want)
		}
		if len(feed) != env.seed.ExpectedCIDs+1 { // + the blob
			t.Fatalf("paged %d CIDs, seed and blob make %d", len(feed), env.seed.ExpectedCIDs+1)
		}
		listed, err := env.a.ListCIDs(ctx, dwn.Scope{})
		if err != nil || !slices.Equal(listed, feed) {
			t.Fatalf("ListCIDs = %d CIDs (%v), feed %d", len(listed), err, len(feed))
		}
		t.Logf("paged %d CIDs in slices of 3", len(feed))
	})

	t.Run("read a large record with its data", func(t *testing.T) {
		large := 0
		for _, cid := range feed {
			res, err := env.a.Read(ctx, cid)
			if err != nil {
				t.Fatalf("read %s: %v", cid, err)
			}
			if got, err := msg.MessageCID(res.Message); err != nil || got != cid {
				t.Fatalf("read %s: message CID recomputes to %s (%v)", cid, got, err)
			}
			if err := msg.VerifyMessage(res.Message); err != nil {
				t.Fatalf("read %s: %v", cid, err)
			}
			info, _ := msg.Inspect(res.Message)
			if res.Data == nil {
				continue
			}
			data, err := io.ReadAll(res.Data)
			res.Data.Close()
			if err != nil {
				t.Fatalf("read data of %s: %v", cid, err)
			}
			dataCID, _, _ := msg.DataCID(bytes.NewReader(data))
			if int64(len(data)) != info.DataSize || dataCID != info.DataCID {
				t.Fatalf("data of %s: %d bytes, cid %s; descriptor says %d bytes, %s", cid, len(data), dataCID, info.DataSize, info.DataCID)
			}
			if len(data) > 30000 {
				large++
			}
		}
		if large < 2 { // one seeded large record survives the deletes, plus the blob
			t.Fatalf("%d records above 30,000 bytes came back with their data, want 2", large)
		}
		res, err := env.a.Read(ctx, env.blobWrite.CID)
		if err != nil || res.Data == nil {
			t.Fatalf("read the 300 KB blob: %v (data %v)", err, res.Data != nil)
		}
		data, err := io.ReadAll(res.Data)
		res.Data.Close()
		if err != nil || sha256.Sum256(data) != sha256.Sum256(env.blob) {
			t.Fatalf("blob: %d bytes back, %v; sha256 differs from what was written", len(data), err)
		}
		t.Logf("%d records over 30 KB read with matching dataCid (incl. the 300,000-byte dag-pb one); its sha256 matches what was written", large)
	})

	t.Run("apply every message from A to B", func(t *testing.T) {
		outcomes := copyAll(t, ctx, env.a, env.b, feed)
		got, err := env.b.ListCIDs(ctx, dwn.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		if !sameSet(got, feed) {
			t.Fatalf("B has %d CIDs, A %d\nB %v\nA %v", len(got), len(feed), got, feed)
		}
		da, _ := env.a.Digest(ctx, dwn.Scope{})
		db, _ := env.b.Digest(ctx, dwn.Scope{})
		if da != db || da.Kind != dwn.DigestListing {
			t.Fatalf("digests differ: %v vs %v", da, db)
		}
		t.Logf("B's CID set equals A's (%d CIDs); outcomes %v", len(got), outcomes)
	})

	t.Run("applying twice is Duplicate", func(t *testing.T) {
		for _, cid := range feed {
			res, err := env.a.Read(ctx, cid)
			if err != nil {
				t.Fatal(err)
			}
			out, err := env.b.Apply(ctx, res.Message, res.Data)
			if res.Data != nil {
				res.Data.Close()
			}
			if err != nil || out.Kind != dwn.Duplicate {
				info, _ := msg.Inspect(res.Message)
				t.Fatalf("re-apply %s (%s): %+v %v", cid, info.Kind(), out, err)
			}
		}
		t.Logf("%d re-applied messages all Duplicate", len(feed))
	})

	t.Run("an update before its initial write is Incomplete", func(t *testing.T) {
		w, err := env.client.Write(env.servers[0].URL, env.alice, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "note", Data: []byte(`{"n":"first"}`)})
		if err != nil {
			t.Fatal(err)
		}
		u, err := env.client.Update(env.servers[0].URL, env.alice, w.RecordID, []byte(`{"n":"second"}`))
		if err != nil {
			t.Fatal(err)
		}
		res, err := env.a.Read(ctx, u.CID)
		if err != nil {
			t.Fatal(err)
		}
		out, err := env.b.Apply(ctx, res.Message, res.Data)
		res.Data.Close()
		if err != nil || out.Kind != dwn.Incomplete || len(out.Missing) != 1 ||
			out.Missing[0].Type != "InitialWrite" || out.Missing[0].RecordID != w.RecordID {
			t.Fatalf("apply update first: %+v %v (record %s)", out, err, w.RecordID)
		}
		deps, err := env.a.Dependency(ctx, out.Missing[0])
		if err != nil || len(deps) == 0 || deps[0].CID != w.CID {
			t.Fatalf("dependency of %+v: %v %v (initial write %s)", out.Missing[0], cids(deps), err, w.CID)
		}
		for _, d := range deps {
			var data io.Reader
			if d.InlineData != nil {
				data = bytes.NewReader(d.InlineData)
			}
			if r, err := env.b.Apply(ctx, d.Message, data); err != nil || !r.Kind.Succeeded() {
				t.Fatalf("apply dependency %s: %+v %v", d.CID, r, err)
			}
		}
		res, _ = env.a.Read(ctx, u.CID)
		out, err = env.b.Apply(ctx, res.Message, res.Data)
		res.Data.Close()
		if err != nil || !out.Kind.Succeeded() {
			t.Fatalf("update after its initial write: %+v %v", out, err)
		}
		t.Logf("update → Incomplete{InitialWrite %s}; after its %d dependencies → %s", w.RecordID, len(deps), out.Kind)
	})

	t.Run("subscribe receives a live write", func(t *testing.T) {
		sub, err := env.a.Subscribe(ctx, dwn.Scope{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		waitEOSE(t, ctx, sub)
		w, err := env.client.Write(env.servers[0].URL, env.alice, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "note", Data: []byte(`{"live":true}`)})
		if err != nil {
			t.Fatal(err)
		}
		waitCID(t, ctx, sub, w.CID)
	})

	t.Run("subscribe replays from a cursor", func(t *testing.T) {
		p, err := env.a.FeedPage(ctx, dwn.Scope{}, nil, 0, true)
		if err != nil || p.Cursor == nil {
			t.Fatalf("head: %v %v", p.Cursor, err)
		}
		w, err := env.client.Write(env.servers[0].URL, env.alice, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "note", Data: []byte(`{"after":"cursor"}`)})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := env.a.Subscribe(ctx, dwn.Scope{}, p.Cursor)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		waitCID(t, ctx, sub, w.CID)
	})

	t.Run("a delegate with grants can read and subscribe", func(t *testing.T) {
		bob, err := env.client.NewTenant()
		if err != nil {
			t.Fatal(err)
		}
		grants, err := env.client.ReplicatorGrants([]string{env.servers[0].URL}, env.alice, bob.DID, "")
		if err != nil {
			t.Fatal(err)
		}
		bobSigner, err := msg.NewSigner(bob.DID, bob.PrivateJWK)
		if err != nil {
			t.Fatal(err)
		}
		delegate := env.tenant(t, 0, bobSigner.WithGrants(msg.Grants(grants)))
		listed, err := delegate.ListCIDs(ctx, dwn.Scope{})
		if err != nil || len(listed) < len(feed) {
			t.Fatalf("delegate listing: %d CIDs, %v", len(listed), err)
		}
		res, err := delegate.Read(ctx, listed[len(listed)-1])
		if err != nil {
			t.Fatalf("delegate read: %v", err)
		}
		if res.Data != nil {
			res.Data.Close()
		}
		sub, err := delegate.Subscribe(ctx, dwn.Scope{}, nil)
		if err != nil {
			t.Fatalf("delegate subscribe: %v", err)
		}
		defer sub.Close()
		waitEOSE(t, ctx, sub)
		w, err := env.client.Write(env.servers[0].URL, env.alice, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "note", Data: []byte(`{"for":"bob"}`)})
		if err != nil {
			t.Fatal(err)
		}
		waitCID(t, ctx, sub, w.CID)
		// Dependencies: a Messages-only delegate may not RecordsQuery, so it scans the feed.
		w, err = env.client.Write(env.servers[0].URL, env.alice, dwnserver.WriteOpts{Protocol: dwnserver.SeedProtocol, ProtocolPath: "note", Data: []byte(`{"dep":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.client.Update(env.servers[0].URL, env.alice, w.RecordID, []byte(`{"dep":2}`)); err != nil {
			t.Fatal(err)
		}
		deps, err := delegate.Dependency(ctx, dwn.DependencyRef{Type: "InitialWrite", RecordID: w.RecordID, Protocol: dwnserver.SeedProtocol})
		if err != nil || len(deps) != 2 || deps[0].CID != w.CID {
			t.Fatalf("delegate dependency lookup: %v %v (initial write %s)", cids(deps), err, w.CID)
		}
		// Without grants the same identity is refused.
		_, err = env.tenant(t, 0, bobSigner).ListCIDs(ctx, dwn.Scope{})
		if !dwn.IsUnauthorized(err) {
			t.Fatalf("delegate without grants: %v", err)
		}
		t.Logf("delegate listed %d CIDs, read and received a live write", len(listed))
	})

	t.Run("a wrong key is refused with a clear error", func(t *testing.T) {
		mallory, _, err := msg.GenerateSigner()
		if err != nil {
			t.Fatal(err)
		}
		_, err = env.tenant(t, 0, mallory).FeedPage(ctx, dwn.Scope{}, nil, 10, true)
		if !dwn.IsUnauthorized(err) || !strings.Contains(err.Error(), "signer Secret") {
			t.Fatalf("stranger's key: %v", err)
		}
		t.Logf("stranger: %v", err)
		// A Secret pairing alice's DID with another key never gets to the server.
		_, malloryKey, _ := msg.GenerateSigner()
		if _, err := msg.NewSigner(env.alice.DID, malloryKey); err == nil || !strings.Contains(err.Error(), "different DID") {
			t.Fatalf("mismatched Secret accepted: %v", err)
		}
	})
}

// pageAll pages the feed from the start in slices of limit until drained.
func pageAll(t *testing.T, ctx context.Context, tn dwn.Tenant, limit int) []string {
	t.Helper()
	out, _ := pageAllFrom(t, ctx, tn, nil, limit)
	return out
}

// pageAllFrom pages the feed after `after` until drained and returns the CIDs and the cursor
// of the last page that had one (the resume point), or `after` when no page had one.
func pageAllFrom(t *testing.T, ctx context.Context, tn dwn.Tenant, after *dwn.Cursor, limit int) ([]string, *dwn.Cursor) {
	t.Helper()
	var out []string
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("feed never drained")
		}
		p, err := tn.FeedPage(ctx, dwn.Scope{}, after, limit, true)
		if err != nil {
			t.Fatal(err)
		}
		if limit > 0 && len(p.Entries) > limit {
			t.Fatalf("page of %d entries for limit %d", len(p.Entries), limit)
		}
		for _, e := range p.Entries {
			out = append(out, e.CID)
		}
		if p.Cursor != nil {
			after = p.Cursor
		}
		if p.Drained {
			return out, after
		}
	}
}

// copyAll applies every CID of src to dst, configures first, resolving Incomplete from src.
func copyAll(t *testing.T, ctx context.Context, src, dst dwn.Tenant, feed []string) map[dwn.ApplyKind]int {
	t.Helper()
	outcomes := map[dwn.ApplyKind]int{}
	var configures, rest []string
	for _, cid := range feed {
		res, err := src.Read(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		if res.Data != nil {
			res.Data.Close()
		}
		if info, _ := msg.Inspect(res.Message); info.Kind() == "ProtocolsConfigure" {
			configures = append(configures, cid)
		} else {
			rest = append(rest, cid)
		}
	}
	var apply func(cid string, depth int)
	apply = func(cid string, depth int) {
		res, err := src.Read(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		out, err := dst.Apply(ctx, res.Message, res.Data)
		if res.Data != nil {
			res.Data.Close()
		}
		if err != nil {
			t.Fatalf("apply %s: %v", cid, err)
		}
		outcomes[out.Kind]++
		switch {
		case out.Kind.Succeeded():
		case out.Kind == dwn.Incomplete && depth < 5:
			for _, ref := range out.Missing {
				deps, err := src.Dependency(ctx, ref)
				if err != nil {
					t.Fatalf("dependency %+v: %v", ref, err)
				}
				for _, d := range deps {
					apply(d.CID, depth+1)
				}
			}
			apply(cid, depth+1)
		default:
			t.Fatalf("apply %s: %+v", cid, out)
		}
	}
	for _, cid := range append(configures, rest...) {
		apply(cid, 0)
	}
	return outcomes
}

func waitEOSE(t *testing.T, ctx context.Context, sub dwn.Subscription) {
	t.Helper()
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok || ev.Kind == dwn.EventEnd {
				t.Fatalf("subscription ended before EOSE: %v", ev.Err)
			}
			if ev.Kind == dwn.EventEOSE {
				return
			}
		case <-ctx.Done():
			t.Fatal("no EOSE before the deadline")
		}
	}
}

func waitCID(t *testing.T, ctx context.Context, sub dwn.Subscription, cid string) {
	t.Helper()
	deadline, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var seen []string
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok || ev.Kind == dwn.EventEnd {
				t.Fatalf("subscription ended before %s arrived: %v (saw %v)", cid, ev.Err, seen)
			}
			if ev.Kind == dwn.EventMessage {
				if ev.Entry.CID == cid {
					return
				}
				seen = append(seen, ev.Entry.CID)
			}
		case <-deadline.Done():
			t.Fatalf("%s not delivered within 30 s (saw %v)", cid, seen)
		}
	}
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func cids(es []dwn.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%s", e.CID)
	}
	return out
}
