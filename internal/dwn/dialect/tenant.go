package dialect

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
)

// tenantBase is what every dialect adapter shares: the endpoint, the tenant, the signer, and
// the calls that are the same everywhere (MessagesRead, processMessage applies, dependency
// lookups).
type tenantBase struct {
	c      *Client
	did    string
	signer *msg.Signer
	// pluralGrants selects the enbox grant form (permissionGrantIds in descriptor and payload)
	// over web5's singular payload-only form; set from the client's dialect.
	pluralGrants bool
}

// Endpoint is the base URL as it may be printed (a password in it redacted): callers put it in
// error messages.
func (t *tenantBase) Endpoint() string { return t.c.rpc.Shown }
func (t *tenantBase) DID() string      { return t.did }

// delegate reports whether the signer is not the tenant (so grants must be invoked).
func (t *tenantBase) delegate() bool { return t.signer != nil && t.signer.DID != t.did }

// grantFor is the grant id the signer invokes for a Messages method ("" = none). enbox
// authorises every Messages method with a "Read" grant, so Read is the fallback.
func (t *tenantBase) grantFor(method string) string {
	if !t.delegate() || t.signer.Grants == nil {
		return ""
	}
	if id := t.signer.Grants[method]; id != "" {
		return id
	}
	return t.signer.Grants["Read"]
}

// signMessages signs a Messages* descriptor, invoking the signer's grant in the tenant's
// dialect form (see pluralGrants).
func (t *tenantBase) signMessages(method string, descriptor map[string]any) (json.RawMessage, error) {
	if t.signer == nil {
		return nil, &dwn.Error{Op: "Messages" + method, Kind: dwn.Unauthorized, Detail: "no signer configured for tenant " + truncate(t.did, 40)}
	}
	descriptor["interface"] = "Messages"
	descriptor["method"] = method
	descriptor["messageTimestamp"] = msg.FormatTimestamp(t.c.opts.Clock.Now())
	var opts []msg.SignOption
	if id := t.grantFor(method); id != "" {
		if t.pluralGrants {
			opts = append(opts, msg.WithPermissionGrantIDs(id))
		} else {
			opts = append(opts, msg.WithPermissionGrantID(id))
		}
	}
	return t.signer.SignDescriptor(descriptor, opts...)
}

// signOther signs a Records/Protocols descriptor (dependency lookups): always as the signer
// itself; a delegate would need Records/Protocols grants, which a Messages-only replicator
// identity does not have (those lookups then fail as Unauthorized).
func (t *tenantBase) signOther(iface, method string, descriptor map[string]any) (json.RawMessage, error) {
	if t.signer == nil {
		return nil, &dwn.Error{Op: iface + method, Kind: dwn.Unauthorized, Detail: "no signer configured for tenant " + truncate(t.did, 40)}
	}
	descriptor["interface"] = iface
	descriptor["method"] = method
	descriptor["messageTimestamp"] = msg.FormatTimestamp(t.c.opts.Clock.Now())
	return t.signer.SignDescriptor(descriptor)
}

// process sends a message and turns any reply status outside ok into an error.
func (t *tenantBase) process(ctx context.Context, op string, signed json.RawMessage, ok ...int) (wire.Reply, io.ReadCloser, error) {
	t.c.ensureInfo(ctx)
	reply, body, err := t.c.rpc.ProcessMessage(ctx, op, t.did, signed, nil, 0)
	if err != nil {
		return wire.Reply{}, nil, err
	}
	for _, code := range ok {
		if reply.Status.Code == code {
			return reply, body, nil
		}
	}
	if body != nil {
		body.Close()
	}
	return wire.Reply{}, nil, reply.StatusError(op)
}

