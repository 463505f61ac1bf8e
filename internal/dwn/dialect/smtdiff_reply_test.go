package dialect

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// smtDiffServer answers every MessagesSync diff with onlyLocal (and nothing remote).
func smtDiffServer(t *testing.T, onlyLocal []string) dwn.SMTTenant {
	t.Helper()
	list, _ := json.Marshal(onlyLocal)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/info" {
			_, _ = w.Write([]byte(`{"server":"fake-smt"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":"1","result":{"reply":{"status":{"code":200},"onlyRemote":[],"onlyLocal":%s}}}`, list)
	}))
	t.Cleanup(srv.Close)
	return openPinned(t, srv.URL, Options{Dialect: dwn.DialectEnboxSMT}).(dwn.SMTTenant)
}

// onlyLocal is accepted only as the diff defines it: prefixes of the asked depth that this side
// sent, each once. A hostile server cannot make the caller enumerate leaves it chose.
func TestSMTDiffOnlyLocalChecked(t *testing.T) {
	sent := map[string]string{"0101": strings.Repeat("a", 64), "1100": strings.Repeat("b", 64)}
	dup := slices.Repeat([]string{"0101"}, 10000)
	_, got, err := smtDiffServer(t, append(dup, "1100")).SMTDiff(context.Background(), dwn.Scope{}, sent, 4)
	if err != nil || !slices.Equal(got, []string{"0101", "1100"}) {
		t.Fatalf("duplicates: got %v (%v), want each prefix once", got, err)
	}
	for name, bad := range map[string][]string{
		"too short":    {"010"},
		"too long":     {"01010"},
		"not bits":     {"01x1"},
		"not sent":     {"0000"},
		"empty":        {""},
		"long hostile": {strings.Repeat("1", 100000)},
	} {
		_, got, err := smtDiffServer(t, bad).SMTDiff(context.Background(), dwn.Scope{}, sent, 4)
		if err == nil || !dwn.IsTransient(err) || !strings.Contains(err.Error(), "onlyLocal[0]") || len(err.Error()) > 1200 {
			t.Errorf("%s: got %v, %v; want a Transient error naming the bad prefix (bounded)", name, got, err)
		}
	}
}
