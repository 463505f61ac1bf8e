package ledger

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `dwnsync ledger check`: exit 0 with a summary for a sound file, 1 with the recovery command
// for a damaged one, 2 when there is nothing to check.
func TestCheckCommandExitCodesAndOutput(t *testing.T) {
	sound := t.TempDir()
	validLedger(t, filepath.Join(sound, FileName), 12)
	writeRaw(t, filepath.Join(sound, FileName), "enbox-export", `{"tenantDid":"did:jwk:old","remoteEndpoint":"http://127.0.0.1:3"}`)
	damaged := t.TempDir()
	mustWrite(t, filepath.Join(damaged, FileName), nil)

	for _, tc := range []struct {
		name     string
		dir      string
		code     int
		out, err []string
	}{
		{"sound", sound, CheckOK, []string{filepath.Join(sound, FileName) + ": ok", "13 link records", "consistency check passed", "1 records of an older schema"}, nil},
		{"damaged", damaged, CheckDamaged, nil, []string{"is damaged", "mv " + filepath.Join(damaged, FileName)}},
		{"no ledger", t.TempDir(), CheckCannotRun, nil, []string{"no such file"}},
		{"no --state-dir", "", CheckCannotRun, nil, []string{"--state-dir is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			before, _ := os.ReadFile(filepath.Join(tc.dir, FileName))
			if code := CheckCommand(tc.dir, &out, &errOut); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, &out, &errOut)
			}
			for _, want := range tc.out {
				if !strings.Contains(out.String(), want) {
					t.Fatalf("stdout lacks %q:\n%s", want, &out)
				}
			}
			for _, want := range tc.err {
				if !strings.Contains(errOut.String(), want) {
					t.Fatalf("stderr lacks %q:\n%s", want, &errOut)
				}
			}
			if after, _ := os.ReadFile(filepath.Join(tc.dir, FileName)); !bytes.Equal(before, after) {
				t.Fatal("ledger check changed the file")
			}
		})
	}
}
