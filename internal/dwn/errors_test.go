package dwn

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestErrorHelpers(t *testing.T) {
	e := &Error{Op: "MessagesQuery", Kind: Transient, HTTPStatus: 429, RPCCode: -50429, RetryAfter: 2 * time.Second}
	wrapped := fmt.Errorf("page: %w", e)
	if !IsTransient(wrapped) || RetryAfter(wrapped) != 2*time.Second || IsUnauthorized(wrapped) {
		t.Fatal("helpers do not see through wrapping")
	}
	if IsTransient(errors.New("plain")) || RetryAfter(errors.New("plain")) != 0 {
		t.Fatal("plain errors are not classified")
	}
	gap := &GapError{Reason: "epoch_mismatch", LatestAvailable: &Cursor{StreamID: "s", Epoch: "e", Position: "9"}}
	g, ok := AsGap(fmt.Errorf("sub: %w", gap))
	if !ok || g.LatestAvailable.Position != "9" || !strings.Contains(g.Error(), "epoch_mismatch") {
		t.Fatal("AsGap failed")
	}
	unauth := &Error{Op: "MessagesQuery", Kind: Unauthorized, HTTPStatus: 200, DWNCode: 401, Detail: "GeneralJwsVerifierInvalidSignature: bad"}
	if !strings.Contains(unauth.Error(), "signer Secret") || unauth.DWNErrorCode() != "GeneralJwsVerifierInvalidSignature" {
		t.Fatalf("unclear unauthorized error: %s", unauth)
	}
	if !IsNotFound(&Error{DWNCode: 404}) {
		t.Fatal("IsNotFound")
	}
}

func TestDWNErrorCode(t *testing.T) {
	cases := map[string]string{
		"ProtocolAuthorizationProtocolNotFound: unable to find protocol definition for https://x": "ProtocolAuthorizationProtocolNotFound",
		"Not Found":                "",
		"Not a registered tenant.": "",
		"weird code!: x":           "",
		"":                         "",
	}
	for in, want := range cases {
		if got := ErrorCodeOf(in); got != want {
			t.Errorf("ErrorCodeOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// A server's error text reaches status, Events and the ledger: it must come out bounded, cut on
// a rune boundary and free of control characters, whichever field carried it.
func TestErrorRemoteTextSanitised(t *testing.T) {
	hostile := strings.Repeat("é\x1b[31mred\x07\r\n", 10000) // ~100 KB with ESC sequences
	errs := []error{
		&Error{Op: "MessagesQuery", Kind: Permanent, Detail: hostile},
		&Error{Op: "MessagesQuery", Kind: Transient, Err: errors.New(hostile)},
		&GapError{Reason: hostile},
	}
	for i, err := range errs {
		msg := err.Error()
		if len(msg) > 2*maxRemoteText+300 {
			t.Errorf("error %d: %d bytes, want it bounded near %d", i, len(msg), maxRemoteText)
		}
		if strings.ContainsAny(msg, "\x1b\x07\r\n") {
			t.Errorf("error %d keeps control characters: %q", i, msg[:80])
		}
		if !utf8.ValidString(msg) {
			t.Errorf("error %d is not valid UTF-8 after truncation", i)
		}
		if !strings.Contains(msg, "…[truncated]") {
			t.Errorf("error %d does not say it was truncated", i)
		}
	}
	if got := RemoteText("short and clean"); got != "short and clean" {
		t.Errorf("clean text changed: %q", got)
	}
	if got := RemoteText("bad \xff byte"); got != "bad \uFFFD byte" {
		t.Errorf("invalid UTF-8: %q", got)
	}
}
