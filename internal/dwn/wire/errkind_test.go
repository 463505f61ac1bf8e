package wire

import (
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

func TestErrorClassification(t *testing.T) {
	rpc := []struct {
		code     int
		dataCode string
		want     dwn.ErrorKind
	}{
		{rpcMethodNotFound, "", dwn.Unsupported},
		{rpcInternalError, "", dwn.Transient},
		{rpcServerError, "", dwn.Transient},
		{rpcRateLimited, "", dwn.Transient},
		{rpcInvalidParams, "", dwn.Permanent},
		{rpcInvalidParams, "RecordDataSizeLimitExceeded", dwn.Permanent},
		{rpcInvalidRequest, "", dwn.Permanent},
		{rpcInvalidRequest, "TenantStorageQuotaExceeded", dwn.Transient},
		{rpcInvalidRequest, "TenantMessageQuotaExceeded", dwn.Transient},
		{rpcParseError, "", dwn.Permanent},
		{rpcBadRequest, "", dwn.Permanent},
		{rpcUnauthorized, "", dwn.Unauthorized},
		{rpcForbidden, "", dwn.Unauthorized},
		{rpcConflict, "", dwn.Permanent},
	}
	for _, c := range rpc {
		if got := kindForRPC(c.code, c.dataCode); got != c.want {
			t.Errorf("rpc %d %s: %s, want %s", c.code, c.dataCode, got, c.want)
		}
	}
	httpCases := map[int]dwn.ErrorKind{400: dwn.Permanent, 401: dwn.Unauthorized, 408: dwn.Transient, 413: dwn.Permanent, 429: dwn.Transient,
		431: dwn.Permanent, 500: dwn.Transient, 501: dwn.Unsupported, 502: dwn.Transient, 503: dwn.Transient, 504: dwn.Transient}
	for status, want := range httpCases {
		if got := kindForHTTP(status); got != want {
			t.Errorf("http %d: %s, want %s", status, got, want)
		}
	}
	dwnCases := map[int]dwn.ErrorKind{400: dwn.Permanent, 401: dwn.Unauthorized, 404: dwn.Permanent, 500: dwn.Transient, 501: dwn.Unsupported}
	for code, want := range dwnCases {
		if got := kindForDWN(code); got != want {
			t.Errorf("dwn %d: %s, want %s", code, got, want)
		}
	}
}
