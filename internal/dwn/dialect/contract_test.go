package dialect_test

// Contract suite (issue #4): one table of client-level cases, run through dwn.Tenant against
// the real @web5/dwn-server (one pair for the whole table) and against internal/dwntest in
// enbox and enbox-smt mode, so the fake is shown to behave like the real server wherever the
// two overlap. Faults exist only in dwntest; contract_faults_test.go shows what the client
// observes for each of them.
//
// Row                                                  Where
// ---------------------------------------------------  ---------------------------------------------------------
// dialect from /info (web5) or probing (enbox, smt),    TestContract/dialect (all three)
//   requests counted; pinned = none
// Go-authored messages (msg.SignRecordsWrite) accepted  TestContract/go-authored (all three; the real server too)
// paging until drained, exclusive cursors, ListCIDs     TestContract/paging (all three)
// Read of 100 B, 40,000 B and 300,000 B records;        TestContract/read (all three)
//   not found as a typed error (IsNotFound)
// Applied, Duplicate, Superseded, Incomplete for        TestContract/apply-outcomes (all three)
//   Protocol / InitialWrite (update, delete) / Parent; each resolved
//   from the source with Dependency
// subscribe: replay from a cursor, eose, live event     TestContract/subscribe (all three; web5 replay is emulated)
// delegate grants (web5 per-method, enbox Read grant);  TestContract/delegate (all three)
//   no grant and a stranger's key are Unauthorized
// digest after copying A→B equal, kind per dialect      TestContract/digest (all three)
// digests across dialects → ListingDigest, equal        TestContract/cross-dialect-digest (a web5 protocol → enbox, enbox-smt)
// 410 on subscribe (rotated epoch, compaction)           TestContractFaults/gap (enbox, enbox-smt)
// every injected fault                                  TestContractFaults (contract_faults_test.go)
//
// Covered elsewhere, not repeated here:
//   - CID, JWS and SMT vectors on dwntest's own computations: TestSpecWorkedExampleIsAcceptedByTheNode
//     (dwntest/vectors_test.go), TestSMTVectorsOnTheNodesOwnTrees (dwntest/smt_test.go),
//     TestCIDVectors / TestSigningVector* / TestSMTVectors (dwn).
//   - the 300,000-byte record's sha256 equal to what dwn-sdk-js wrote, and web5 cursor slicing: TestWeb5Server.
//   - enbox fingerprint equal to the node's own: TestEnboxAdapter; the SMT primitives
//     (root, leaves, diff): TestEnboxSMTAdapter.
//   - the -32601 apply fallback to dwn.processMessage: TestEnboxApplyFallsBackToProcessMessage.
//   - rpc.ack window, frames racing the reply, redial backoff on an injected clock: TestWSEnboxNode,
//     TestWSBackoffSchedule, TestWSDisconnectAndBackoff (mux level; the Tenant level is in the faults file).
//   - Retry-After bounds on a plain HTTP server: TestRPCRetriesHonourRetryAfter (rpc_test.go).
//   - the wire shape of each fault: dwntest/faults_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	dwndialect "github.com/dwnsync/dwnsync/internal/dwn/dialect"
	dwnmsg "github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
	"github.com/dwnsync/dwnsync/internal/dwntest"
)

// contractRecord names a record written by a backend's own author.
type contractRecord struct{ RecordID, CID string }

// contractAuthor writes to a backend's server A the way that server's own clients do
// (dwn-sdk-js for web5, dwntest.Identity straight into the node for dwntest), and reports A's
// CID set as the server itself sees it, bypassing internal/dwn.
type contractAuthor interface {
	configure(t *testing.T, protocol string) string
	write(t *testing.T, protocol, path string, parent *contractRecord, data []byte) contractRecord
	update(t *testing.T, r contractRecord, data []byte) contractRecord
	remove(t *testing.T, r contractRecord) string // RecordsDelete; returns its CID
	// delegate returns a new identity holding the dialect's Messages grants on A.
	delegate(t *testing.T) *dwnmsg.Signer
	listed(t *testing.T) []string
}

