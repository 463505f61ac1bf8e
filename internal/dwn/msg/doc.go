// Package msg is the DWN message layer: CIDs (dag-cbor messages, raw and UnixFS data), the
// did:jwk Ed25519 signer and its grants, general JWS signing and verification, message
// inspection, the sparse Merkle tree of enbox-smt servers, and compact CID sets. It knows no
// server and no transport, and imports no other dwnsync package.
package msg
