package dialect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
)

// applyReplicated sends dwn.applyReplicatedMessage and decodes result.result.
func applyReplicated(ctx context.Context, r *wire.RPC, target string, message json.RawMessage, data io.Reader, dataLen int64) (dwn.ApplyResult, error) {
	const op = "dwn.applyReplicatedMessage"
	ans, err := r.Call(ctx, wire.Call{Op: op, Method: op,
		Params: map[string]any{"target": target, "message": message}, Data: data, DataLen: dataLen})
	if err != nil {
		return dwn.ApplyResult{}, err
	}
	if ans.Body != nil {
		ans.Body.Close()
	}
	return decodeApplyResult(ans.Result)
}

// decodeApplyResult reads {"result":{"kind":…}} of dwn.applyReplicatedMessage.
func decodeApplyResult(result json.RawMessage) (dwn.ApplyResult, error) {
	const op = "dwn.applyReplicatedMessage"
	var r struct {
		Result *struct {
			Kind         dwn.ApplyKind       `json:"kind"`
			AncestryOnly bool                `json:"ancestryOnly"`
			Missing      []dwn.DependencyRef `json:"missing"`
			Reason       string              `json:"reason"`
		} `json:"result"`
	}
	if err := json.Unmarshal(result, &r); err != nil || r.Result == nil {
		return dwn.ApplyResult{}, &dwn.Error{Op: op, Kind: dwn.Transient, Detail: "result has no result.kind"}
	}
	switch r.Result.Kind {
	case dwn.Applied, dwn.Duplicate, dwn.Superseded, dwn.Incomplete, dwn.Invalid, dwn.Deferred:
	default:
		return dwn.ApplyResult{}, &dwn.Error{Op: op, Kind: dwn.Permanent, Detail: fmt.Sprintf("unknown apply result kind %q", r.Result.Kind)}
	}
	for i := range r.Result.Missing {
		if r.Result.Missing[i].Type == "EncryptionProtocol" {
			r.Result.Missing[i].Type = "EncryptionControl" // one client version's spelling
		}
	}
	return dwn.ApplyResult{Kind: r.Result.Kind, AncestryOnly: r.Result.AncestryOnly, Missing: r.Result.Missing, Reason: r.Result.Reason}, nil
}
