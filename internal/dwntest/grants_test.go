package dwntest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestDelegateMessagesGrants(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	n := Start(t, Options{Clock: clk})
	alice, bob := MustIdentity(t), MustIdentity(t)
	alice.UseClock(clk)
	bob.UseClock(clk)
	tenantWithNotes(t, n, alice, 2)
	unscoped := must[Written](t)(alice.Grant(bob.DID, map[string]any{"interface": "Messages", "method": "Read"}, time.Hour))
	scoped := must[Written](t)(alice.Grant(bob.DID, map[string]any{"interface": "Messages", "method": "Read", "protocol": notes}, time.Hour))
	seed(t, n, alice.DID, unscoped, scoped)

	ok := func(rep map[string]any) bool { return code(rep) == 200 }
	if rep := query(t, n, bob, alice.DID, map[string]any{}); code(rep) != 401 {
		t.Fatalf("a stranger without grants: %v", rep)
	}
	if rep := query(t, n, bob, alice.DID, map[string]any{}, unscoped.RecordID); !ok(rep) || len(entries(rep)) != 5 {
		t.Fatalf("unscoped grant: %v", rep)
	}
	rep := query(t, n, bob, alice.DID, map[string]any{}, scoped.RecordID)
	if code(rep) != 401 || !strings.Contains(detail(rep), "Unfiltered") {
		t.Fatalf("protocol-scoped grant with filters:[]: %v", rep)
	}
	filtered := map[string]any{"filters": []any{map[string]any{"protocol": notes}}}
	if rep := query(t, n, bob, alice.DID, filtered, scoped.RecordID); !ok(rep) {
		t.Fatalf("protocol-scoped grant with its protocol: %v", rep)
	}
	other := map[string]any{"filters": []any{map[string]any{"protocol": "https://example.com/other"}}}
	if rep := query(t, n, bob, alice.DID, other, scoped.RecordID); code(rep) != 401 {
		t.Fatalf("protocol-scoped grant with another protocol: %v", rep)
	}
	// A grant for somebody else does not help bob.
	carol := MustIdentity(t)
	if rep := query(t, n, carol, alice.DID, map[string]any{}, unscoped.RecordID); code(rep) != 401 {
		t.Fatalf("grant of another grantee: %v", rep)
	}
	// Subscribe with the same grants; the reply is 200.
	c := dialWS(t, n)
	if rep := c.subscribe(bob, alice.DID, "d", map[string]any{}, unscoped.RecordID); code(rep) != 200 {
		t.Fatalf("delegate subscribe: %v", rep)
	}
	// Revocation: every later request with that grant is refused, and the live subscription
	// ends at its next delivery.
	revoke := must[Written](t)(alice.Revoke(unscoped))
	seed(t, n, alice.DID, revoke)
	if rep := query(t, n, bob, alice.DID, map[string]any{}, unscoped.RecordID); code(rep) != 401 || !strings.Contains(detail(rep), "Revoked") {
		t.Fatalf("revoked grant: %v", rep)
	}
	f := c.subFrame("d")
	if f["type"] != "error" || f["error"].(map[string]any)["code"] != "MessagesSubscribeDeliveryAuthorizationFailed" {
		t.Fatalf("subscription after revocation: %v", f)
	}
	// Expiry on the node's clock.
	if rep := query(t, n, bob, alice.DID, filtered, scoped.RecordID); !ok(rep) {
		t.Fatalf("before expiry: %v", rep)
	}
	clk.Step(2 * time.Hour)
	if rep := query(t, n, bob, alice.DID, filtered, scoped.RecordID); code(rep) != 401 || !strings.Contains(detail(rep), "Expired") {
		t.Fatalf("after expiry: %v", rep)
	}
}

func TestDelegateMessagesReadIsScoped(t *testing.T) {
	n := Start(t, Options{})
	alice, bob := MustIdentity(t), MustIdentity(t)
	ws := tenantWithNotes(t, n, alice, 1)
	plain := must[Written](t)(alice.Write(WriteOpts{Data: []byte("outside the protocol")}))
	scoped := must[Written](t)(alice.Grant(bob.DID, map[string]any{"interface": "Messages", "method": "Read", "protocol": notes}, time.Hour))
	seed(t, n, alice.DID, plain, scoped)
	read := func(cid string) map[string]any {
		msg := must[json.RawMessage](t)(bob.Sign(map[string]any{"interface": "Messages", "method": "Read", "messageCid": cid}, scoped.RecordID))
		return process(t, n, alice.DID, msg, nil)
	}
	if rep := read(ws[1].CID); code(rep) != 200 {
		t.Fatalf("read inside the scope: %v", rep)
	}
	if rep := read(plain.CID); code(rep) != 401 {
		t.Fatalf("read outside the scope: %v", rep)
	}
	// The grant itself is tagged with the protocol, so it is in the scope's shadow.
	if rep := read(scoped.CID); code(rep) != 200 {
		t.Fatalf("read of the grant record: %v", rep)
	}
}
