package linkconfig

import (
	"strings"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// NormalizeEndpoint is the one spelling of a server's base URL that link keys, duplicate checks,
// the engine and grant lookups use: scheme and host lowercased, trailing '/' removed. Without it
// "https://X" and "https://x/" would be two links with two ledger keys replicating one pair of
// servers. The path keeps its case (servers may mount DWNs under case-sensitive paths).
func NormalizeEndpoint(endpoint string) string {
	s := strings.TrimSpace(endpoint)
	if i := strings.Index(s, "://"); i > 0 {
		rest := s[i+3:]
		hostEnd := strings.IndexByte(rest, '/')
		if hostEnd < 0 {
			hostEnd = len(rest)
		}
		authority := rest[:hostEnd]
		// Lowercase the host only, not a user:password@ in front of it.
		at := strings.LastIndexByte(authority, '@') + 1
		authority = authority[:at] + strings.ToLower(authority[at:])
		s = strings.ToLower(s[:i]) + "://" + authority + rest[hostEnd:]
	}
	return strings.TrimRight(s, "/")
}

// normalizedGrants re-keys a Secret's grants by NormalizeEndpoint, so a grant written for
// "https://DWN.example.com/" applies to the link whose endpoint is https://dwn.example.com.
func normalizedGrants(g msg.EndpointGrants) msg.EndpointGrants {
	if g == nil {
		return nil
	}
	out := make(msg.EndpointGrants, len(g))
	// Keys already in the normal spelling win over variants of it, whatever the map order.
	for _, exact := range []bool{false, true} {
		for endpoint, byMethod := range g {
			n := endpoint
			if endpoint != "*" {
				n = NormalizeEndpoint(endpoint)
			}
			if (n == endpoint) == exact {
				out[n] = byMethod
			}
		}
	}
	return out
}
