package dwn

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxRemoteText bounds each piece of server-chosen text (a detail, a wrapped cause) in an error
// message. Error text lands in status.lastError, Events and the ledger; the CRD refuses a status
// over 32 KiB (the link's status would freeze), and a human reads the first line anyway.
const maxRemoteText = 512

// RemoteText makes text a server chose safe to print: control characters (ESC sequences could
// rewrite a terminal) become spaces, invalid UTF-8 becomes U+FFFD, and anything past
// maxRemoteText bytes is cut on a rune boundary and marked with "…[truncated]". Every
// *Error and *GapError passes its remote parts through here when it is printed, so no
// constructor can forget it.
func RemoteText(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			clean = false
			break
		}
	}
	if clean && len(s) <= maxRemoteText {
		return s
	}
	var b strings.Builder
	for _, r := range s { // invalid bytes arrive as utf8.RuneError and are written as U+FFFD
		if unicode.IsControl(r) {
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > maxRemoteText {
			b.WriteString("…[truncated]")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ErrorKind classifies a failed call so callers know whether to retry.
type ErrorKind string

const (
	// Transient: network trouble, 5xx, rate limits, timeouts — retry with backoff.
	Transient ErrorKind = "Transient"
	// Permanent: the server deterministically rejected the request (schema, bad params, 4xx).
	Permanent ErrorKind = "Permanent"
	// Unauthorized: the signer is not allowed (wrong key, missing or mismatched grant,
	// unregistered tenant). Retrying will not help until the configuration changes.
	Unauthorized ErrorKind = "Unauthorized"
	// Unsupported: the server lacks the method or feature (-32601, DWN 501, no WebSocket).
	Unsupported ErrorKind = "Unsupported"
)

// Error is a failed DWN call: transport, HTTP, JSON-RPC or DWN reply status.
type Error struct {
	Op         string // e.g. "MessagesQuery", "dwn.applyReplicatedMessage", "GET /info"
	Kind       ErrorKind
	HTTPStatus int    // 0 when no HTTP response arrived
	RPCCode    int    // JSON-RPC error code, 0 when none
	DWNCode    int    // DWN reply status.code, 0 when none
	Detail     string // server message or cause; never contains keys
	RetryAfter time.Duration
	Err        error // underlying cause (network error, decode error), may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dwn %s: %s", e.Op, e.Kind)
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, " (http %d", e.HTTPStatus)
		if e.RPCCode != 0 {
			fmt.Fprintf(&b, ", rpc %d", e.RPCCode)
		}
		if e.DWNCode != 0 {
			fmt.Fprintf(&b, ", dwn %d", e.DWNCode)
		}
		b.WriteString(")")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(RemoteText(e.Detail))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(RemoteText(e.Err.Error()))
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Kind == Unauthorized {
		b.WriteString(" — check the signer Secret: did/privateJwk must be the tenant or a delegate with Messages grants for this endpoint")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// DWNErrorCode is the DwnErrorCode prefix of Detail ("RecordsWriteGetInitialWriteNotFound: …"),
// or "" when the detail has none.
func (e *Error) DWNErrorCode() string { return ErrorCodeOf(e.Detail) }

// GapError is a 410 ProgressGap: the cursor is no longer (or not yet) valid on the server. The
// caller must discard its checkpoint and reconcile; never jump to LatestAvailable.
type GapError struct {
	Reason          string // token_too_old | token_too_new | epoch_mismatch | stream_mismatch | message_mismatch
	Requested       *Cursor
	OldestAvailable *Cursor
	LatestAvailable *Cursor
}

func (g *GapError) Error() string {
	if g.Reason == "" {
		return "dwn: progress gap (410): the cursor is not valid on this server; discard it and reconcile"
	}
	return fmt.Sprintf("dwn: progress gap (410, %s): the cursor is not valid on this server; discard it and reconcile", RemoteText(g.Reason))
}

// IsTransient reports whether err is worth retrying as is (transport failures count).
func IsTransient(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind == Transient
	}
	return false
}

// IsUnauthorized reports whether err says the signer is not allowed.
func IsUnauthorized(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == Unauthorized
}

// IsUnsupported reports whether err says the server lacks the method or feature.
func IsUnsupported(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == Unsupported
}

// IsNotFound reports whether err is a DWN 404 (e.g. MessagesRead of an absent CID).
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.DWNCode == 404
}

// AsGap returns the *GapError in err's chain.
func AsGap(err error) (*GapError, bool) {
	var g *GapError
	if errors.As(err, &g) {
		return g, true
	}
	return nil, false
}

// RetryAfter is the server's requested wait (Retry-After / retryAfterSec), 0 when none.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ErrorCodeOf splits "<DwnErrorCode>: <message>" at the first colon; a detail without a
// code-looking prefix yields "".
func ErrorCodeOf(detail string) string {
	i := strings.IndexByte(detail, ':')
	if i <= 0 {
		return ""
	}
	code := detail[:i]
	for _, r := range code {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return ""
		}
	}
	return code
}
