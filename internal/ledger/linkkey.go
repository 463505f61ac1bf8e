// Package ledger keeps dwnsync's durable per-link state in one bbolt file: identity, status,
// the needsReconcile flag, repair attempts, the pull and push checkpoints, counters and a capped
// dead-letter list. Updates are staged in memory and committed in groups, so advancing a
// checkpoint per event does not cost one fsync per event; Flush makes everything staged durable
// before the engine acknowledges a position to a server.
package ledger

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// KeySeparator joins the parts of a link key. It is not escaped, so no part may contain it.
const KeySeparator = "^"

// ScopeID is the stable identifier of a scope (docs/engine-behaviour.md#scope-id): base64url
// without padding of the SHA-256 of its canonical JSON. The canonical form lists, in this order,
// "kind", then for a protocol scope "protocol" and the de-duplicated, sorted path prefixes when
// there are any.
func ScopeID(scope dwn.Scope) string {
	sum := sha256.Sum256([]byte(canonicalScope(scope)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// canonicalScope renders the scope exactly as JavaScript's JSON.stringify renders the upstream
// canonical object, so our ids match the enbox agent's for the same scope. Go's encoding/json
// would escape <, > and & (and U+2028/9), which JSON.stringify does not.
func canonicalScope(scope dwn.Scope) string {
	var b strings.Builder
	if scope.Protocol == "" {
		b.WriteString(`{"kind":"full"}`)
		return b.String()
	}
	b.WriteString(`{"kind":"protocol","protocol":`)
	writeJSString(&b, scope.Protocol)
	if prefixes := sortedUnique(scope.ProtocolPathPrefixes); len(prefixes) > 0 {
		b.WriteString(`,"protocolPathPrefixes":[`)
		for i, p := range prefixes {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSString(&b, p)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.String()
}

// sortedUnique de-duplicates and sorts. Upstream sorts with localeCompare; for the ASCII path
// segments DWN protocol paths are made of, code-unit order gives the same result except for
// letter case, which protocol paths do not mix in practice.
func sortedUnique(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func writeJSString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteString(strconv.FormatInt(int64(r)>>4, 16))
			b.WriteString(strconv.FormatInt(int64(r)&0xf, 16))
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}

// LinkKey is the ledger key and runtime id of a link: tenant ^ remote endpoint ^ scopeId.
// The separator is not escaped, so a tenant or endpoint containing it is refused (a URL may
// legally contain '^'; upstream assumed it could not).
func LinkKey(tenant, remoteEndpoint string, scope dwn.Scope) (string, error) {
	if tenant == "" {
		return "", fmt.Errorf("link key: tenant DID is empty; set the link's tenant")
	}
	if remoteEndpoint == "" {
		return "", fmt.Errorf("link key: remote endpoint is empty; set the link's remote endpoint")
	}
	if strings.Contains(tenant, KeySeparator) {
		return "", fmt.Errorf("link key: tenant %q contains %q, which separates link key parts; use a DID without it", tenant, KeySeparator)
	}
	if strings.Contains(remoteEndpoint, KeySeparator) {
		return "", fmt.Errorf("link key: remote endpoint %q contains %q, which separates link key parts; percent-encode it as %%5E", remoteEndpoint, KeySeparator)
	}
	return tenant + KeySeparator + remoteEndpoint + KeySeparator + ScopeID(scope), nil
}
