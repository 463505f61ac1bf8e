package dwnserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const notesProtocol = "https://dwnsync.test/protocols/notes"

var notesDefinition = json.RawMessage(`{
  "protocol": "` + notesProtocol + `",
  "published": true,
  "types": {
    "note": {"schema": "https://dwnsync.test/schemas/note", "dataFormats": ["application/json"]},
    "comment": {"dataFormats": ["application/json"]},
    "blob": {"dataFormats": ["application/octet-stream"]}
  },
  "structure": {"note": {"comment": {}}, "blob": {}}
}`)

// TestTwoServersRealMessages walks every client command against two real servers and checks
// each listing against what the writes imply.
func TestTwoServersRealMessages(t *testing.T) {
	servers := Start(t, 2)
	a, b := servers[0], servers[1]
	c := NewClient(t)

	for _, s := range servers {
		assertLoopbackOnly(t, s.Port)
		conn, _, err := websocket.DefaultDialer.Dial(s.WebSocketURL(), nil)
		if err != nil {
			t.Fatalf("WebSocket %s: %v", s.WebSocketURL(), err)
		}
		conn.Close()
		var info struct {
			Server, Version, SDKVersion string
			WebSocketSupport            bool
		}
		getJSON(t, s.URL+"/info", &info)
		if info.Server != "@web5/dwn-server" || info.Version != "0.6.1" || info.SDKVersion != "0.5.2" || !info.WebSocketSupport {
			t.Fatalf("%s/info = %+v, want @web5/dwn-server 0.6.1, sdk 0.5.2, websockets on", s.URL, info)
		}
	}

	alice, err := c.NewTenant()
	noErr(t, err)
	replicator, err := c.NewTenant()
	noErr(t, err)
	if !strings.HasPrefix(alice.DID, "did:jwk:") || alice.DID == replicator.DID {
		t.Fatalf("tenants %q and %q: want two distinct did:jwk DIDs", alice.DID, replicator.DID)
	}
	var jwk map[string]string
	if err := json.Unmarshal(alice.PrivateJWK, &jwk); err != nil || jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" || jwk["d"] == "" {
		t.Fatalf("privateJwk %s: want an Ed25519 private JWK (%v)", alice.PrivateJWK, err)
	}

	configureCID, err := c.ConfigureProtocol(a.URL, alice, notesDefinition)
	noErr(t, err)
	note, err := c.Write(a.URL, alice, WriteOpts{Protocol: notesProtocol, ProtocolPath: "note", Data: []byte(`{"n":1}`)})
	noErr(t, err)
	comment, err := c.Write(a.URL, alice, WriteOpts{Protocol: notesProtocol, ProtocolPath: "note/comment", ParentID: note.RecordID, Data: []byte(`{"c":1}`)})
	noErr(t, err)
	if want := note.ContextID + "/" + comment.RecordID; comment.ContextID != want {
		t.Errorf("comment contextId = %s, want %s (parent/child)", comment.ContextID, want)
	}
	blobData := make([]byte, 45_000) // above the 30,000-byte inline limit: goes to the DataStore
	rand.Read(blobData)
	blob, err := c.Write(a.URL, alice, WriteOpts{Protocol: notesProtocol, ProtocolPath: "blob", Data: blobData})
	noErr(t, err)
	firstUpdate, err := c.Update(a.URL, alice, note.RecordID, []byte(`{"n":2}`))
	noErr(t, err)
	lastUpdate, err := c.Update(a.URL, alice, note.RecordID, []byte(`{"n":3}`))
	noErr(t, err)
	deleteCID, err := c.Delete(a.URL, alice, comment.RecordID)
	noErr(t, err)
	grantID, err := c.GrantOn([]string{a.URL, b.URL}, alice, replicator.DID, json.RawMessage(`{"interface":"Messages","method":"Query"}`))
	if err != nil {
		t.Fatal(err)
	}

	// The listing is the current state: the first update was superseded and pruned; the
	// comment's initial write stays next to its delete.
	listed, err := c.Query(a.URL, alice)
	noErr(t, err)
	grantCIDs := without(listed, configureCID, note.CID, comment.CID, blob.CID, lastUpdate.CID, deleteCID)
	if len(listed) != 7 || len(grantCIDs) != 1 || slices.Contains(listed, firstUpdate.CID) {
		t.Fatalf("server A lists %d CIDs %v; want configure, 3 initial writes, the last update, the delete and the grant (7)", len(listed), listed)
	}
	listedB, err := c.Query(b.URL, alice)
	noErr(t, err)
	if !slices.Equal(listedB, grantCIDs) {
		t.Fatalf("server B lists %v, want only the grant %v", listedB, grantCIDs)
	}

	// The grant works on both servers: the replicator lists alice's messages with it.
	for _, s := range servers {
		viaGrant, err := c.QueryAs(s.URL, alice.DID, replicator, grantID)
		noErr(t, err)
		want, err := c.Query(s.URL, alice)
		noErr(t, err)
		if !slices.Equal(viaGrant, want) {
			t.Errorf("%s: listing via grant %v differs from the tenant's own %v", s.URL, viaGrant, want)
		}
	}
	if _, err := c.QueryAs(a.URL, alice.DID, replicator, ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("query by the replicator without its grant: err = %v, want a 401", err)
	}

	// Large data comes back byte for byte through MessagesRead (dwn-response framing).
	read, err := c.Read(a.URL, alice, blob.CID)
	noErr(t, err)
	if read.Status != 200 || !bytes.Equal(read.Data, blobData) {
		t.Fatalf("MessagesRead of the blob: status %d, %d bytes; want 200 and the %d bytes written", read.Status, len(read.Data), len(blobData))
	}

	// A fresh client process knows nothing of the blob: it reads the newest write
	// (RecordsRead) to build the update on.
	other := NewClient(t)
	blobData2 := make([]byte, 35_000)
	rand.Read(blobData2)
	blobUpdate, err := other.Update(a.URL, alice, blob.RecordID, blobData2)
	noErr(t, err)
	read, err = c.Read(a.URL, alice, blobUpdate.CID)
	noErr(t, err)
	if read.Status != 200 || !bytes.Equal(read.Data, blobData2) {
		t.Fatalf("MessagesRead of the blob update: status %d, %d bytes; want 200 and %d bytes", read.Status, len(read.Data), len(blobData2))
	}
	if listed, err = c.Query(a.URL, alice); err != nil || len(listed) != 8 {
		t.Fatalf("server A lists %d CIDs after the blob update (%v), want 8", len(listed), err)
	}

	seeded, err := c.Seed(b.URL, alice, SeedSpec{Records: 45, Large: 5, Updates: 10, Deletes: 5, Prefix: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if len(seeded.RecordIDs) != 50 || len(seeded.Updated) != 10 || len(seeded.Deleted) != 5 || seeded.Configured != 1 {
		t.Fatalf("seed result %+v: want 50 records, 10 updated, 5 deleted, protocol configured", seeded)
	}
	// configure + 50 initial writes + 10 latest updates + 5 deletes
	if seeded.ExpectedCIDs != 66 || seeded.Messages != 1+50+10+5 {
		t.Errorf("seed says %d expected CIDs for %d messages, want 66 for 66", seeded.ExpectedCIDs, seeded.Messages)
	}
	listedB, err = c.Query(b.URL, alice)
	noErr(t, err)
	if len(listedB) != 1+66 {
		t.Fatalf("server B lists %d CIDs after the seed, want 67 (the grant + 66)", len(listedB))
	}
	listedA, err := c.Query(a.URL, alice)
	noErr(t, err)
	if len(listedA) != 8 {
		t.Fatalf("server A lists %d CIDs after seeding B, want still 8", len(listedA))
	}
	t.Logf("seed: %d messages in %s = %.1f msg/s (8 in flight, tmpfs=%v)",
		seeded.Messages, seeded.Elapsed().Round(time.Millisecond), seeded.Rate(), strings.HasPrefix(b.DataDir, tmpfsRoot))

	// Seeding again reuses the configured protocol.
	again, err := c.Seed(b.URL, alice, SeedSpec{Records: 2})
	noErr(t, err)
	if again.Configured != 0 || again.ExpectedCIDs != 2 {
		t.Errorf("second seed: %+v, want configured 0 and 2 new CIDs", again)
	}
	listedB, err = c.Query(b.URL, alice)
	noErr(t, err)
	if len(listedB) != 1+66+2 {
		t.Errorf("server B lists %d CIDs after the second seed, want 69", len(listedB))
	}

	// Protocol-scoped replicator grants, one per Messages method, on both servers.
	grants, err := c.ReplicatorGrants([]string{a.URL, b.URL}, alice, replicator.DID, notesProtocol)
	noErr(t, err)
	if len(grants) != 3 || grants["Query"] == "" || grants["Read"] == "" || grants["Subscribe"] == "" {
		t.Fatalf("replicator grants %v, want Query, Read and Subscribe", grants)
	}
	for server, want := range map[*Server]int{a: 8 + 3, b: 69 + 3} {
		viaGrant, err := c.QueryAs(server.URL, alice.DID, replicator, grants["Query"])
		noErr(t, err)
		// A scoped grant with filters: [] lists the whole tenant
		// (docs/protocol-notes.md#messages-authorization).
		if len(viaGrant) != want {
			t.Errorf("%s lists %d CIDs via the scoped Query grant, want %d", server.URL, len(viaGrant), want)
		}
	}
	if _, err := c.QueryAs(a.URL, alice.DID, replicator, grants["Read"]); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("query with the Read grant: err = %v, want 401 (method mismatch)", err)
	}
}

