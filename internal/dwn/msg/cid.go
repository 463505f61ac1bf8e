package msg

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/fxamacker/cbor/v2"
	gocid "github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Codec numbers of the CIDs DWN servers compute (multicodec table).
const (
	codecDagCBOR = 0x71
	codecRaw     = 0x55
)

// maxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER. The JS SDKs parse JSON into doubles
// and their dag-cbor encoder writes a number as a CBOR integer only when it is a safe integer;
// anything else becomes a 64-bit float. We mirror that so our CIDs match theirs.
const maxSafeInteger = 1<<53 - 1

// dagCBOR encodes exactly like @ipld/dag-cbor for JSON-shaped values: map keys sorted
// length-first then bytewise, definite lengths, smallest integers, and floats ALWAYS as 64-bit
// (the fxamacker canonical default would shrink 1.5 to a float16 and change the CID).
var dagCBOR = func() cbor.EncMode {
	opts := cbor.CanonicalEncOptions()
	opts.ShortestFloat = cbor.ShortestFloatNone
	opts.NaNConvert = cbor.NaNConvertNone
	opts.InfConvert = cbor.InfConvertNone
	mode, err := opts.EncMode()
	if err != nil {
		panic("dwn: dag-cbor encoder options: " + err.Error())
	}
	return mode
}()

// MessageCID is the CID a DWN server gives a message: dag-cbor CIDv1 over the message object
// without its top-level encodedData (the only property excluded; Message.getCid does the same).
func MessageCID(message json.RawMessage) (string, error) {
	value, err := decodeJSON(message)
	if err != nil {
		return "", fmt.Errorf("message cid: %w", err)
	}
	obj, ok := value.(map[string]any)
	if !ok {
		return "", errors.New("message cid: message must be a JSON object")
	}
	delete(obj, "encodedData")
	return cidOfNormalized(obj)
}

// CIDOf returns the dag-cbor CIDv1 (base32, "bafyrei…") of a JSON-shaped value: a
// json.RawMessage or []byte holding JSON, or any Go value that encoding/json can marshal (it
// is marshalled and re-read so Go ints, floats and structs end up exactly as JSON would carry
// them to a JS server).
func CIDOf(value any) (string, error) {
	var raw []byte
	switch v := value.(type) {
	case json.RawMessage:
		raw = v
	case []byte:
		raw = v
	default:
		b, err := json.Marshal(value)
		if err != nil {
			return "", fmt.Errorf("cid: marshal value: %w", err)
		}
		raw = b
	}
	normalized, err := decodeJSON(raw)
	if err != nil {
		return "", fmt.Errorf("cid: %w", err)
	}
	return cidOfNormalized(normalized)
}

// RawDataCID is the CID of record data up to one UnixFS chunk (262,144 bytes): CIDv1 raw
// sha2-256 ("bafkrei…"). Larger data is a dag-pb tree we do not build; verify it by size.
func RawDataCID(data []byte) string {
	sum, _ := multihash.Sum(data, multihash.SHA2_256, -1)
	return gocid.NewCidV1(codecRaw, sum).String()
}

// ListingDigest summarises a set of CIDs: XOR over SHA-256(UTF-8(cid)), 64 lowercase hex (the
// enbox fingerprint formula, computed client side). Duplicates count once, because the input
// is meant as a set and XOR would otherwise cancel them. Empty set = 64 zeros.
func ListingDigest(cids []string) string {
	var acc listingAcc
	seen := make(map[string]struct{}, len(cids))
	for _, c := range cids {
		if _, dup := seen[c]; dup {
			continue
		}
		seen[c] = struct{}{}
		acc.add(c)
	}
	return acc.String()
}

// listingAcc accumulates a ListingDigest one distinct CID at a time.
type listingAcc [sha256.Size]byte

func (a *listingAcc) add(cid string) {
	h := sha256.Sum256([]byte(cid))
	for i := range a {
		a[i] ^= h[i]
	}
}

func (a *listingAcc) String() string { return hex.EncodeToString(a[:]) }

func cidOfNormalized(value any) (string, error) {
	encoded, err := dagCBOR.Marshal(value)
	if err != nil {
		return "", fmt.Errorf("dag-cbor encode: %w", err)
	}
	sum, err := multihash.Sum(encoded, multihash.SHA2_256, -1)
	if err != nil {
		return "", fmt.Errorf("multihash: %w", err)
	}
	return gocid.NewCidV1(codecDagCBOR, sum).String(), nil
}

// decodeJSON reads one JSON value keeping numbers exact (UseNumber) and converts them the way a
// JS runtime sees them (see jsNumber). Trailing data after the value is an error.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode JSON: trailing data after the value")
	}
	return normalizeNumbers(v)
}

func normalizeNumbers(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			n, err := normalizeNumbers(child)
			if err != nil {
				return nil, err
			}
			t[k] = n
		}
		return t, nil
	case []any:
		for i, child := range t {
			n, err := normalizeNumbers(child)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
		return t, nil
	case json.Number:
		return jsNumber(t)
	default:
		return v, nil
	}
}

// jsNumber converts a JSON number to what JSON.parse + dag-cbor would encode: a safe integer
// (|n| ≤ 2^53-1, including integral spellings such as 1.0 or 1e3) becomes an int64, anything
// else a float64.
func jsNumber(n json.Number) (any, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil && i >= -maxSafeInteger && i <= maxSafeInteger {
		return i, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return nil, fmt.Errorf("number %q: %w", string(n), err)
	}
	if f == math.Trunc(f) && math.Abs(f) <= maxSafeInteger {
		return int64(f), nil
	}
	return f, nil
}
