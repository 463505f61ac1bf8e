package ledger

import (
	"bytes"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// validLedger writes a closed ledger with n links and returns its bytes.
func validLedger(t *testing.T, path string, n int) []byte {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		rec, err := s.GetOrCreate(newLink(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Update(rec.Key, func(r *Record) { r.Pull.Commit(cur("s", "7")) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A damaged ledger file is refused with a message that names the file and the exact command
// that moves it aside, never with a panic, and is left untouched. After that command, the
// next Open starts a fresh ledger.
func TestOpenRefusesDamagedFilesWithTheFix(t *testing.T) {
	goodPath := filepath.Join(t.TempDir(), "good.db")
	good := validLedger(t, goodPath, 50)
	used := usedBytes(t, goodPath) // bbolt grows files ahead of use: cut what is used
	notJSON := func(t *testing.T, path string) {
		validLedger(t, path, 3)
		writeRaw(t, path, "some-key", "{not json")
	}
	foreign := func(t *testing.T, path string) {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err }); err != nil {
			t.Fatal(err)
		}
		_ = db.Close()
	}
	cases := []struct {
		name  string
		write func(t *testing.T, path string)
		cause string
	}{
		{"truncated at half", func(t *testing.T, path string) { mustWrite(t, path, good[:used/2]) }, "truncated"},
		{"zero length", func(t *testing.T, path string) { mustWrite(t, path, nil) }, "empty (0 bytes)"},
		{"garbage", func(t *testing.T, path string) {
			mustWrite(t, path, bytes.Repeat([]byte("not a ledger "), 1000))
		}, "not a valid bbolt file"},
		{"pages zeroed in the middle", func(t *testing.T, path string) {
			raw := append([]byte(nil), good...)
			clear(raw[4*4096 : len(raw)-4096])
			mustWrite(t, path, raw)
		}, ""},
		{"record not JSON", notJSON, "is not JSON"},
		{"another program's bbolt file", foreign, `unexpected bucket "other"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "ledger.db")
			tc.write(t, path)
			before, _ := os.ReadFile(path)

			s, err := Open(path, Options{})
			if err == nil {
				_ = s.Close()
				t.Fatal("a damaged ledger opened")
			}
			var de *DamagedError
			if !errors.As(err, &de) {
				t.Fatalf("error is not a *DamagedError: %v", err)
			}
			msg := err.Error()
			t.Logf("%s", msg)
			for _, want := range []string{path, tc.cause, "mv " + path + " " + path + ".damaged-", "full reconcile", "Nothing is lost"} {
				if !strings.Contains(msg, want) {
					t.Fatalf("message lacks %q:\n%s", want, msg)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Fatal("Open changed the damaged file")
			}
			if _, err := Check(path, math.MaxInt64); !errors.As(err, &de) {
				t.Fatalf("Check: %v, want a *DamagedError", err)
			}

			// Run the command the message gives, exactly as printed.
			line := msg[strings.Index(msg, "  mv ")+2:]
			line = line[:strings.IndexByte(line, '\n')]
			if out, err := exec.Command("sh", "-c", line).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v %s", line, err, out)
			}
			if moved, _ := os.ReadFile(de.AsideTo); !bytes.Equal(before, moved) {
				t.Fatal("the moved-aside file is not the damaged one")
			}
			fresh, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("open after moving the file aside: %v", err)
			}
			if recs, _ := fresh.List(); len(recs) != 0 {
				t.Fatalf("fresh ledger has %d records", len(recs))
			}
			_ = fresh.Close()
		})
	}
}

// A valid file opens with its records; a missing one is a fresh start.
func TestOpenValidAndMissingFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.db")
	validLedger(t, path, 20)
	rep, err := Check(path, math.MaxInt64)
	if err != nil || rep.Records != 20 || !rep.Full || rep.Bytes == 0 {
		t.Fatalf("Check: %+v %v", rep, err)
	}
	s := openTest(t, path, Options{})
	recs, _ := s.List()
	if len(recs) != 20 || recs[0].Pull.Contiguous == nil || recs[0].Pull.Contiguous.Position != "7" {
		t.Fatalf("reopened: %d records, first %+v", len(recs), recs)
	}

	missing := filepath.Join(dir, "new.db")
	fresh := openTest(t, missing, Options{})
	if recs, _ := fresh.List(); len(recs) != 0 {
		t.Fatalf("new ledger has %d records", len(recs))
	}
	if _, err := Check(filepath.Join(dir, "absent.db"), math.MaxInt64); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Check of a missing file: %v", err)
	}
}

// Check or Open on the file of a running dwnsync says it is locked, not damaged.
func TestALockedFileIsNotDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	openTest(t, path, Options{})
	_, checkErr := Check(path, math.MaxInt64)
	second, openErr := Open(path, Options{})
	if openErr == nil {
		_ = second.Close()
	}
	for what, err := range map[string]error{"Check": checkErr, "Open": openErr} {
		var de *DamagedError
		if err == nil || errors.As(err, &de) || !strings.Contains(err.Error(), "locked by another process") {
			t.Fatalf("%s of a locked file: %v", what, err)
		}
	}
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// usedBytes is the length bbolt's header gives a file (its high-water mark of pages).
func usedBytes(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	_ = db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}