// contractBackend is one tenant on two servers of one dialect: A is the source, B the target.
type contractBackend struct {
	name    string
	dialect dwn.Dialect
	digest  dwn.DigestKind // what Digest reports for a whole-tenant scope
	urls    [2]string
	did     string
	signer  *dwnmsg.Signer
	a, b    dwn.Tenant
	author  contractAuthor
}

type contractCase struct {
	name string
	run  func(t *testing.T, ctx context.Context, be *contractBackend)
}

// contractCases run in order on every backend; later cases see what earlier ones wrote.
var contractCases = []contractCase{
	{"dialect", contractDialect},
	{"go-authored", contractGoAuthored},
	{"paging", contractPaging},
	{"read", contractRead},
	{"apply-outcomes", contractApplyOutcomes},
	{"subscribe", contractSubscribe},
	{"delegate", contractDelegate},
	{"digest", contractDigest},
}

func TestContract(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute) // the table takes ~1.5 min on a loaded machine
	defer cancel()
	start := time.Now()
	backends := startContractBackends(t)
	t.Logf("backends up in %s", time.Since(start).Round(time.Millisecond))
	for _, c := range contractCases {
		t.Run(c.name, func(t *testing.T) {
			for _, be := range backends {
				t.Run(be.name, func(t *testing.T) { c.run(t, ctx, be) })
			}
		})
	}
	t.Run("cross-dialect-digest", func(t *testing.T) { contractCrossDialectDigest(t, ctx, backends[0]) })
	t.Logf("whole table in %s", time.Since(start).Round(time.Millisecond))
}

func startContractBackends(t *testing.T) []*contractBackend {
	t.Helper()
	servers := dwnserver.Start(t, 2)
	client := dwnserver.NewClient(t)
	alice, err := client.NewTenant()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dwnmsg.NewSigner(alice.DID, alice.PrivateJWK)
	if err != nil {
		t.Fatal(err)
	}
	backends := []*contractBackend{{
		name: "web5", dialect: dwn.DialectWeb5, digest: dwn.DigestListing,
		urls: [2]string{servers[0].URL, servers[1].URL}, did: alice.DID, signer: signer,
		author: &web5Author{client: client, url: servers[0].URL, id: alice},
	}}
	for _, mode := range []struct {
		mode    dwntest.Mode
		dialect dwn.Dialect
		digest  dwn.DigestKind
	}{{dwntest.ModeEnbox, dwn.DialectEnbox, dwn.DigestFingerprint}, {dwntest.ModeEnboxSMT, dwn.DialectEnboxSMT, dwn.DigestSMTRoot}} {
		a, b := dwntest.Start(t, dwntest.Options{Mode: mode.mode}), dwntest.Start(t, dwntest.Options{Mode: mode.mode})
		id := dwntest.MustIdentity(t)
		backends = append(backends, &contractBackend{
			name: string(mode.mode), dialect: mode.dialect, digest: mode.digest,
			urls: [2]string{a.URL(), b.URL()}, did: id.DID, signer: id.Signer,
			author: &dwntestAuthor{node: a, id: id, latest: map[string]dwntest.Written{}},
		})
	}
	for _, be := range backends {
		_, be.a = openTenant(t, be.urls[0], be.did, be.signer)
		_, be.b = openTenant(t, be.urls[1], be.did, be.signer)
	}
	return backends
}

// contractDefinition is the protocol every case writes under: "note" at the root and
// "note/comment" below it (dwntest.Identity.ConfigureProtocol configures the same shape).
func contractDefinition(protocol string) json.RawMessage {
	raw, _ := json.Marshal(map[string]any{
		"protocol": protocol, "published": true,
		"types":     map[string]any{"note": map[string]any{}, "comment": map[string]any{}},
		"structure": map[string]any{"note": map[string]any{"comment": map[string]any{}}},
	})
	return raw
}

// contractProtocol gives each case its own protocol, so outcomes on B do not depend on the
// order the cases ran in.
func contractProtocol(t *testing.T) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return "https://dwnsync.test/protocols/contract/" + strings.ToLower(name)
}

