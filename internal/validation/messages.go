// Package validation is the Go twin of the ReplicationLink CRD's admission rules. `dwnsync run`
// has no API server, so it checks links here; a test feeds one table of bad links to both the
// envtest API server and this package and expects the same verdicts, and another checks that
// every message below appears verbatim in the generated CRD.
package validation

import "regexp"

// Messages of the CRD's x-kubernetes-validations rules, verbatim (see api/v1alpha1 markers).
const (
	MsgTenantDID          = "tenant must be a DID like did:jwk:eyJ... or did:dht:abc (lowercase method name, no spaces or '^'); fix the DID"
	MsgEndpointURL        = "endpoint must be an absolute http:// or https:// URL with a host, e.g. https://dwn.example.com; fix the scheme or host"
	MsgEndpointChars      = "endpoint must be a base URL without '^', '?query' or '#fragment'; remove them (write a literal ^ as %5E)"
	MsgLocalEndpointURL   = "localEndpoint must be an absolute http:// or https:// URL with a host, or be left out to use the operator's --local-endpoint; fix the scheme or host"
	MsgLocalEndpointChars = "localEndpoint must be a base URL without '^', '?query' or '#fragment'; remove them (write a literal ^ as %5E)"
	MsgSameEndpoints      = "localEndpoint equals endpoint: a link needs two different servers; fix one of them"
	MsgProtocolURI        = "protocol must be the protocol URI exactly as in its definition, e.g. https://example.com/chat, or be left out to replicate the whole tenant"
	MsgPathPrefix         = "each protocolPathPrefixes entry must be a protocol path like 'thread' or 'thread/message' (no leading, trailing or doubled '/'); fix the entry"
	MsgPrefixesNeedProto  = "protocolPathPrefixes narrow a protocol scope: set protocol too, or remove the prefixes"
	MsgPollFormat         = "pollInterval must be a positive duration like 30s, 2m or 1h30m (units ns, us, ms, s, m, h); fix the value"
	MsgPollTooSmall       = "pollInterval must be at least 10s so polling does not hammer the servers; raise it"
	MsgSignerRequired     = "signer.secretRef.name is required: name a Secret in this namespace holding the keys did and privateJwk (see config/samples)"
	MsgSignerName         = "signer.secretRef.name must be a Secret name (lowercase letters, digits, '-' and '.'); fix the name"
)

// ImmutableMessage is the message of the immutability rule of one identity field.
func ImmutableMessage(field string) string {
	return field + " is immutable (part of the link identity): create a new ReplicationLink instead"
}

// IdentityFields are the spec fields that make up a link's identity; none of them may change.
var IdentityFields = []string{"tenant", "endpoint", "localEndpoint", "protocol", "protocolPathPrefixes"}

// The regular expressions of the CEL rules. CEL's matches() and Go's regexp are both RE2.
var (
	didPattern        = regexp.MustCompile(`^did:[a-z0-9]+:([A-Za-z0-9._:-]|%[0-9A-Fa-f]{2})*([A-Za-z0-9._-]|%[0-9A-Fa-f]{2})$`)
	durationPattern   = regexp.MustCompile(`^([0-9]{1,5}([.][0-9]{1,9})?(ns|us|ms|s|m|h))+$`)
	pathPrefixPattern = regexp.MustCompile(`^[^/]+(/[^/]+)*$`)
	secretNamePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// Limits of the OpenAPI schema.
const (
	maxURLLength        = 2048
	maxPollLength       = 32
	maxPrefixes         = 32
	maxPrefixLength     = 256
	maxSecretNameLength = 253
)
