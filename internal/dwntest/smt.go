package dwntest

import (
	"regexp"
	"sort"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// stateIndex is a seed-era tenant StateIndex: one sparse Merkle tree over every stored message
// CID, and one per protocol over the messages indexed with that protocol.
type stateIndex struct {
	global     *msg.SMT
	byProtocol map[string]*msg.SMT
}

func newStateIndex() *stateIndex {
	return &stateIndex{global: msg.NewSMT(), byProtocol: map[string]*msg.SMT{}}
}

func (s *stateIndex) insert(cid, protocol string) {
	s.global.Insert(cid)
	if protocol == "" {
		return
	}
	tree := s.byProtocol[protocol]
	if tree == nil {
		tree = msg.NewSMT()
		s.byProtocol[protocol] = tree
	}
	tree.Insert(cid)
}

func (s *stateIndex) remove(cid, protocol string) {
	s.global.Delete(cid)
	if tree := s.byProtocol[protocol]; tree != nil {
		tree.Delete(cid)
	}
}

// tree returns the tree of a protocol ("" = global); an unknown protocol gets an empty tree.
func (s *stateIndex) tree(protocol string) *msg.SMT {
	if protocol == "" {
		return s.global
	}
	if tree := s.byProtocol[protocol]; tree != nil {
		return tree
	}
	return msg.NewSMT()
}

var bitPrefix = regexp.MustCompile(`^[01]{0,256}$`)

// messagesSyncLocked is the seed-era MessagesSync: root, subtree, leaves and diff.
func (n *Node) messagesSyncLocked(t *tenant, req request) reply {
	if code, detail := n.authorizeMessagesLocked(t, req, "MessagesSync", nil); code != 0 {
		return statusReply(code, detail)
	}
	d := req.desc
	tree := t.index.tree(d.Protocol)
	prefix := ""
	if d.Prefix != nil {
		prefix = *d.Prefix
		if !bitPrefix.MatchString(prefix) {
			return statusReply(400, "MessagesSyncInvalidPrefix: prefix must match ^[01]*$ and be at most 256 characters")
		}
	}
	body := status(200, "OK")
	switch d.Action {
	case "root":
		body["root"] = tree.Root()
	case "subtree":
		if d.Prefix == nil {
			return statusReply(400, "SchemaValidatorFailure: subtree needs prefix")
		}
		body["hash"] = tree.Subtree(prefix)
	case "leaves":
		if d.Prefix == nil {
			return statusReply(400, "SchemaValidatorFailure: leaves needs prefix")
		}
		body["entries"] = tree.Leaves(prefix)
	case "diff":
		if d.Depth == nil || *d.Depth < 0 || *d.Depth > 256 || d.Hashes == nil {
			return statusReply(400, "SchemaValidatorFailure: diff needs hashes and a depth in 0..256")
		}
		onlyRemote, onlyLocal, ok := n.diffLocked(t, tree, d.Hashes, *d.Depth)
		if !ok {
			return statusReply(400, "MessagesSyncInvalidPrefix: every hashes key must be a bit prefix of length depth")
		}
		body["onlyRemote"] = onlyRemote
		body["onlyLocal"] = onlyLocal
	default:
		return statusReply(400, "SchemaValidatorFailure: action must be root, subtree, leaves or diff")
	}
	return reply{body: body}
}

// diffEntry is one onlyRemote entry of a diff reply.
type diffEntry struct {
	MessageCID  string `json:"messageCid"`
	Message     any    `json:"message,omitempty"`
	EncodedData string `json:"encodedData,omitempty"`
}

// diffLocked compares the client's subtree hashes at depth with the tenant's tree. Where they
// differ the server sends all its leaves under the prefix and, when the client has something
// there too, lists the prefix as onlyLocal (it over-reports both ways, as the seed server did).
func (n *Node) diffLocked(t *tenant, tree *msg.SMT, client map[string]string, depth int) ([]diffEntry, []string, bool) {
	empty := msg.EmptySubtree(depth)
	server := tree.Hashes(depth)
	prefixes := map[string]struct{}{}
	for p, h := range client {
		if len(p) != depth || !bitPrefix.MatchString(p) {
			return nil, nil, false
		}
		if h != empty {
			prefixes[p] = struct{}{}
		}
	}
	for p := range server {
		prefixes[p] = struct{}{}
	}
	sorted := make([]string, 0, len(prefixes))
	for p := range prefixes {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	onlyRemote, onlyLocal := []diffEntry{}, []string{}
	for _, p := range sorted {
		mine, theirs := server[p], client[p]
		if theirs == empty {
			theirs = ""
		}
		if mine == theirs {
			continue
		}
		if theirs != "" {
			onlyLocal = append(onlyLocal, p)
		}
		if mine == "" {
			continue
		}
		for _, cid := range tree.Leaves(p) {
			m := t.byCID[cid]
			if m == nil {
				continue
			}
			e := diffEntry{MessageCID: cid, Message: n.serveMessageLocked(m, servedDiff)}
			e.EncodedData = n.inlineDataLocked(m)
			onlyRemote = append(onlyRemote, e)
		}
	}
	return onlyRemote, onlyLocal, true
}
