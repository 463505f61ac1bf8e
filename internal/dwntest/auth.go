package dwntest

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// grantScope is the scope of a permission grant.
type grantScope struct {
	Interface    string `json:"interface"`
	Method       string `json:"method"`
	Protocol     string `json:"protocol,omitempty"`
	ProtocolPath string `json:"protocolPath,omitempty"`
	ContextID    string `json:"contextId,omitempty"`
}

// grantData is the JSON data of a permission grant record.
type grantData struct {
	DateExpires string     `json:"dateExpires"`
	Scope       grantScope `json:"scope"`
	Delegated   bool       `json:"delegated,omitempty"`
}

// grantLocked loads permission grant id of tenant t for grantee, or says why it is unusable.
func (n *Node) grantLocked(t *tenant, id, grantee string) (grantData, string) {
	r := t.records[id]
	if r == nil || r.initial == nil {
		return grantData{}, "PermissionGrantNotFound: grant " + id + " is not stored on this DWN"
	}
	g := r.initial
	if g.info.Protocol != permissionsProtocol || g.info.ProtocolPath != "grant" {
		return grantData{}, "PermissionGrantNotFound: record " + id + " is not a permission grant"
	}
	if g.author != t.did {
		return grantData{}, "PermissionsProtocolValidateScopeGrantorNotTenant: grant " + id + " was not issued by the tenant"
	}
	if recipientOf(g.raw) != grantee {
		return grantData{}, "GrantAuthorizationNotGrantedToAuthor: grant " + id + " was not granted to " + grantee
	}
	if r.deleted() {
		return grantData{}, "GrantAuthorizationGrantRevoked: grant " + id + " was deleted"
	}
	data := r.latest.data
	if data == nil {
		data = g.data
	}
	var gd grantData
	if err := json.Unmarshal(data, &gd); err != nil {
		return grantData{}, "PermissionGrantInvalid: grant " + id + " data is not grant JSON"
	}
	if gd.DateExpires != "" && gd.DateExpires <= msg.FormatTimestamp(n.clock.Now()) {
		return grantData{}, "GrantAuthorizationGrantExpired: grant " + id + " expired at " + gd.DateExpires
	}
	for _, m := range t.records {
		if rev := m.initial; rev != nil && rev.info.ParentID == id && rev.info.ProtocolPath == "grant/revocation" {
			return grantData{}, "GrantAuthorizationGrantRevoked: grant " + id + " is revoked"
		}
	}
	return gd, ""
}

// authorizeMessagesLocked checks a Messages* request: the tenant itself, or a delegate whose
// permissionGrantIds are all valid Messages grants covering the request
// (docs/protocol-notes.md#messages-authorization). target is the message a MessagesRead asks for
// (nil otherwise). It returns 0 when allowed.
func (n *Node) authorizeMessagesLocked(t *tenant, req request, kind string, target *stored) (int, string) {
	if req.author == t.did {
		return 0, ""
	}
	fail := kind + "AuthorizationFailed: "
	ids := req.desc.PermissionGrantIDs
	if len(ids) == 0 && req.desc.PermissionGrantID != "" {
		ids = []string{req.desc.PermissionGrantID} // seed-era singular form
	}
	if len(ids) == 0 && req.grant != "" {
		ids = []string{req.grant}
	}
	if len(ids) == 0 {
		return 401, fail + "author " + req.author + " is not the tenant and invokes no permission grant"
	}
	if !sort.StringsAreSorted(ids) || hasDuplicates(ids) {
		return 400, "MessagePermissionGrantIdsNotCanonical: permissionGrantIds must be unique and sorted ascending"
	}
	method := strings.TrimPrefix(kind, "Messages")
	var scopes []grantScope
	for _, id := range ids {
		g, problem := n.grantLocked(t, id, req.author)
		if problem != "" {
			return 401, problem
		}
		if g.Scope.Interface != "Messages" || (g.Scope.Method != "Read" && g.Scope.Method != method) {
			return 401, "GrantAuthorizationInterfaceMismatch: grant " + id + " does not cover Messages." + method
		}
		scopes = append(scopes, g.Scope)
	}
	unscoped := false
	for _, s := range scopes {
		if s.Protocol == "" {
			unscoped = true
		}
	}
	if unscoped {
		return 0, ""
	}
	covered := func(protocol, pathPrefix string) bool {
		for _, s := range scopes {
			if s.Protocol == protocol && (s.ProtocolPath == "" || pathPrefixMatches(s.ProtocolPath, pathPrefix)) {
				return true
			}
		}
		return false
	}
	switch kind {
	case "MessagesRead":
		if target != nil && !covered(target.protocol, target.protocolPath) && !covered(target.tagProtocol, "") {
			return 401, fail + "message " + target.cid + " is outside the grant's protocol scope"
		}
	case "MessagesSync":
		if req.desc.Protocol == "" || !covered(req.desc.Protocol, "") {
			return 401, fail + "a protocol-scoped grant needs a matching protocol"
		}
	default: // Query, Subscribe
		if len(req.desc.Filters) == 0 {
			return 401, "MessagesGrantAuthorizationUnfiltered" + method + "ProtocolScope: a protocol-scoped grant cannot read filters:[]"
		}
		for _, f := range req.desc.Filters {
			if !covered(f.Protocol, f.ProtocolPathPrefix) {
				return 401, fail + "filter protocol " + f.Protocol + " is outside every grant scope"
			}
		}
	}
	return 0, ""
}

// authorizeRecordsLocked checks a RecordsQuery/RecordsRead used for dependency lookups: the
// tenant, or a delegate invoking a Records grant (singular permissionGrantId).
func (n *Node) authorizeRecordsLocked(t *tenant, req request, protocol string) (int, string) {
	if req.author == t.did {
		return 0, ""
	}
	id := req.grant
	if id == "" {
		id = req.desc.PermissionGrantID
	}
	if id == "" {
		return 401, "RecordsAuthorizationFailed: author " + req.author + " is not the tenant and invokes no permission grant"
	}
	g, problem := n.grantLocked(t, id, req.author)
	if problem != "" {
		return 401, problem
	}
	if g.Scope.Interface != "Records" || (g.Scope.Protocol != "" && g.Scope.Protocol != protocol) {
		return 401, "GrantAuthorizationInterfaceMismatch: grant " + id + " does not cover this Records request"
	}
	return 0, ""
}

func hasDuplicates(sorted []string) bool {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return true
		}
	}
	return false
}
