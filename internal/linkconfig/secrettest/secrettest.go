// Package secrettest checks, in tests, that text shows no piece of a signer's private key.
package secrettest

import (
	"encoding/json"
	"strings"
	"testing"
)

// PieceLen is the shortest run of a key's characters counted as a leak: six base64url
// characters do not occur in our messages by chance.
const PieceLen = 6

// PrivateParts are the parts of a private JWK that must never show: d and x.
func PrivateParts(t testing.TB, jwk []byte) []string {
	t.Helper()
	var k struct{ D, X string }
	if err := json.Unmarshal(jwk, &k); err != nil || k.D == "" || k.X == "" {
		t.Fatalf("not a private JWK: %v", err)
	}
	return []string{k.D, k.X}
}

// Leak returns a piece (PieceLen characters) of one of parts that text contains, or "".
func Leak(text string, parts ...string) string {
	for _, p := range parts {
		for i := 0; i+PieceLen <= len(p); i++ {
			if strings.Contains(text, p[i:i+PieceLen]) {
				return p[i : i+PieceLen]
			}
		}
	}
	return ""
}