// processListing is process for a listing whose entries stream into each.
func (t *tenantBase) processListing(ctx context.Context, op string, signed json.RawMessage, each func(json.RawMessage) error, ok ...int) (wire.Reply, error) {
	t.c.ensureInfo(ctx)
	reply, err := t.c.rpc.ProcessListing(ctx, op, t.did, signed, each)
	if err != nil {
		return wire.Reply{}, err
	}
	for _, code := range ok {
		if reply.Status.Code == code {
			return reply, nil
		}
	}
	return wire.Reply{}, reply.StatusError(op)
}

// Read is MessagesRead (the same in every dialect): the stored message and, for a RecordsWrite
// with data, the data stream capped at exactly descriptor.dataSize.
func (t *tenantBase) Read(ctx context.Context, cid string) (dwn.ReadResult, error) {
	signed, err := t.signMessages("Read", map[string]any{"messageCid": cid})
	if err != nil {
		return dwn.ReadResult{}, err
	}
	reply, body, err := t.process(ctx, "MessagesRead", signed, 200)
	if err != nil {
		return dwn.ReadResult{}, err
	}
	var r struct {
		Entry *struct {
			MessageCID string          `json:"messageCid"`
			Message    json.RawMessage `json:"message"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(reply.Raw, &r); err != nil || r.Entry == nil || len(r.Entry.Message) == 0 {
		if body != nil {
			body.Close()
		}
		return dwn.ReadResult{}, &dwn.Error{Op: "MessagesRead", Kind: dwn.Transient, HTTPStatus: 200, DWNCode: 200, Detail: "reply has no entry.message"}
	}
	stored, inline, err := splitEncodedData(r.Entry.Message)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return dwn.ReadResult{}, &dwn.Error{Op: "MessagesRead", Kind: dwn.Permanent, Detail: err.Error()}
	}
	res := dwn.ReadResult{CID: cid, Message: stored}
	switch {
	case body != nil:
		info, _ := msg.Inspect(stored)
		res.Data = wire.NewExactReader(body, info.DataSize)
	case inline != nil:
		res.Data = io.NopCloser(strings.NewReader(string(inline)))
	}
	return res, nil
}

// splitEncodedData removes a top-level encodedData (base64url) from a message and returns it
// decoded; the message is returned unchanged when it has none.
func splitEncodedData(message json.RawMessage) (json.RawMessage, []byte, error) {
	var probe struct {
		EncodedData *string `json:"encodedData"`
	}
	if err := json.Unmarshal(message, &probe); err != nil {
		return nil, nil, fmt.Errorf("message is not a JSON object: %w", err)
	}
	if probe.EncodedData == nil {
		return message, nil, nil
	}
	data, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(*probe.EncodedData, "="))
	if err != nil {
		return nil, nil, fmt.Errorf("encodedData is not base64url: %w", err)
	}
	stripped, err := msg.StripForApply(message)
	return stripped, data, err
}

// streamID is the ProgressToken stream id of a tenant: first 8 bytes of SHA-256(DID), hex.
func streamID(did string) string {
	h := sha256.Sum256([]byte(did))
	return hex.EncodeToString(h[:8])
}

// scopeFilters turns a scope into MessagesQuery/Subscribe filters. withPaths adds the
// protocolPathPrefix filters (enbox); web5 has no such filter and refuses such scopes.
func scopeFilters(scope dwn.Scope, withPaths bool) ([]any, error) {
	if scope.Protocol == "" {
		if len(scope.ProtocolPathPrefixes) > 0 {
			return nil, &dwn.Error{Op: "scope", Kind: dwn.Permanent, Detail: "protocolPathPrefixes need a protocol"}
		}
		return []any{}, nil
	}
	if len(scope.ProtocolPathPrefixes) == 0 {
		return []any{map[string]any{"protocol": scope.Protocol}}, nil
	}
	if !withPaths {
		return nil, &dwn.Error{Op: "scope", Kind: dwn.Unsupported, Detail: "this server cannot filter by protocol path; replicate the whole protocol instead"}
	}
	filters := make([]any, 0, len(scope.ProtocolPathPrefixes))
	for _, p := range scope.ProtocolPathPrefixes {
		filters = append(filters, map[string]any{"protocol": scope.Protocol, "protocolPathPrefix": p})
	}
	return filters, nil
}

var grantIDInDetail = regexp.MustCompile(`bafy[a-z2-7]{20,}`)

// parentMissingCodes are the DwnErrorCodes a server gives a child record whose parent it lacks:
// web5 0.6.x says the protocol path does not match, older dwn-sdk-js (the seed-era enbox
// server) ParentNotFound, enbox ParentRecordNotFound / CrossProtocolParentNotFound, and any of
// them ParentNotFoundConstructingRecordChain for a broken ancestor chain.
var parentMissingCodes = map[string]bool{
	"ProtocolAuthorizationIncorrectProtocolPath":                 true,
	"ProtocolAuthorizationParentNotFound":                        true,
	"ProtocolAuthorizationParentRecordNotFound":                  true,
	"ProtocolAuthorizationCrossProtocolParentNotFound":           true,
	"ProtocolAuthorizationParentNotFoundConstructingRecordChain": true,
}

// classifyProcessReply maps a dwn.processMessage reply to an apply outcome for servers without
// dwn.applyReplicatedMessage (docs/protocol-notes.md#apply-results-on-the-web5-server). 409,
// 404-of-a-delete and 5xx need the caller (they require another round trip or are errors).
func classifyProcessReply(info msg.MessageInfo, status wire.Status) (dwn.ApplyResult, bool) {
	code := dwn.ErrorCodeOf(status.Detail)
	switch {
	case status.Code == 202 || status.Code == 200:
		return dwn.ApplyResult{Kind: dwn.Applied}, true
	case status.Code == 204:
		return dwn.ApplyResult{Kind: dwn.Applied, AncestryOnly: true}, true
	case code == "RecordsWriteNotAllowedAfterDelete":
		return dwn.ApplyResult{Kind: dwn.Superseded, Reason: status.Detail}, true
	case code == "ProtocolAuthorizationProtocolNotFound":
		return incomplete(dwn.DependencyRef{Type: "Protocol", Protocol: info.Protocol}), true
	case code == "RecordsWriteGetInitialWriteNotFound", code == "RecordsWriteGetNewestWriteRecordNotFound":
		return incomplete(dwn.DependencyRef{Type: "InitialWrite", RecordID: info.RecordID, Protocol: info.Protocol}), true
	case parentMissingCodes[code] && info.ParentID != "":
		return incomplete(dwn.DependencyRef{Type: "Parent", RecordID: info.ParentID, Protocol: info.Protocol}), true
	case code == "GrantAuthorizationGrantMissing":
		id := info.PermissionGrantID
		if m := grantIDInDetail.FindString(status.Detail); m != "" {
			id = m
		}
		return incomplete(dwn.DependencyRef{Type: "Grant", PermissionGrant: id}), true
	case code == "GeneralJwsVerifierGetPublicKeyNotFound":
		return dwn.ApplyResult{Kind: dwn.Deferred, Reason: "resolver-unavailable"}, true
	case status.Code == 401 && strings.Contains(status.Detail, "registered tenant"):
		return dwn.ApplyResult{Kind: dwn.Deferred, Reason: "tenant-inactive"}, true
	case status.Code == 400 || status.Code == 401 || status.Code == 403:
		return dwn.ApplyResult{Kind: dwn.Invalid, Reason: status.Detail}, true
	}
	return dwn.ApplyResult{}, false
}

func incomplete(ref dwn.DependencyRef) dwn.ApplyResult {
	return dwn.ApplyResult{Kind: dwn.Incomplete, Missing: []dwn.DependencyRef{ref}}
}

// applyInput is a message ready to replicate: stripped, inspected, and with its data bounded to
// the size the descriptor names (no data unless a RecordsWrite carries some).
type applyInput struct {
	message json.RawMessage
	info    msg.MessageInfo
	data    io.Reader
	dataLen int64
}

// prepareApply builds the applyInput; a message that cannot be stripped or inspected comes back
// as the Invalid result to return instead.
func prepareApply(message json.RawMessage, data io.Reader) (applyInput, *dwn.ApplyResult) {
	message, err := msg.StripForApply(message)
	if err != nil {
		return applyInput{}, &dwn.ApplyResult{Kind: dwn.Invalid, Reason: err.Error()}
	}
	info, err := msg.Inspect(message)
	if err != nil {
		return applyInput{}, &dwn.ApplyResult{Kind: dwn.Invalid, Reason: err.Error()}
	}
	in := applyInput{message: message, info: info}
	if data != nil && info.Kind() == "RecordsWrite" && info.DataSize > 0 {
		in.dataLen = info.DataSize
		in.data = io.LimitReader(data, in.dataLen)
	}
	return in, nil
}

// applyViaProcess pushes a foreign message with dwn.processMessage and maps the reply.
// Ambiguous answers are resolved by asking the target whether it holds the exact CID: 409 is
// Duplicate when it does (else Superseded), and a RecordsDelete 404 is Duplicate when the
// delete is there (else its record is missing: Incomplete InitialWrite).
func (t *tenantBase) applyViaProcess(ctx context.Context, message json.RawMessage, data io.Reader) (dwn.ApplyResult, error) {
	const op = "apply (dwn.processMessage)"
	in, invalid := prepareApply(message, data)
	if invalid != nil {
		return *invalid, nil
	}
	message, info := in.message, in.info
	t.c.ensureInfo(ctx)
	reply, body, err := t.c.rpc.ProcessMessage(ctx, op, t.did, message, in.data, in.dataLen)
	if err != nil {
		return dwn.ApplyResult{}, err
	}
	if body != nil {
		body.Close()
	}
	if res, ok := classifyProcessReply(info, reply.Status); ok {
		return res, nil
	}
	switch {
	case reply.Status.Code == 409:
		return t.duplicateOr(ctx, message, dwn.ApplyResult{Kind: dwn.Superseded, Reason: reply.Status.Detail})
	case reply.Status.Code == 404 && info.Kind() == "RecordsDelete":
		return t.duplicateOr(ctx, message, incomplete(dwn.DependencyRef{Type: "InitialWrite", RecordID: info.RecordID}))
	case reply.Status.Code == 404:
		return dwn.ApplyResult{Kind: dwn.Invalid, Reason: reply.Status.Detail}, nil
	}
	return dwn.ApplyResult{}, reply.StatusError(op) // 5xx and oddities: transient or permanent error
}

// duplicateOr returns Duplicate when the target already stores message's exact CID, else alt.
func (t *tenantBase) duplicateOr(ctx context.Context, message json.RawMessage, alt dwn.ApplyResult) (dwn.ApplyResult, error) {
	cid, err := msg.MessageCID(message)
	if err != nil {
		return alt, nil
	}
	res, err := t.Read(ctx, cid)
	switch {
	case err == nil:
		if res.Data != nil {
			res.Data.Close()
		}
		return dwn.ApplyResult{Kind: dwn.Duplicate}, nil
	case dwn.IsNotFound(err):
		return alt, nil
	case dwn.IsUnauthorized(err):
		return alt, nil // cannot tell; both outcomes count as success or retry alike
	default:
		return dwn.ApplyResult{}, err
	}
}

// Every adapter implements the contract; enbox-smt also the SMT primitives.
var (
	_ dwn.Tenant    = (*web5Tenant)(nil)
	_ dwn.Tenant    = (*enboxTenant)(nil)
	_ dwn.SMTTenant = (*smtTenant)(nil)
)

// truncate cuts s to n bytes for an error message, marking the cut.
func truncate(s string, n int) string {
	if cut := min(n, len(s)); cut < len(s) {
		return s[:cut] + "…"
	}
	return s
}