func TestStopIsGracefulAndIdempotent(t *testing.T) {
	s, err := StartProcess(t.Context(), filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v, want a clean exit on SIGTERM\n%s", err, s.LogTail(20))
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := http.Get(s.URL + "/health"); err == nil {
		t.Fatalf("%s still answers after Stop", s.URL)
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, "dwn.sqlite")); err != nil {
		t.Errorf("no SQLite store in the data dir: %v", err)
	}
}

func TestStartProcessStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s, err := StartProcess(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-s.Exited():
	case <-time.After(StopTimeout):
		t.Fatal("server still running after its context ended")
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("exit after context end: %v", err)
	}
}

// A taken port must fail fast (the bare server would hang), so StartProcess can move on.
func TestLaunchOnTakenPortFailsFast(t *testing.T) {
	h, err := locateHarness()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err = launch(ctx, h, t.TempDir(), port)
	if !errors.Is(err, errPortInUse) {
		t.Fatalf("launch on a taken port: %v, want errPortInUse", err)
	}
}

// A port taken by another server that answers /health (another test's dwn-server, in the race
// between the free-port probe and the listen) is still a taken port: launch must not mistake
// that server's answer for its own.
func TestLaunchIgnoresAnotherServersHealth(t *testing.T) {
	h, err := locateHarness()
	if err != nil {
		t.Fatal(err)
	}
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer foreign.Close()
	port := foreign.Listener.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, err := launch(ctx, h, t.TempDir(), port)
	if err == nil {
		_ = s.Stop()
		t.Fatal("launch on a port another server holds reported a healthy server of its own")
	}
	if !errors.Is(err, errPortInUse) {
		t.Fatalf("launch on a taken port: %v, want errPortInUse", err)
	}
}

