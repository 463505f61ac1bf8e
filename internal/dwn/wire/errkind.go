package wire

import "github.com/dwnsync/dwnsync/internal/dwn"

// JSON-RPC error codes seen from DWN servers (docs/protocol-notes.md#error-codes).
const (
	rpcParseError     = -32700
	rpcInvalidRequest = -32600
	rpcMethodNotFound = -32601
	rpcInvalidParams  = -32602
	rpcInternalError  = -32603
	rpcServerError    = -32300
	rpcBadRequest     = -50400
	rpcUnauthorized   = -50401
	rpcForbidden      = -50403
	rpcConflict       = -50409
	rpcRateLimited    = -50429
)

// kindForHTTP classifies an HTTP status that arrived without a JSON-RPC error object.
func kindForHTTP(status int) dwn.ErrorKind {
	switch {
	case status == 401 || status == 403:
		return dwn.Unauthorized
	case status == 404 || status == 405 || status == 501:
		return dwn.Unsupported
	case status == 408 || status == 429 || status >= 500:
		return dwn.Transient
	default:
		return dwn.Permanent // 400, 413, 431 …: the request itself is wrong or too big
	}
}

// kindForRPC classifies a JSON-RPC error by its code (and data.code). HTTP 500 alone says nothing:
// deterministic rejections also arrive as 500 (docs/protocol-notes.md#http-status-mapping).
func kindForRPC(code int, dataCode string) dwn.ErrorKind {
	switch code {
	case rpcMethodNotFound:
		return dwn.Unsupported
	case rpcInternalError, rpcServerError, rpcRateLimited:
		return dwn.Transient
	case rpcUnauthorized, rpcForbidden:
		return dwn.Unauthorized
	case rpcInvalidRequest:
		if dataCode == "TenantMessageQuotaExceeded" || dataCode == "TenantStorageQuotaExceeded" {
			return dwn.Transient // quota-blocked: retry with a long backoff
		}
		return dwn.Permanent
	case rpcParseError, rpcInvalidParams, rpcBadRequest, rpcConflict:
		return dwn.Permanent
	default:
		if code <= -32000 && code >= -32099 {
			return dwn.Transient // implementation-defined server errors
		}
		return dwn.Permanent
	}
}

// kindForDWN classifies a DWN reply status that is not a success.
func kindForDWN(code int) dwn.ErrorKind {
	switch {
	case code == 401 || code == 403:
		return dwn.Unauthorized
	case code == 501:
		return dwn.Unsupported
	case code >= 500:
		return dwn.Transient
	default:
		return dwn.Permanent
	}
}