// ---- cases shared by every backend ----

// Detection costs GET /info alone on web5 (never probe it: it does not answer unknown
// methods), /info plus the durable-feed probe on enbox, and one more probe (MessagesSync root)
// on enbox-smt; a pinned dialect sends nothing at Open.
func contractDialect(t *testing.T, ctx context.Context, be *contractBackend) {
	wantRequests := map[dwn.Dialect]int{dwn.DialectWeb5: 1, dwn.DialectEnbox: 2, dwn.DialectEnboxSMT: 3}[be.dialect]
	for _, url := range be.urls {
		for _, pinned := range []dwn.Dialect{dwn.DialectAuto, be.dialect} {
			rt := &countingTransport{base: http.DefaultTransport}
			c, err := dwndialect.Open(ctx, url, dwndialect.Options{Dialect: pinned, HTTPClient: &http.Client{Transport: rt, Timeout: 30 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			want := wantRequests
			if pinned != dwn.DialectAuto {
				want = 0
			}
			if c.Dialect() != be.dialect || int(rt.n.Load()) != want {
				t.Fatalf("%s opened with %q: dialect %q after %d requests, want %q after %d", url, pinned, c.Dialect(), rt.n.Load(), be.dialect, want)
			}
		}
		c, _ := openTenant(t, url, be.did, be.signer)
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if (info.Server == "@web5/dwn-server") != (be.dialect == dwn.DialectWeb5) {
			t.Fatalf("/info server %q for a %s endpoint", info.Server, be.dialect)
		}
	}
}

// countingTransport counts the HTTP requests a client sends.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// Messages authored in Go (dwntest.Identity, signed by msg.Signer) are accepted through Apply;
// on web5 this is the real server checking SignRecordsWrite and the recordId rule.
func contractGoAuthored(t *testing.T, ctx context.Context, be *contractBackend) {
	bob := dwntest.MustIdentity(t)
	_, target := openTenant(t, be.urls[1], bob.DID, bob.Signer)
	protocol := contractProtocol(t)
	cfg, _ := bob.ConfigureProtocol(protocol)
	note, _ := bob.Write(dwntest.WriteOpts{Protocol: protocol, ProtocolPath: "note", Data: []byte(`{"go":1}`), DataFormat: "application/json"})
	comment, _ := bob.Write(dwntest.WriteOpts{Protocol: protocol, ProtocolPath: "note/comment", Parent: &note, Data: []byte("reply")})
	update, _ := bob.Update(note, []byte(`{"go":2}`))
	for _, w := range []dwntest.Written{cfg, note, comment, update} {
		if r := applyBytes(t, ctx, target, w.Message, w.Data); r.Kind != dwn.Applied {
			t.Fatalf("apply %s: %+v", w, r)
		}
	}
	got, err := target.ListCIDs(ctx, dwn.Scope{})
	if err != nil || !sameSet(got, []string{cfg.CID, note.CID, comment.CID, update.CID}) {
		t.Fatalf("target lists %v (%v)", got, err)
	}
}

func contractPaging(t *testing.T, ctx context.Context, be *contractBackend) {
	protocol := contractProtocol(t)
	be.author.configure(t, protocol)
	for i := range 4 {
		be.author.write(t, protocol, "note", nil, []byte{byte('a' + i)})
	}
	paged, last := pageAllFrom(t, ctx, be.a, nil, 3)
	if dup := duplicates(paged); len(dup) > 0 {
		t.Fatalf("paging with limit 3 handed out %v twice", dup)
	}
	if want := be.author.listed(t); !sameSet(paged, want) {
		t.Fatalf("paged %d CIDs, the server lists %d\npaged %v\nlisted %v", len(paged), len(want), paged, want)
	}
	listed, err := be.a.ListCIDs(ctx, dwn.Scope{})
	if err != nil || !sameSet(listed, paged) {
		t.Fatalf("ListCIDs %d CIDs (%v), paged %d", len(listed), err, len(paged))
	}
	// The cursor is exclusive: after it comes nothing, then exactly the next write.
	p, err := be.a.FeedPage(ctx, dwn.Scope{}, last, 10, true)
	if err != nil || len(p.Entries) != 0 || !p.Drained {
		t.Fatalf("page after the drained cursor: %d entries, drained %v, %v", len(p.Entries), p.Drained, err)
	}
	next := be.author.write(t, protocol, "note", nil, []byte("next"))
	more, _ := pageAllFrom(t, ctx, be.a, last, 10)
	if !slices.Equal(more, []string{next.CID}) {
		t.Fatalf("after the cursor: %v, want only %s", more, next.CID)
	}
	t.Logf("%d CIDs in pages of 3", len(paged))
}

func contractRead(t *testing.T, ctx context.Context, be *contractBackend) {
	protocol := contractProtocol(t)
	be.author.configure(t, protocol)
	// Inline (≤ 30,000 B), streamed, and above one 262,144-byte UnixFS chunk (dag-pb dataCid).
	for _, size := range []int{100, 40_000, 300_000} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + i/251 + size)
		}
		rec := be.author.write(t, protocol, "note", nil, data)
		res, err := be.a.Read(ctx, rec.CID)
		if err != nil {
			t.Fatalf("read %d B record: %v", size, err)
		}
		if got, err := dwnmsg.MessageCID(res.Message); res.CID != rec.CID || got != rec.CID || err != nil {
			t.Fatalf("read %s: result CID %s, message recomputes to %s (%v)", rec.CID, res.CID, got, err)
		}
		if err := dwnmsg.VerifyMessage(res.Message); err != nil {
			t.Fatal(err)
		}
		if res.Data == nil {
			t.Fatalf("read %d B record: no data", size)
		}
		back, err := io.ReadAll(res.Data)
		res.Data.Close()
		info, _ := dwnmsg.Inspect(res.Message)
		dataCID, _, _ := dwnmsg.DataCID(bytes.NewReader(back))
		if err != nil || !bytes.Equal(back, data) || dataCID != info.DataCID || info.DataSize != int64(size) {
			t.Fatalf("%d B record: %d bytes back (%v), dataCid %s, descriptor %s / %d B", size, len(back), err, dataCID, info.DataCID, info.DataSize)
		}
	}
	absent, _ := dwnmsg.CIDOf(map[string]any{"absent": t.Name()})
	_, err := be.a.Read(ctx, absent)
	if !dwn.IsNotFound(err) || dwn.IsTransient(err) {
		t.Fatalf("read of an absent CID: %v, want a DWN 404", err)
	}
}

