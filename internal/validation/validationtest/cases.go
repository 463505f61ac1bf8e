// Package validationtest holds the one table of good and bad ReplicationLinks that the Go
// validator's unit tests and the envtest suite (the real API server with the generated CRD)
// both check, so the two verdicts cannot drift apart.
package validationtest

import (
	"encoding/json"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/dwnsync/dwnsync/internal/validation"
)

// Tenant is a well-formed did:jwk.
const Tenant = "did:jwk:eyJrdHkiOiJPS1AiLCJjcnYiOiJFZDI1NTE5IiwieCI6IjExcVlBWUt4Q3JmVlNfN1R5V1FIT2c3aGN2UGFwaU1sclZJYUFVWjFYSTgifQ"

// Want is one expected field error: its type (as in metav1.StatusCause, e.g. FieldValueInvalid)
// and its field path; Message, when set, must appear in the error.
type Want struct {
	Type    string
	Field   string
	Message string
}

// Case is a link document built from Base by Edit (on the spec as a JSON map, so wrong types
// and unknown values can be written) and the errors admission must report (none: accepted).
type Case struct {
	Name string
	Edit func(spec map[string]any)
	Want []Want
}

// UpdateCase edits the spec of an accepted Base link; admission must refuse the update.
type UpdateCase struct {
	Name string
	Edit func(spec map[string]any)
	Want []Want
}

// Base is a valid link (name given by the caller).
func Base(name string) map[string]any {
	return map[string]any{
		"apiVersion": "dwnsync.io/v1alpha1",
		"kind":       "ReplicationLink",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"tenant":   Tenant,
			"endpoint": "https://dwn.example.com",
			"signer":   map[string]any{"secretRef": map[string]any{"name": "alice-signer"}},
		},
	}
}

// Document renders Base(name) edited by edit as YAML.
func Document(name string, edit func(spec map[string]any)) []byte {
	obj := Base(name)
	if edit != nil {
		edit(obj["spec"].(map[string]any))
	}
	out, err := yaml.Marshal(obj)
	if err != nil {
		panic(err)
	}
	return out
}

// JSON renders the same document as JSON.
func JSON(name string, edit func(spec map[string]any)) []byte {
	obj := Base(name)
	if edit != nil {
		edit(obj["spec"].(map[string]any))
	}
	out, _ := json.Marshal(obj)
	return out
}

func set(k string, v any) func(map[string]any) { return func(s map[string]any) { s[k] = v } }
func del(k string) func(map[string]any)        { return func(s map[string]any) { delete(s, k) } }

const (
	invalid   = "FieldValueInvalid"
	required  = "FieldValueRequired"
	forbidden = "FieldValueForbidden"
	notSupp   = "FieldValueNotSupported"
	tooLong   = "FieldValueTooLong"
	tooMany   = "FieldValueTooMany"
	duplicate = "FieldValueDuplicate"
)

