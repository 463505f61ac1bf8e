package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dwnsync/dwnsync/internal/ledger"
)

// `dwnsync ledger check --state-dir DIR` exists, as the recovery docs say, and its exit code
// tells a sound ledger from a damaged one.
func TestLedgerCheckCommand(t *testing.T) {
	dir := t.TempDir()
	s, err := ledger.Open(filepath.Join(dir, ledger.FileName), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOrCreate(ledger.Record{Tenant: "did:jwk:a", RemoteEndpoint: "http://127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := runLedger([]string{"check", "--state-dir", dir}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "1 link records") {
		t.Fatalf("sound ledger: exit %d\n%s%s", code, &out, &errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, ledger.FileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := runLedger([]string{"check", "--state-dir", dir}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "  mv ") {
		t.Fatalf("damaged ledger: exit %d\n%s%s", code, &out, &errOut)
	}
	if code := runLedger([]string{"verify"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown ledger subcommand: exit %d", code)
	}
}
