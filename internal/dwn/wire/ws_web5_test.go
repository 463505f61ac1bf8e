package wire

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwnserver"
)

// wsSignedSubscribeParams signs a MessagesSubscribe for everything of tenant (filters []) and
// wraps it as {target, message}.
func wsSignedSubscribeParams(t *testing.T, tenant string, signer *msg.Signer) json.RawMessage {
	t.Helper()
	msg, err := signer.SignDescriptor(map[string]any{
		"interface":        "Messages",
		"method":           "Subscribe",
		"filters":          []any{},
		"messageTimestamp": msg.FormatTimestamp(time.Now()),
	})
	if err != nil {
		t.Fatal(err)
	}
	params, err := json.Marshal(map[string]any{"target": tenant, "message": msg})
	if err != nil {
		t.Fatal(err)
	}
	return params
}

// Against the real @web5/dwn-server: two tenants subscribe over one socket with signed
// MessagesSubscribe messages, each receives its own live write (the CID we compute matches the
// one the writer reports), a foreign signer is refused with 401, and Close is answered.
func TestWSWeb5RealServer(t *testing.T) {
	srv := dwnserver.Start(t, 1)[0]
	client := dwnserver.NewClient(t)
	m, err := NewMux(srv.URL, MuxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })

	type tenant struct {
		id     dwnserver.Identity
		signer *msg.Signer
		sub    *Subscription
	}
	tenants := make([]*tenant, 2)
	for i := range tenants {
		id, err := client.NewTenant()
		if err != nil {
			t.Fatal(err)
		}
		signer, err := msg.NewSigner(id.DID, id.PrivateJWK)
		if err != nil {
			t.Fatal(err)
		}
		sub, reply, err := m.Subscribe(wsCtx(t), wsSignedSubscribeParams(t, id.DID, signer))
		if err != nil {
			t.Fatalf("subscribe tenant %d: %v", i, err)
		}
		if code, _, err := wsReplyStatus(reply); err != nil || code != 200 {
			t.Fatalf("subscribe reply %s: %d %v", reply, code, err)
		}
		tenants[i] = &tenant{id: id, signer: signer, sub: sub}
	}

	for i, tn := range tenants {
		w, err := client.Write(srv.URL, tn.id, dwnserver.WriteOpts{Data: []byte(`{"hello":"websocket"}`), DataFormat: "application/json"})
		if err != nil {
			t.Fatalf("write tenant %d: %v", i, err)
		}
		f := wsRecvFrame(t, tn.sub)
		if f.Kind != wsFrameEvent || f.Cursor != nil {
			t.Fatalf("tenant %d: want a web5 event without cursor, got %+v", i, f)
		}
		info, err := msg.Inspect(f.Message)
		if err != nil {
			t.Fatal(err)
		}
		cid, err := msg.MessageCID(f.Message)
		if err != nil {
			t.Fatal(err)
		}
		if info.RecordID != w.RecordID || cid != w.CID || info.Interface != "Records" || info.Method != "Write" {
			t.Fatalf("tenant %d: event record %s cid %s (%s%s); want the write %s cid %s", i, info.RecordID, cid, info.Interface, info.Method, w.RecordID, w.CID)
		}
	}

	// A signer that is not the tenant (and holds no grant) is refused.
	_, _, err = m.Subscribe(wsCtx(t), wsSignedSubscribeParams(t, tenants[0].id.DID, tenants[1].signer))
	if !dwn.IsUnauthorized(err) {
		t.Fatalf("foreign signer: %v; want Unauthorized", err)
	}
	var de *dwn.Error
	if !errors.As(err, &de) || de.DWNCode != 401 {
		t.Fatalf("foreign signer: %v; want DWN 401", err)
	}

	for i, tn := range tenants {
		if err := tn.sub.Close(wsCtx(t)); err != nil {
			t.Fatalf("close tenant %d: %v", i, err)
		}
		if err, _ := wsWaitEnded(t, tn.sub); !errors.Is(err, errWSClosed) {
			t.Fatalf("tenant %d Err after Close: %v", i, err)
		}
	}
	// Closing a subscription the server no longer has is an error reply (-32602), not a hang.
	stale := &Subscription{conn: tenants[0].sub.conn, id: tenants[0].sub.ID()}
	if err := stale.closeOnServer(wsCtx(t)); !errors.As(err, &de) || de.RPCCode != -32602 {
		t.Fatalf("closing an unknown subscription: %v; want rpc -32602", err)
	}
	st := m.Stats()
	if st.Dials != 1 || st.GarbageFrames != 0 || st.ConnectionsLost != 0 {
		t.Fatalf("stats %+v: want one socket, no garbage, no loss", st)
	}
}
