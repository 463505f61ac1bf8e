package ledger

import (
	"strings"
	"testing"

	ls "github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// oldRecord is a schema-2 value exactly as the build before the typed phase and direction
// (string fields, ledger.Dir) wrote it.
const oldRecord = `{"schema":2,"key":"did:example:alice^https://remote.example^all","tenant":"did:example:alice","localEndpoint":"http://local:3000","remoteEndpoint":"https://remote.example","scopeId":"all","scope":{},"status":"degraded_poll","needsReconcile":true,"repairAttempts":2,"pull":{"received":{"streamId":"s1","epoch":"e1","position":"42","messageCid":"bafypull"},"contiguous":{"streamId":"s1","epoch":"e1","position":"41","messageCid":"bafyprev"}},"push":{"contiguous":{"streamId":"s2","epoch":"e2","position":"\"01J\"","messageCid":"bafypush"}},"lastActivity":"2026-03-04T05:06:07.000000008Z","counters":{"pulled":5,"pushed":6,"failed":2},"deadLetters":[{"cid":"bafydead1","direction":"pull","reason":"invalid","at":"2026-03-04T05:06:07.000000008Z"},{"cid":"bafydead2","direction":"push","reason":"cid-mismatch","at":"2026-03-04T05:06:07.000000008Z"}],"lastReconcile":"2026-03-04T05:06:07.000000008Z","lastConverged":"2026-03-04T04:06:07.000000008Z","ownerUID":"uid-1"}`

// A record written before the phase and directions were typed reads into the typed fields,
// and writing it back gives the same bytes: the on-disk format did not change.
func TestOldRecordReadsTypedAndWritesSameBytes(t *testing.T) {
	key := "did:example:alice^https://remote.example^all"
	rec, migrated, err := decodeRecord(key, []byte(oldRecord))
	if err != nil || migrated {
		t.Fatalf("decode: migrated=%v err=%v", migrated, err)
	}
	if rec.Phase != ls.DegradedPoll || len(rec.DeadLetters) != 2 ||
		rec.DeadLetters[0].Direction != ls.Pull || rec.DeadLetters[1].Direction != ls.Push {
		t.Fatalf("decoded phase %q, dead letters %+v", rec.Phase, rec.DeadLetters)
	}
	out, err := encodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != oldRecord {
		t.Fatalf("re-encoded record differs:\n got %s\nwant %s", out, oldRecord)
	}
}

// A dead letter whose direction is neither pull nor push is refused with the value named, not
// read as a pull.
func TestDeadLetterUnknownDirectionRefused(t *testing.T) {
	bad := strings.Replace(oldRecord, `"direction":"push"`, `"direction":"sideways"`, 1)
	if _, _, err := decodeRecord("k", []byte(bad)); err == nil || !strings.Contains(err.Error(), `"sideways"`) {
		t.Fatalf("want an error naming the direction, got %v", err)
	}
}
