// Package baseurl holds the one spelling of a DWN server's base URL. Link keys, duplicate
// checks, validation, the engine's per-server grouping, the client pool and grant lookups all
// compare endpoints through Normalize, so two spellings of one server are one server everywhere.
package baseurl

import "strings"

// Normalize returns the canonical spelling of a server's base URL: surrounding space dropped,
// scheme and host lowercased, trailing '/' removed. Without it "https://X" and "https://x/"
// would be two links with two ledger keys replicating one pair of servers. The path keeps its
// case (servers may mount DWNs under case-sensitive paths), and so does a user:password@.
func Normalize(endpoint string) string {
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

// Same reports whether a and b spell one server.
func Same(a, b string) bool { return Normalize(a) == Normalize(b) }