func contractApplyOutcomes(t *testing.T, ctx context.Context, be *contractBackend) {
	protocol := contractProtocol(t)
	be.author.configure(t, protocol)
	note := be.author.write(t, protocol, "note", nil, []byte("v0"))

	// B lacks the protocol.
	r := copyOne(t, ctx, be.a, be.b, note.CID)
	wantMissing(t, r, "Protocol", func(ref dwn.DependencyRef) bool { return ref.Protocol == protocol })
	resolveFromSource(t, ctx, be, r.Missing[0])
	if r := copyOne(t, ctx, be.a, be.b, note.CID); r.Kind != dwn.Applied {
		t.Fatalf("after its protocol: %+v", r)
	}
	if r := copyOne(t, ctx, be.a, be.b, note.CID); r.Kind != dwn.Duplicate {
		t.Fatalf("applied twice: %+v, want Duplicate", r)
	}

	// An older update arriving after a newer one. Read v1 before v2 exists: the source prunes
	// superseded writes.
	v1 := be.author.update(t, note, []byte("v1"))
	v1Msg, v1Data := fetch(t, ctx, be.a, v1.CID)
	v2 := be.author.update(t, note, []byte("v2"))
	if r := copyOne(t, ctx, be.a, be.b, v2.CID); r.Kind != dwn.Applied {
		t.Fatalf("newer update: %+v", r)
	}
	if r := applyBytes(t, ctx, be.b, v1Msg, v1Data); r.Kind != dwn.Superseded {
		t.Fatalf("older update after the newer one: %+v, want Superseded", r)
	}

	// An update whose initial write B lacks.
	other := be.author.write(t, protocol, "note", nil, []byte("w0"))
	otherV1 := be.author.update(t, other, []byte("w1"))
	r = copyOne(t, ctx, be.a, be.b, otherV1.CID)
	wantMissing(t, r, "InitialWrite", func(ref dwn.DependencyRef) bool { return ref.RecordID == other.RecordID })
	resolveFromSource(t, ctx, be, r.Missing[0])
	if r := copyOne(t, ctx, be.a, be.b, otherV1.CID); !r.Kind.Succeeded() {
		t.Fatalf("update after its initial write: %+v", r)
	}

	// A delete whose record B lacks.
	gone := be.author.write(t, protocol, "note", nil, []byte("to be deleted"))
	del := be.author.remove(t, gone)
	r = copyOne(t, ctx, be.a, be.b, del)
	wantMissing(t, r, "InitialWrite", func(ref dwn.DependencyRef) bool { return ref.RecordID == gone.RecordID })
	resolveFromSource(t, ctx, be, r.Missing[0])
	if r := copyOne(t, ctx, be.a, be.b, del); !r.Kind.Succeeded() {
		t.Fatalf("delete after its record: %+v", r)
	}

	// A child whose parent B lacks.
	parent := be.author.write(t, protocol, "note", nil, []byte("parent"))
	child := be.author.write(t, protocol, "note/comment", &parent, []byte("child"))
	r = copyOne(t, ctx, be.a, be.b, child.CID)
	wantMissing(t, r, "Parent", func(ref dwn.DependencyRef) bool { return ref.RecordID == parent.RecordID })
	resolveFromSource(t, ctx, be, r.Missing[0])
	if r := copyOne(t, ctx, be.a, be.b, child.CID); r.Kind != dwn.Applied {
		t.Fatalf("child after its parent: %+v", r)
	}
}