func TestMissingInstallNamesTheFix(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "hack", "dwn-server")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(RootEnv, root)
	_, err := locateHarness()
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "run hack/dwn-server/install.sh") {
		t.Fatalf("err = %v, want ErrNotInstalled naming install.sh", err)
	}
}

func TestClientReportsErrors(t *testing.T) {
	c := NewClient(t)
	// Nothing listens on a just-freed port: the error must come back as an error, and the
	// client must keep serving afterwards.
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.NewTenant()
	noErr(t, err)
	if _, err := c.Query("http://127.0.0.1:"+strconv.Itoa(port), id); err == nil {
		t.Fatal("query of a closed port succeeded")
	}
	if _, err := c.Write("http://127.0.0.1:1", Identity{DID: id.DID, PrivateJWK: json.RawMessage(`{"kty":"EC"}`)}, WriteOpts{}); err == nil || !strings.Contains(err.Error(), "privateJwk") {
		t.Fatalf("write with an EC key: err = %v, want one naming privateJwk", err)
	}
	if err := c.call("noSuchCommand", nil, CallTimeout, nil); err == nil || !strings.Contains(err.Error(), "unknown cmd") {
		t.Fatalf("unknown command: err = %v", err)
	}
	if _, err := c.NewTenant(); err != nil {
		t.Fatalf("client unusable after errors: %v", err)
	}
}

// assertLoopbackOnly checks /proc/net/tcp{,6}: every listener on port is bound to 127.0.0.1.
func assertLoopbackOnly(t *testing.T, port int) {
	t.Helper()
	suffix := ":" + strings.ToUpper(strconv.FormatInt(int64(port), 16))
	var found []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		raw, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) > 3 && fields[3] == "0A" && strings.HasSuffix(fields[1], suffix) {
				found = append(found, fields[1])
			}
		}
	}
	if len(found) == 0 {
		t.Fatalf("no listener on port %d in /proc/net/tcp", port)
	}
	for _, addr := range found {
		if addr != "0100007F"+suffix {
			t.Fatalf("port %d listens on %s; want 127.0.0.1 (0100007F) only", port, addr)
		}
	}
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func without(all []string, drop ...string) []string {
	var rest []string
	for _, cid := range all {
		if !slices.Contains(drop, cid) {
			rest = append(rest, cid)
		}
	}
	return rest
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
