package dialect

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
)

// docs/protocol-notes.md#apply-results-on-the-web5-server: what @web5/dwn-server answers to
// replicated messages, and what it means.
func TestClassifyProcessReply(t *testing.T) {
	write := msg.MessageInfo{Interface: "Records", Method: "Write", Protocol: "https://p", RecordID: "bafyrec", ParentID: "bafyparent", PermissionGrantID: "bafyreigrantfrompayloadxxxxxxxxxx"}
	cases := []struct {
		name   string
		status wire.Status
		want   dwn.ApplyResult
		mapped bool
	}{
		{"accepted", wire.Status{Code: 202, Detail: "Accepted"}, dwn.ApplyResult{Kind: dwn.Applied}, true},
		{"stored without data", wire.Status{Code: 204, Detail: "No Content"}, dwn.ApplyResult{Kind: dwn.Applied, AncestryOnly: true}, true},
		{"protocol missing", wire.Status{Code: 400, Detail: "ProtocolAuthorizationProtocolNotFound: unable to find protocol definition for https://p"},
			incomplete(dwn.DependencyRef{Type: "Protocol", Protocol: "https://p"}), true},
		{"initial write missing", wire.Status{Code: 400, Detail: "RecordsWriteGetInitialWriteNotFound: Initial write is not found."},
			incomplete(dwn.DependencyRef{Type: "InitialWrite", RecordID: "bafyrec", Protocol: "https://p"}), true},
		{"parent missing", wire.Status{Code: 400, Detail: "ProtocolAuthorizationIncorrectProtocolPath: Could not find matching parent record to verify declared protocol path 'note/comment'."},
			incomplete(dwn.DependencyRef{Type: "Parent", RecordID: "bafyparent", Protocol: "https://p"}), true},
		{"parent missing (seed-era enbox)", wire.Status{Code: 400, Detail: "ProtocolAuthorizationParentNotFound: no parent found with ID bafyparent"},
			incomplete(dwn.DependencyRef{Type: "Parent", RecordID: "bafyparent", Protocol: "https://p"}), true},
		{"parent missing (enbox)", wire.Status{Code: 400, Detail: "ProtocolAuthorizationParentRecordNotFound: x"},
			incomplete(dwn.DependencyRef{Type: "Parent", RecordID: "bafyparent", Protocol: "https://p"}), true},
		{"grant missing", wire.Status{Code: 401, Detail: "GrantAuthorizationGrantMissing: Could not find permission grant with record ID bafyreigrantidfromdetailaaaaaaaaaa."},
			incomplete(dwn.DependencyRef{Type: "Grant", PermissionGrant: "bafyreigrantidfromdetailaaaaaaaaaa"}), true},
		{"after delete", wire.Status{Code: 400, Detail: "RecordsWriteNotAllowedAfterDelete: x"}, dwn.ApplyResult{Kind: dwn.Superseded, Reason: "RecordsWriteNotAllowedAfterDelete: x"}, true},
		{"resolver", wire.Status{Code: 401, Detail: "GeneralJwsVerifierGetPublicKeyNotFound: x"}, dwn.ApplyResult{Kind: dwn.Deferred, Reason: "resolver-unavailable"}, true},
		{"unregistered tenant", wire.Status{Code: 401, Detail: "Not a registered tenant."}, dwn.ApplyResult{Kind: dwn.Deferred, Reason: "tenant-inactive"}, true},
		{"bad data", wire.Status{Code: 400, Detail: "RecordsWriteDataCidMismatch: actual data CID a does not match b"}, dwn.ApplyResult{Kind: dwn.Invalid, Reason: "RecordsWriteDataCidMismatch: actual data CID a does not match b"}, true},
		{"bad signature", wire.Status{Code: 401, Detail: "GeneralJwsVerifierInvalidSignature: x"}, dwn.ApplyResult{Kind: dwn.Invalid, Reason: "GeneralJwsVerifierInvalidSignature: x"}, true},
		{"conflict needs a lookup", wire.Status{Code: 409, Detail: "Conflict"}, dwn.ApplyResult{}, false},
		{"not found needs a lookup", wire.Status{Code: 404, Detail: "Not Found"}, dwn.ApplyResult{}, false},
		{"server error is an error", wire.Status{Code: 500, Detail: "boom"}, dwn.ApplyResult{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, mapped := classifyProcessReply(write, c.status)
			if mapped != c.mapped || got.Kind != c.want.Kind || got.AncestryOnly != c.want.AncestryOnly || got.Reason != c.want.Reason ||
				len(got.Missing) != len(c.want.Missing) || (len(got.Missing) == 1 && got.Missing[0] != c.want.Missing[0]) {
				t.Fatalf("got %+v (mapped %v), want %+v", got, mapped, c.want)
			}
		})
	}
	// A protocol-path failure without a parent is the message's own fault.
	root := write
	root.ParentID = ""
	if got, _ := classifyProcessReply(root, wire.Status{Code: 400, Detail: "ProtocolAuthorizationIncorrectProtocolPath: x"}); got.Kind != dwn.Invalid {
		t.Fatalf("root record path failure: %+v", got)
	}
}