// Cases is the admission table.
var Cases = []Case{
	{Name: "valid minimal", Edit: nil},
	{Name: "valid full", Edit: func(s map[string]any) {
		s["localEndpoint"] = "http://dwn-local.dwn.svc:3000"
		s["protocol"] = "https://example.com/chat"
		s["protocolPathPrefixes"] = []any{"thread", "thread/message"}
		s["direction"], s["mode"], s["pollInterval"], s["dialect"], s["suspend"] = "pull", "poll", "1m30s", "web5", true
	}},
	{Name: "valid did:web with percent-encoding", Edit: set("tenant", "did:web:example.com%3A8443:users:alice")},
	{Name: "valid pollInterval minimum", Edit: set("pollInterval", "10s")},

	{Name: "tenant not a DID", Edit: set("tenant", "alice"), Want: []Want{{invalid, "spec.tenant", validation.MsgTenantDID}}},
	{Name: "tenant uppercase method", Edit: set("tenant", "did:JWK:abc"), Want: []Want{{invalid, "spec.tenant", validation.MsgTenantDID}}},
	{Name: "tenant with caret", Edit: set("tenant", "did:jwk:abc^def"), Want: []Want{{invalid, "spec.tenant", validation.MsgTenantDID}}},
	{Name: "tenant trailing colon", Edit: set("tenant", "did:dht:abc:"), Want: []Want{{invalid, "spec.tenant", validation.MsgTenantDID}}},
	{Name: "tenant missing", Edit: del("tenant"), Want: []Want{{required, "spec.tenant", ""}}},
	{Name: "tenant too long", Edit: set("tenant", "did:jwk:"+strings.Repeat("a", 2100)), Want: []Want{{tooLong, "spec.tenant", ""}}},

	{Name: "endpoint ftp", Edit: set("endpoint", "ftp://dwn.example.com"), Want: []Want{{invalid, "spec.endpoint", validation.MsgEndpointURL}}},
	{Name: "endpoint relative", Edit: set("endpoint", "dwn.example.com"), Want: []Want{{invalid, "spec.endpoint", validation.MsgEndpointURL}}},
	{Name: "endpoint no host", Edit: set("endpoint", "http:///path"), Want: []Want{{invalid, "spec.endpoint", validation.MsgEndpointURL}}},
	{Name: "endpoint caret", Edit: set("endpoint", "https://dwn.example.com/a^b"), Want: []Want{{invalid, "spec.endpoint", validation.MsgEndpointChars}}},
	{Name: "endpoint query", Edit: set("endpoint", "https://dwn.example.com/?x=1"), Want: []Want{{invalid, "spec.endpoint", validation.MsgEndpointChars}}},
	{Name: "endpoint missing", Edit: del("endpoint"), Want: []Want{{required, "spec.endpoint", ""}}},

	{Name: "localEndpoint not http", Edit: set("localEndpoint", "ws://local:3000"), Want: []Want{{invalid, "spec.localEndpoint", validation.MsgLocalEndpointURL}}},
	{Name: "localEndpoint caret", Edit: set("localEndpoint", "http://local:3000/^"), Want: []Want{{invalid, "spec.localEndpoint", validation.MsgLocalEndpointChars}}},
	{Name: "localEndpoint equals endpoint", Edit: set("localEndpoint", "https://dwn.example.com"), Want: []Want{{invalid, "spec.localEndpoint", validation.MsgSameEndpoints}}},

	{Name: "protocol not a URI", Edit: set("protocol", "chat"), Want: []Want{{invalid, "spec.protocol", validation.MsgProtocolURI}}},
	{Name: "prefixes without protocol", Edit: set("protocolPathPrefixes", []any{"thread"}), Want: []Want{{invalid, "spec.protocolPathPrefixes", validation.MsgPrefixesNeedProto}}},
	{Name: "prefix with leading slash", Edit: func(s map[string]any) {
		s["protocol"], s["protocolPathPrefixes"] = "https://example.com/chat", []any{"/thread"}
	}, Want: []Want{{invalid, "spec.protocolPathPrefixes[0]", validation.MsgPathPrefix}}},
	{Name: "duplicate prefixes", Edit: func(s map[string]any) {
		s["protocol"], s["protocolPathPrefixes"] = "https://example.com/chat", []any{"thread", "thread"}
	}, Want: []Want{{duplicate, "spec.protocolPathPrefixes[1]", ""}}},
	{Name: "too many prefixes", Edit: func(s map[string]any) {
		var p []any
		for i := range 33 {
			p = append(p, "t"+strings.Repeat("x", i))
		}
		s["protocol"], s["protocolPathPrefixes"] = "https://example.com/chat", p
	}, Want: []Want{{tooMany, "spec.protocolPathPrefixes", ""}}},

	{Name: "direction unknown", Edit: set("direction", "sideways"), Want: []Want{{notSupp, "spec.direction", ""}}},
	{Name: "mode unknown", Edit: set("mode", "batch"), Want: []Want{{notSupp, "spec.mode", ""}}},
	{Name: "dialect unknown", Edit: set("dialect", "solid"), Want: []Want{{notSupp, "spec.dialect", ""}}},

	{Name: "pollInterval negative", Edit: set("pollInterval", "-30s"), Want: []Want{{invalid, "spec.pollInterval", validation.MsgPollFormat}}},
	{Name: "pollInterval garbage", Edit: set("pollInterval", "often"), Want: []Want{{invalid, "spec.pollInterval", validation.MsgPollFormat}}},
	{Name: "pollInterval too small", Edit: set("pollInterval", "500ms"), Want: []Want{{invalid, "spec.pollInterval", validation.MsgPollTooSmall}}},
	{Name: "pollInterval 9.9s", Edit: set("pollInterval", "9.9s"), Want: []Want{{invalid, "spec.pollInterval", validation.MsgPollTooSmall}}},

	{Name: "signer missing", Edit: del("signer"), Want: []Want{{required, "spec.signer.secretRef.name", validation.MsgSignerRequired}}},
	{Name: "signer name empty", Edit: set("signer", map[string]any{"secretRef": map[string]any{"name": ""}}), Want: []Want{{required, "spec.signer.secretRef.name", validation.MsgSignerRequired}}},
	{Name: "signer name not DNS", Edit: set("signer", map[string]any{"secretRef": map[string]any{"name": "Alice_Signer"}}), Want: []Want{{invalid, "spec.signer.secretRef.name", validation.MsgSignerName}}},
}

// UpdateCases are edits of an accepted link's identity.
var UpdateCases = []UpdateCase{
	{Name: "change tenant", Edit: set("tenant", "did:dht:other"), Want: []Want{{forbidden, "spec.tenant", validation.ImmutableMessage("tenant")}}},
	{Name: "change endpoint", Edit: set("endpoint", "https://other.example.com"), Want: []Want{{forbidden, "spec.endpoint", validation.ImmutableMessage("endpoint")}}},
	{Name: "add localEndpoint", Edit: set("localEndpoint", "http://local:3000"), Want: []Want{{forbidden, "spec.localEndpoint", validation.ImmutableMessage("localEndpoint")}}},
	{Name: "add protocol", Edit: set("protocol", "https://example.com/chat"), Want: []Want{{forbidden, "spec.protocol", validation.ImmutableMessage("protocol")}}},
	{Name: "add prefixes", Edit: func(s map[string]any) {
		s["protocol"], s["protocolPathPrefixes"] = "https://example.com/chat", []any{"thread"}
	}, Want: []Want{
		{forbidden, "spec.protocol", validation.ImmutableMessage("protocol")},
		{forbidden, "spec.protocolPathPrefixes", validation.ImmutableMessage("protocolPathPrefixes")},
	}},
}

// MutableEdits change fields that may change while a link runs; admission must accept them.
var MutableEdits = []UpdateCase{
	{Name: "suspend", Edit: set("suspend", true)},
	{Name: "mode and interval", Edit: func(s map[string]any) { s["mode"], s["pollInterval"] = "poll", "30s" }},
	{Name: "direction", Edit: set("direction", "push")},
	{Name: "dialect", Edit: set("dialect", "web5")},
	{Name: "signer", Edit: set("signer", map[string]any{"secretRef": map[string]any{"name": "rotated-signer"}})},
}
