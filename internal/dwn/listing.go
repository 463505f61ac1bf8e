package dwn

import (
	"context"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// CIDLister is a Tenant that can hand out its listing one CID at a time, so a caller that
// keeps a compact set (CIDSet) never holds the whole reply: web5 lists a whole tenant in one
// MessagesQuery reply. If EachCID fails, the CIDs already handed out must be discarded.
type CIDLister interface {
	EachCID(ctx context.Context, scope Scope, fn func(cid string) error) error
}

// EachCID streams t's listing of scope into fn: through CIDLister when t has it, else from
// ListCIDs.
func EachCID(ctx context.Context, t Tenant, scope Scope, fn func(cid string) error) error {
	if l, ok := t.(CIDLister); ok {
		return l.EachCID(ctx, scope, fn)
	}
	cids, err := t.ListCIDs(ctx, scope)
	if err != nil {
		return err
	}
	for _, c := range cids {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// ListCIDList is the listing of scope in the owner's order (see CIDList).
func ListCIDList(ctx context.Context, t Tenant, scope Scope) (*msg.CIDList, error) {
	l := &msg.CIDList{}
	if err := EachCID(ctx, t, scope, func(cid string) error { l.Add(cid); return nil }); err != nil {
		return nil, err
	}
	return l, nil
}
