package standalone_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/dwntest"
	"github.com/dwnsync/dwnsync/internal/standalone"
	"github.com/dwnsync/dwnsync/internal/waittest"
)

// A message the remote serves with bytes that do not match its CID is dead-lettered; `dwnsync
// deadletters` lists it, retry copies it once the remote serves it intact (the corruption is
// one-shot), clear forgets another, and both actions are logged as link events.
func TestDeadLettersListRetryClear(t *testing.T) {
	local := dwntest.Start(t, dwntest.Options{})
	remote := dwntest.Start(t, dwntest.Options{})
	id := dwntest.MustIdentity(t)
	writeTo(t, remote, id, "seed")
	path := write(t, secretDoc("alice", id.DID, string(id.PrivateJWK))+"---\n"+linkDoc("alice", id.DID, remote.URL(), local.URL(), "alice", ""))
	logs := &logBuffer{}
	addr, _ := runFiles(t, path, logs)
	t.Cleanup(func() {
		if t.Failed() {
			s, _ := statusOf(t, addr, "default/alice")
			t.Logf("status: %+v\nlogs:\n%s", s, logs.String())
		}
	})
	waittest.For(t, 30*time.Second, 100*time.Millisecond, "the link live", func() bool {
		s, ok := statusOf(t, addr, "default/alice")
		return ok && s.Phase == v1alpha1.PhaseLive && len(local.CIDs(id.DID)) == 1
	})

	bad := corruptOne(t, addr, remote, id, "retried")
	if slices.Contains(local.CIDs(id.DID), bad) {
		t.Fatal("the corrupted message was stored locally")
	}
	act(t, addr, "retry", "alice")
	waittest.For(t, time.Minute, 100*time.Millisecond, "the retried message copied and its dead letter gone", func() bool {
		return slices.Contains(local.CIDs(id.DID), bad) && len(act(t, addr, "list", "alice").DeadLetters) == 0
	})

	other := corruptOne(t, addr, remote, id, "cleared")
	if got := act(t, addr, "clear", "default/alice").DeadLetters; len(got) != 1 || got[0].CID != other {
		t.Fatalf("clear forgot %+v; want the dead letter of %s", got, other)
	}
	if left := act(t, addr, "list", "alice").DeadLetters; len(left) != 0 {
		t.Fatalf("dead letters after clear: %+v", left)
	}
	for _, event := range []string{`"event"="dead-letters:retried" "message"="1 dead letter(s): [pull ` + bad + `]"`,
		`"event"="dead-letters:cleared" "message"="1 dead letter(s): [pull ` + other + `]"`} {
		// The runtime logs engine events from its own goroutine.
		waittest.For(t, time.Minute, 50*time.Millisecond, "the log line "+event, func() bool { return strings.Contains(logs.String(), event) })
	}
	// A GET (a browser, a scraper) never acts.
	if resp, err := http.Get("http://" + addr + standalone.DeadLettersPath + "/retry?link=alice"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET of the retry action: %v %v; want 405", resp, err)
	} else {
		resp.Body.Close()
	}
	if _, err := standalone.DeadLetterAction(context.Background(), addr, "list", "nobody", nil); err == nil || !strings.Contains(err.Error(), `no running link "nobody"`) {
		t.Errorf("an unknown link: %v; want it named", err)
	}
}

// corruptOne writes a message the remote serves corrupted once and waits until `deadletters
// list` shows it as a cid-mismatch.
func corruptOne(t *testing.T, addr string, remote *dwntest.Node, id *dwntest.Identity, prefix string) string {
	t.Helper()
	remote.CorruptNextMessages(1)
	cid := writeTo(t, remote, id, prefix)
	waittest.For(t, time.Minute, 100*time.Millisecond, "the corrupted message dead-lettered", func() bool {
		for _, d := range act(t, addr, "list", "alice").DeadLetters {
			if d.CID == cid && strings.HasPrefix(d.Reason, "cid-mismatch") {
				return true
			}
		}
		return false
	})
	out := &bytes.Buffer{}
	reply := act(t, addr, "list", "alice")
	if err := standalone.PrintDeadLetters(out, reply, time.Now()); err != nil || !strings.Contains(out.String(), cid) {
		t.Errorf("the printed list lacks %s (%v):\n%s", cid, err, out)
	}
	return cid
}

func act(t *testing.T, addr, action, link string) *standalone.DeadLettersReply {
	t.Helper()
	reply, err := standalone.DeadLetterAction(context.Background(), addr, action, link, nil)
	if err != nil {
		t.Fatalf("deadletters %s %s: %v", action, link, err)
	}
	return reply
}

// writeTo stores one new record of id on node, as another client of that server would.
func writeTo(t *testing.T, node *dwntest.Node, id *dwntest.Identity, prefix string) string {
	t.Helper()
	w, err := id.Write(dwntest.WriteOpts{Data: []byte(fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()))})
	if err != nil {
		t.Fatal(err)
	}
	if r := node.Write(id.DID, w.Message, w.Data); !r.Kind.Succeeded() {
		t.Fatalf("writing %s: %+v", w, r)
	}
	return w.CID
}