func TestWeb5CursorDecoding(t *testing.T) {
	tn := &web5Tenant{tenantBase: tenantBase{did: "did:jwk:alice"}, cache: &web5PageCache{}}
	sc := &web5ServerCursor{MessageCID: "bafyx", Value: []byte(`31`)}
	c := tn.serverCursor(sc)
	if c.StreamID != streamID("did:jwk:alice") || c.Epoch != "web5" || c.Position != "31" || c.MessageCID != "bafyx" || !c.Valid() {
		t.Fatalf("server cursor %+v", c)
	}
	back, resume, err := tn.decodeCursor(c)
	if err != nil || resume != "" || string(back.Value) != "31" || back.MessageCID != "bafyx" {
		t.Fatalf("round trip: %+v %q %v", back, resume, err)
	}
	r := tn.resumeCursor(sc, "bafylast")
	back, resume, err = tn.decodeCursor(r)
	if err != nil || resume != "bafylast" || back.MessageCID != "bafyx" {
		t.Fatalf("resume round trip: %+v %q %v", back, resume, err)
	}
	start := tn.resumeCursor(nil, "bafyfirst")
	if back, resume, err = tn.decodeCursor(start); err != nil || back != nil || resume != "bafyfirst" {
		t.Fatalf("resume from start: %+v %q %v", back, resume, err)
	}
	for name, bad := range map[string]*dwn.Cursor{
		"other tenant": {StreamID: streamID("did:jwk:bob"), Epoch: "web5", Position: "1", MessageCID: "x"},
		"enbox token":  {StreamID: streamID("did:jwk:alice"), Epoch: "01J000", Position: "1"},
		"not JSON":     {StreamID: streamID("did:jwk:alice"), Epoch: "web5", Position: "{", MessageCID: "x"},
	} {
		if _, _, err := tn.decodeCursor(bad); err == nil {
			t.Errorf("%s: accepted", name)
		} else if _, ok := dwn.AsGap(err); !ok {
			t.Errorf("%s: %v is not a gap", name, err)
		}
	}
	if streamID("did:example:alice") != "6742201863cf8f21" { // docs/protocol-notes.md#stream-id example
		t.Fatalf("streamID = %s", streamID("did:example:alice"))
	}
}

func TestScopeFilters(t *testing.T) {
	if f, err := scopeFilters(dwn.Scope{}, false); err != nil || len(f) != 0 {
		t.Fatalf("whole tenant: %v %v", f, err)
	}
	f, err := scopeFilters(dwn.Scope{Protocol: "p", ProtocolPathPrefixes: []string{"a", "b/c"}}, true)
	if err != nil || len(f) != 2 || f[1].(map[string]any)["protocolPathPrefix"] != "b/c" {
		t.Fatalf("paths: %v %v", f, err)
	}
	if _, err := scopeFilters(dwn.Scope{Protocol: "p", ProtocolPathPrefixes: []string{"a"}}, false); !dwn.IsUnsupported(err) {
		t.Fatalf("web5 paths: %v", err)
	}
}

func TestOpenPinnedAndPool(t *testing.T) {
	var infos atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/info" {
			infos.Add(1)
			_, _ = w.Write([]byte(`{"server":"@web5/dwn-server","version":"0.6.1"}`))
			return
		}
		w.WriteHeader(404)
	}))
	defer srv.Close()
	ctx := context.Background()
	pinned, err := Open(ctx, srv.URL+"/", Options{Dialect: dwn.DialectEnbox})
	if err != nil || pinned.Dialect() != dwn.DialectEnbox || infos.Load() != 0 || pinned.Endpoint() != srv.URL {
		t.Fatalf("pinned open: %v %v, %d /info calls", pinned, err, infos.Load())
	}
	if _, ok := pinned.Tenant("did:jwk:x", nil).(dwn.SMTTenant); ok {
		t.Fatal("an enbox tenant must not claim SMT")
	}
	auto, err := Open(ctx, srv.URL, Options{})
	if err != nil || auto.Dialect() != dwn.DialectWeb5 || infos.Load() != 1 {
		t.Fatalf("auto open: %v %v", auto, err)
	}
	if _, err := Open(ctx, "ftp://x", Options{}); err == nil || !strings.Contains(err.Error(), "http(s)") {
		t.Fatalf("bad URL: %v", err)
	}
	if _, err := Open(ctx, srv.URL, Options{Dialect: "nope"}); err == nil {
		t.Fatal("unknown dialect accepted")
	}

	pool := NewPool(Options{})
	c1, err := pool.Get(ctx, srv.URL, dwn.DialectAuto)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := pool.Get(ctx, srv.URL+"/", dwn.DialectAuto)
	if c1 != c2 || infos.Load() != 2 {
		t.Fatalf("pool opened twice (%d /info calls)", infos.Load())
	}
	pool.Close()
	if _, err := pool.Get(ctx, srv.URL, dwn.DialectAuto); err == nil {
		t.Fatal("closed pool handed out a client")
	}
}
