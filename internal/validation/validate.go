package validation

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
)

var specPath = field.NewPath("spec")

// ValidateLink checks a new link (after defaulting) with the rules the CRD enforces at admission.
// The errors have the API server's shape: same field paths, same types, same messages.
func ValidateLink(link *v1alpha1.ReplicationLink) field.ErrorList {
	s := &link.Spec
	var errs field.ErrorList

	// spec.tenant
	p := specPath.Child("tenant")
	if s.Tenant == "" {
		errs = append(errs, field.Required(p, ""))
	} else {
		errs = append(errs, maxLen(p, s.Tenant, maxURLLength)...)
		if !didPattern.MatchString(s.Tenant) {
			errs = append(errs, field.Invalid(p, s.Tenant, MsgTenantDID))
		}
	}

	// spec.endpoint and spec.localEndpoint
	if s.Endpoint == "" {
		errs = append(errs, field.Required(specPath.Child("endpoint"), ""))
	} else {
		errs = append(errs, validateEndpoint(specPath.Child("endpoint"), s.Endpoint, false, MsgEndpointURL, MsgEndpointChars)...)
	}
	errs = append(errs, validateEndpoint(specPath.Child("localEndpoint"), s.LocalEndpoint, true, MsgLocalEndpointURL, MsgLocalEndpointChars)...)
	if s.LocalEndpoint != "" && s.LocalEndpoint == s.Endpoint {
		errs = append(errs, field.Invalid(specPath.Child("localEndpoint"), field.OmitValueType{}, MsgSameEndpoints))
	}

	// spec.protocol and spec.protocolPathPrefixes
	p = specPath.Child("protocol")
	errs = append(errs, maxLen(p, s.Protocol, maxURLLength)...)
	if s.Protocol != "" && !isURL(s.Protocol) {
		errs = append(errs, field.Invalid(p, s.Protocol, MsgProtocolURI))
	}
	errs = append(errs, validatePrefixes(s.ProtocolPathPrefixes)...)
	if len(s.ProtocolPathPrefixes) > 0 && s.Protocol == "" {
		errs = append(errs, field.Invalid(specPath.Child("protocolPathPrefixes"), field.OmitValueType{}, MsgPrefixesNeedProto))
	}

	// enums
	errs = append(errs, enum(specPath.Child("direction"), string(s.Direction), "both", "pull", "push")...)
	errs = append(errs, enum(specPath.Child("mode"), string(s.Mode), "live", "poll")...)
	errs = append(errs, enum(specPath.Child("dialect"), string(s.Dialect), "auto", "web5", "enbox", "enbox-smt")...)

	// spec.pollInterval (a decoded Duration is already well-formed; DecodeLink checks the text)
	if s.PollInterval != nil {
		errs = append(errs, ValidatePollInterval(specPath.Child("pollInterval"), s.PollInterval.Duration.String())...)
	}

	// spec.signer
	p = specPath.Child("signer", "secretRef", "name")
	name := s.Signer.SecretRef.Name
	if name == "" {
		errs = append(errs, field.Required(p, MsgSignerRequired))
	} else {
		errs = append(errs, maxLen(p, name, maxSecretNameLength)...)
		if !secretNamePattern.MatchString(name) {
			errs = append(errs, field.Invalid(p, name, MsgSignerName))
		}
	}
	return errs
}

// ValidateLinkUpdate checks a changed link: every create rule plus the immutable identity.
func ValidateLinkUpdate(updated, old *v1alpha1.ReplicationLink) field.ErrorList {
	errs := ValidateLink(updated)
	n, o := &updated.Spec, &old.Spec
	same := map[string]bool{
		"tenant":               n.Tenant == o.Tenant,
		"endpoint":             n.Endpoint == o.Endpoint,
		"localEndpoint":        n.LocalEndpoint == o.LocalEndpoint,
		"protocol":             n.Protocol == o.Protocol,
		"protocolPathPrefixes": sameSet(n.ProtocolPathPrefixes, o.ProtocolPathPrefixes),
	}
	for _, f := range IdentityFields {
		if !same[f] {
			errs = append(errs, field.Forbidden(specPath.Child(f), ImmutableMessage(f)))
		}
	}
	return errs
}

// ValidatePollInterval checks a pollInterval as written (e.g. "2m").
func ValidatePollInterval(p *field.Path, text string) field.ErrorList {
	errs := maxLen(p, text, maxPollLength)
	if !durationPattern.MatchString(text) {
		return append(errs, field.Invalid(p, text, MsgPollFormat))
	}
	if d, err := time.ParseDuration(text); err != nil || d < v1alpha1.MinPollInterval {
		errs = append(errs, field.Invalid(p, text, MsgPollTooSmall))
	}
	return errs
}

func validateEndpoint(p *field.Path, value string, optional bool, urlMsg, charsMsg string) field.ErrorList {
	errs := maxLen(p, value, maxURLLength)
	if !(optional && value == "") && !isHTTPURL(value) {
		errs = append(errs, field.Invalid(p, value, urlMsg))
	}
	if strings.ContainsAny(value, "^?#") {
		errs = append(errs, field.Invalid(p, value, charsMsg))
	}
	return errs
}

func validatePrefixes(prefixes []v1alpha1.ProtocolPathPrefix) field.ErrorList {
	p := specPath.Child("protocolPathPrefixes")
	var errs field.ErrorList
	if len(prefixes) > maxPrefixes {
		errs = append(errs, field.TooMany(p, len(prefixes), maxPrefixes))
	}
	seen := map[v1alpha1.ProtocolPathPrefix]bool{}
	for i, prefix := range prefixes {
		ip := p.Index(i)
		if seen[prefix] {
			errs = append(errs, field.Duplicate(ip, string(prefix)))
		}
		seen[prefix] = true
		errs = append(errs, maxLen(ip, string(prefix), maxPrefixLength)...)
		if !pathPrefixPattern.MatchString(string(prefix)) {
			errs = append(errs, field.Invalid(ip, string(prefix), MsgPathPrefix))
		}
	}
	return errs
}

// isURL is the Kubernetes CEL isURL(): what net/url.ParseRequestURI accepts.
func isURL(s string) bool {
	_, err := url.ParseRequestURI(s)
	return err == nil
}

// isHTTPURL is the CRD's rule isURL(self) && url(self).getScheme() in ['http','https'] &&
// url(self).getHostname() != "" (CEL's url() is net/url.Parse).
func isHTTPURL(s string) bool {
	if !isURL(s) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != ""
}

func maxLen(p *field.Path, value string, limit int) field.ErrorList {
	if len(value) > limit {
		return field.ErrorList{field.TooLong(p, "", limit)}
	}
	return nil
}

func enum(p *field.Path, value string, allowed ...string) field.ErrorList {
	if slices.Contains(allowed, value) {
		return nil
	}
	return field.ErrorList{field.NotSupported(p, value, allowed)}
}

func sameSet[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[T]int{}
	for _, x := range a {
		in[x]++
	}
	for _, x := range b {
		in[x]--
	}
	for _, n := range in {
		if n != 0 {
			return false
		}
	}
	return true
}