func contractSubscribe(t *testing.T, ctx context.Context, be *contractBackend) {
	protocol := contractProtocol(t)
	be.author.configure(t, protocol)
	_, head := pageAllFrom(t, ctx, be.a, nil, 0)
	missed := be.author.write(t, protocol, "note", nil, []byte("written before subscribing"))
	sub, err := be.a.Subscribe(ctx, dwn.Scope{}, head)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	replayed, _ := untilEOSE(t, ctx, sub)
	if !slices.Equal(replayed, []string{missed.CID}) {
		t.Fatalf("replayed %v before eose, want %s", replayed, missed.CID)
	}
	live := be.author.write(t, protocol, "note", nil, []byte("live"))
	waitCID(t, ctx, sub, live.CID)
}

func contractDelegate(t *testing.T, ctx context.Context, be *contractBackend) {
	protocol := contractProtocol(t)
	be.author.configure(t, protocol)
	rec := be.author.write(t, protocol, "note", nil, []byte("v0"))
	upd := be.author.update(t, rec, []byte("v1"))
	delegate := be.author.delegate(t)
	_, tn := openTenant(t, be.urls[0], be.did, delegate)

	owner, err := be.a.ListCIDs(ctx, dwn.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	listed, err := tn.ListCIDs(ctx, dwn.Scope{})
	if err != nil || !sameSet(listed, owner) {
		t.Fatalf("delegate lists %d CIDs (%v), the owner %d", len(listed), err, len(owner))
	}
	if res, err := tn.Read(ctx, upd.CID); err != nil {
		t.Fatalf("delegate read: %v", err)
	} else if res.Data != nil {
		res.Data.Close()
	}
	// A Messages-only delegate finds dependencies too (by scanning, where queries are refused).
	deps, err := tn.Dependency(ctx, dwn.DependencyRef{Type: "InitialWrite", RecordID: rec.RecordID, Protocol: protocol})
	if err != nil || len(deps) == 0 || deps[0].CID != rec.CID {
		t.Fatalf("delegate dependency lookup: %v %v (initial write %s)", cids(deps), err, rec.CID)
	}
	sub, err := tn.Subscribe(ctx, dwn.Scope{}, nil)
	if err != nil {
		t.Fatalf("delegate subscribe: %v", err)
	}
	defer sub.Close()
	waitEOSE(t, ctx, sub)
	live := be.author.write(t, protocol, "note", nil, []byte("for the delegate"))
	waitCID(t, ctx, sub, live.CID)

	// The same identity without its grants, and a stranger's key, are refused alike.
	_, bare := openTenant(t, be.urls[0], be.did, delegate.WithGrants(nil))
	stranger, _, _ := dwnmsg.GenerateSigner()
	_, strange := openTenant(t, be.urls[0], be.did, stranger)
	for name, refused := range map[string]dwn.Tenant{"without grants": bare, "stranger": strange} {
		_, err := refused.FeedPage(ctx, dwn.Scope{}, nil, 10, true)
		if !dwn.IsUnauthorized(err) || !strings.Contains(err.Error(), "signer Secret") {
			t.Fatalf("%s: %v, want Unauthorized naming the signer Secret", name, err)
		}
	}
}

func contractDigest(t *testing.T, ctx context.Context, be *contractBackend) {
	src, err := be.a.ListCIDs(ctx, dwn.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := copyAll(t, ctx, be.a, be.b, src)
	dst, err := be.b.ListCIDs(ctx, dwn.Scope{})
	if err != nil || !sameSet(dst, src) {
		t.Fatalf("B lists %d CIDs (%v), A %d", len(dst), err, len(src))
	}
	da, errA := be.a.Digest(ctx, dwn.Scope{})
	db, errB := be.b.Digest(ctx, dwn.Scope{})
	if errA != nil || errB != nil || da != db || da.Kind != be.digest {
		t.Fatalf("digests %+v (%v) and %+v (%v), want equal of kind %s", da, errA, db, errB, be.digest)
	}
	t.Logf("%d CIDs copied (%v); digest %s", len(src), outcomes, da.Kind)
}

// A protocol of the web5 tenant copied onto dwntest nodes: the digest kinds differ, so both
// sides fall back to a listing digest, and those are equal. (A protocol scope, because web5's
// permission grants live in https://tbd.website/dwn/permissions, which enbox servers do not
// know: they stay Incomplete{Protocol} there.)
func contractCrossDialectDigest(t *testing.T, ctx context.Context, web5 *contractBackend) {
	protocol := contractProtocol(t)
	scope := dwn.Scope{Protocol: protocol}
	web5.author.configure(t, protocol)
	note := web5.author.write(t, protocol, "note", nil, bytes.Repeat([]byte("n"), 40_000))
	web5.author.write(t, protocol, "note/comment", &note, []byte("comment"))
	web5.author.update(t, note, []byte("updated"))
	src, err := web5.a.ListCIDs(ctx, scope)
	if err != nil || len(src) != 4 { // configure, initial write, comment, update
		t.Fatalf("web5 lists %v (%v), want 4 CIDs", src, err)
	}
	dw, err := web5.a.Digest(ctx, scope)
	if err != nil || dw.Kind != dwn.DigestListing {
		t.Fatalf("web5 digest %+v (%v)", dw, err)
	}
	for _, mode := range []dwntest.Mode{dwntest.ModeEnbox, dwntest.ModeEnboxSMT} {
		n := dwntest.Start(t, dwntest.Options{Mode: mode})
		_, dst := openTenant(t, n.URL(), web5.did, web5.signer)
		copyAll(t, ctx, web5.a, dst, src)
		de, err := dst.Digest(ctx, scope)
		if err != nil || de.Kind == dw.Kind {
			t.Fatalf("%s digest %+v (%v): want a kind other than web5's %s", mode, de, err, dw.Kind)
		}
		listed, err := dst.ListCIDs(ctx, scope)
		if err != nil || !sameSet(listed, src) || !sameSet(n.CIDs(web5.did), src) {
			t.Fatalf("%s holds %v (%v), web5 %v", mode, listed, err, src)
		}
		if got := dwnmsg.ListingDigest(listed); got != dw.Value {
			t.Fatalf("%s listing digest %s, web5 %s", mode, got, dw.Value)
		}
	}
}

// ---- authors ----

type web5Author struct {
	client *dwnserver.Client
	url    string
	id     dwnserver.Identity
}

func (w *web5Author) configure(t *testing.T, protocol string) string {
	t.Helper()
	cid, err := w.client.ConfigureProtocol(w.url, w.id, contractDefinition(protocol))
	if err != nil {
		t.Fatal(err)
	}
	return cid
}

func (w *web5Author) write(t *testing.T, protocol, path string, parent *contractRecord, data []byte) contractRecord {
	t.Helper()
	o := dwnserver.WriteOpts{Protocol: protocol, ProtocolPath: path, Data: data}
	if parent != nil {
		o.ParentID = parent.RecordID
	}
	wr, err := w.client.Write(w.url, w.id, o)
	if err != nil {
		t.Fatal(err)
	}
	return contractRecord{RecordID: wr.RecordID, CID: wr.CID}
}

func (w *web5Author) update(t *testing.T, r contractRecord, data []byte) contractRecord {
	t.Helper()
	wr, err := w.client.Update(w.url, w.id, r.RecordID, data)
	if err != nil {
		t.Fatal(err)
	}
	return contractRecord{RecordID: wr.RecordID, CID: wr.CID}
}

func (w *web5Author) remove(t *testing.T, r contractRecord) string {
	t.Helper()
	cid, err := w.client.Delete(w.url, w.id, r.RecordID)
	if err != nil {
		t.Fatal(err)
	}
	return cid
}

func (w *web5Author) delegate(t *testing.T) *dwnmsg.Signer {
	t.Helper()
	bob, err := w.client.NewTenant()
	if err != nil {
		t.Fatal(err)
	}
	grants, err := w.client.ReplicatorGrants([]string{w.url}, w.id, bob.DID, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := dwnmsg.NewSigner(bob.DID, bob.PrivateJWK)
	if err != nil {
		t.Fatal(err)
	}
	return s.WithGrants(dwnmsg.Grants(grants))
}

func (w *web5Author) listed(t *testing.T) []string {
	t.Helper()
	cids, err := w.client.Query(w.url, w.id)
	if err != nil {
		t.Fatal(err)
	}
	return cids
}

type dwntestAuthor struct {
	node   *dwntest.Node
	id     *dwntest.Identity
	latest map[string]dwntest.Written // recordId → newest write
}

func (d *dwntestAuthor) store(t *testing.T, w dwntest.Written, err error) dwntest.Written {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if r := d.node.Write(d.id.DID, w.Message, w.Data); !r.Kind.Succeeded() {
		t.Fatalf("store %s: %+v", w, r)
	}
	if w.RecordID != "" {
		d.latest[w.RecordID] = w
	}
	return w
}

func (d *dwntestAuthor) configure(t *testing.T, protocol string) string {
	t.Helper()
	w, err := d.id.ConfigureProtocol(protocol)
	return d.store(t, w, err).CID
}

func (d *dwntestAuthor) write(t *testing.T, protocol, path string, parent *contractRecord, data []byte) contractRecord {
	t.Helper()
	o := dwntest.WriteOpts{Protocol: protocol, ProtocolPath: path, Data: data}
	if parent != nil {
		p := d.latest[parent.RecordID]
		o.Parent = &p
	}
	w, err := d.id.Write(o)
	w = d.store(t, w, err)
	return contractRecord{RecordID: w.RecordID, CID: w.CID}
}

func (d *dwntestAuthor) update(t *testing.T, r contractRecord, data []byte) contractRecord {
	t.Helper()
	w, err := d.id.Update(d.latest[r.RecordID], data)
	w = d.store(t, w, err)
	return contractRecord{RecordID: w.RecordID, CID: w.CID}
}

func (d *dwntestAuthor) remove(t *testing.T, r contractRecord) string {
	t.Helper()
	w, err := d.id.Delete(r.RecordID)
	return d.store(t, w, err).CID
}

func (d *dwntestAuthor) delegate(t *testing.T) *dwnmsg.Signer {
	t.Helper()
	bob := dwntest.MustIdentity(t)
	g, err := d.id.Grant(bob.DID, map[string]any{"interface": "Messages", "method": "Read"}, time.Hour)
	g = d.store(t, g, err)
	return bob.Signer.WithGrants(dwnmsg.Grants{"Read": g.RecordID}) // enbox: one Read grant for every Messages method
}

func (d *dwntestAuthor) listed(t *testing.T) []string { return d.node.CIDs(d.id.DID) }

// ---- helpers ----

// fetch reads a message and all its data from tn.
func fetch(t *testing.T, ctx context.Context, tn dwn.Tenant, cid string) (json.RawMessage, []byte) {
	t.Helper()
	res, err := tn.Read(ctx, cid)
	if err != nil {
		t.Fatalf("read %s: %v", cid, err)
	}
	if res.Data == nil {
		return res.Message, nil
	}
	defer res.Data.Close()
	data, err := io.ReadAll(res.Data)
	if err != nil {
		t.Fatalf("read data of %s: %v", cid, err)
	}
	return res.Message, data
}

func applyBytes(t *testing.T, ctx context.Context, tn dwn.Tenant, msg json.RawMessage, data []byte) dwn.ApplyResult {
	t.Helper()
	var body io.Reader
	if data != nil {
		body = bytes.NewReader(data)
	}
	r, err := tn.Apply(ctx, msg, body)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return r
}

// copyOne reads cid from src and applies it to dst.
func copyOne(t *testing.T, ctx context.Context, src, dst dwn.Tenant, cid string) dwn.ApplyResult {
	t.Helper()
	msg, data := fetch(t, ctx, src, cid)
	return applyBytes(t, ctx, dst, msg, data)
}

func wantMissing(t *testing.T, r dwn.ApplyResult, typ string, ok func(dwn.DependencyRef) bool) {
	t.Helper()
	if r.Kind != dwn.Incomplete || len(r.Missing) == 0 || r.Missing[0].Type != typ || !ok(r.Missing[0]) {
		t.Fatalf("got %+v, want Incomplete with a %s reference first", r, typ)
	}
}

// resolveFromSource looks ref up on the backend's source and applies what it finds to the target.
func resolveFromSource(t *testing.T, ctx context.Context, be *contractBackend, ref dwn.DependencyRef) {
	t.Helper()
	deps, err := be.a.Dependency(ctx, ref)
	if err != nil || len(deps) == 0 {
		t.Fatalf("dependency %+v from the source: %v %v", ref, cids(deps), err)
	}
	for _, d := range deps {
		if r := copyOne(t, ctx, be.a, be.b, d.CID); !r.Kind.Succeeded() {
			t.Fatalf("apply dependency %s of %+v: %+v", d.CID, ref, r)
		}
	}
}

// untilEOSE collects the CIDs delivered before the subscription's EOSE, acknowledging each,
// and returns them with the EOSE's cursor (the checkpoint to resume from).
func untilEOSE(t *testing.T, ctx context.Context, sub dwn.Subscription) ([]string, *dwn.Cursor) {
	t.Helper()
	var got []string
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok || ev.Kind == dwn.EventEnd {
				t.Fatalf("subscription ended before eose: %v (saw %v)", ev.Err, got)
			}
			if ev.Cursor != nil {
				sub.Ack(*ev.Cursor)
			}
			if ev.Kind == dwn.EventEOSE {
				return got, ev.Cursor
			}
			got = append(got, ev.Entry.CID)
		case <-ctx.Done():
			t.Fatalf("no eose before the deadline (saw %v)", got)
		}
	}
}

func duplicates(cids []string) []string {
	seen := map[string]bool{}
	var dup []string
	for _, c := range cids {
		if seen[c] {
			dup = append(dup, c)
		}
		seen[c] = true
	}
	return dup
}
