package linkconfig

import (
	"fmt"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/baseurl"
	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/syncer"
	"github.com/dwnsync/dwnsync/internal/syncer/linkstate"
)

// Defaults are the runtime's settings a link falls back on.
type Defaults struct {
	// LocalEndpoint is used when spec.localEndpoint is empty (operator flag --local-endpoint).
	LocalEndpoint string
	// LocalDialect pins the local server's dialect (auto: detect).
	LocalDialect dwn.Dialect
}

// Name is how logs, events and the engine refer to a link: namespace/name.
func Name(link *v1alpha1.ReplicationLink) string { return link.Namespace + "/" + link.Name }

// Scope is the link's replication scope.
func Scope(spec *v1alpha1.ReplicationLinkSpec) dwn.Scope {
	scope := dwn.Scope{Protocol: spec.Protocol}
	for _, p := range spec.ProtocolPathPrefixes {
		scope.ProtocolPathPrefixes = append(scope.ProtocolPathPrefixes, string(p))
	}
	return scope
}

// LocalEndpoint is the link's local server: its own, or the runtime's default.
func LocalEndpoint(link *v1alpha1.ReplicationLink, d Defaults) (string, error) {
	local := link.Spec.LocalEndpoint
	if local == "" {
		local = d.LocalEndpoint
	}
	if local == "" {
		return "", &Error{Reason: ReasonLocalEndpointMissing, Message: "spec.localEndpoint is empty and the runtime has no default: set spec.localEndpoint, or start the operator with --local-endpoint"}
	}
	local = baseurl.Normalize(local)
	if local == baseurl.Normalize(link.Spec.Endpoint) {
		return "", &Error{Reason: ReasonInvalidSpec, Message: fmt.Sprintf("spec.endpoint %s is the local server itself: point spec.endpoint at the other server", link.Spec.Endpoint)}
	}
	return local, nil
}

// Key is the link's ledger key (tenant^endpoint^scopeId, the endpoint normalized); identity
// fields are immutable, so it never changes for a given ReplicationLink.
func Key(link *v1alpha1.ReplicationLink) (string, error) {
	key, err := ledger.LinkKey(link.Spec.Tenant, baseurl.Normalize(link.Spec.Endpoint), Scope(&link.Spec))
	if err != nil {
		return "", &Error{Reason: ReasonInvalidSpec, Message: err.Error()}
	}
	return key, nil
}

// Build resolves a (defaulted, validated) link and its signer into the engine's link config.
func Build(link *v1alpha1.ReplicationLink, signer *msg.Signer, grants msg.EndpointGrants, d Defaults) (syncer.LinkConfig, error) {
	local, err := LocalEndpoint(link, d)
	if err != nil {
		return syncer.LinkConfig{}, err
	}
	spec := &link.Spec
	remote := baseurl.Normalize(spec.Endpoint)
	grants = normalizedGrants(grants)
	poll := v1alpha1.DefaultPollInterval
	if spec.PollInterval != nil {
		poll = spec.PollInterval.Duration
	}
	localDialect := d.LocalDialect
	if localDialect == "" {
		localDialect = dwn.DialectAuto
	}
	dialect := dwn.Dialect(spec.Dialect)
	if dialect == "" {
		dialect = dwn.DialectAuto
	}
	return syncer.LinkConfig{
		Name:           Name(link),
		Tenant:         spec.Tenant,
		LocalEndpoint:  local,
		RemoteEndpoint: remote, // the engine keys the link from it: same key as Key
		Scope:          Scope(spec),
		Direction:      linkstate.Direction(orDefault(string(spec.Direction), string(v1alpha1.DefaultDirection))),
		Mode:           linkstate.Mode(orDefault(string(spec.Mode), string(v1alpha1.DefaultMode))),
		PollInterval:   poll,
		Dialect:        dialect,
		LocalDialect:   localDialect,
		LocalSigner:    signer.WithGrants(grants.For(local)),
		RemoteSigner:   signer.WithGrants(grants.For(remote)),
		Suspend:        spec.Suspend,
	}, nil
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
