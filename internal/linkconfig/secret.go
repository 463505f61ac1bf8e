// Package linkconfig turns a ReplicationLink and its signer Secret into the engine's
// syncer.LinkConfig. The operator and `dwnsync run` both use it, so a link means the same thing
// in a cluster and on a laptop.
package linkconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	dwnmsg "github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// Keys of the signer Secret (data or stringData).
const (
	SecretKeyDID        = "did"        // the signing DID (the tenant, or a delegate holding grants)
	SecretKeyPrivateJWK = "privateJwk" // its Ed25519 private JWK JSON
	SecretKeyGrants     = "grants"     // optional: {"<endpoint>|*": {"Query"|"Read"|"Subscribe": "<grant id>"}}
)

// Condition reasons for problems with a link's inputs. Each Error message says what to fix.
const (
	ReasonSecretMissing        = "SignerSecretMissing"
	ReasonSecretInvalid        = "SignerSecretInvalid"
	ReasonLocalEndpointMissing = "LocalEndpointMissing"
	ReasonInvalidSpec          = "InvalidSpec"
)

// Error is a problem with a link's inputs that a person has to fix; Reason is a condition reason.
type Error struct {
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Message }

// SecretValue reads key from data, then from stringData (which `dwnsync run` files may use; the
// API server folds stringData into data).
func SecretValue(secret *corev1.Secret, key string) ([]byte, bool) {
	if v, ok := secret.Data[key]; ok {
		return v, true
	}
	if v, ok := secret.StringData[key]; ok {
		return []byte(v), true
	}
	return nil, false
}

// MissingSecret is the error for a signer Secret that does not exist.
func MissingSecret(namespace, name string) *Error {
	return &Error{Reason: ReasonSecretMissing, Message: fmt.Sprintf(
		"signer Secret %s/%s not found: create it with keys %q and %q (see config/samples), or fix spec.signer.secretRef.name",
		namespace, name, SecretKeyDID, SecretKeyPrivateJWK)}
}

// Signer loads the signing identity and its grants from a signer Secret. Errors name the Secret
// and the key, and say why the value looks wrong; they never include any part of a value.
func Signer(secret *corev1.Secret) (*dwnmsg.Signer, dwnmsg.EndpointGrants, error) {
	ref := secret.Namespace + "/" + secret.Name
	invalid := func(key, format string, args ...any) *Error {
		return &Error{Reason: ReasonSecretInvalid, Message: fmt.Sprintf("signer Secret %s key %q: ", ref, key) + fmt.Sprintf(format, args...)}
	}
	rawDID, _ := SecretValue(secret, SecretKeyDID)
	did := strings.TrimSpace(string(rawDID))
	if did == "" {
		return nil, nil, invalid(SecretKeyDID, "missing or empty; set it to the signing DID (did:jwk:…)")
	}
	rawJWK, _ := SecretValue(secret, SecretKeyPrivateJWK)
	jwk := bytes.TrimSpace(rawJWK)
	if len(jwk) == 0 {
		return nil, nil, invalid(SecretKeyPrivateJWK, `missing or empty; set it to the DID's Ed25519 private JWK {"kty":"OKP","crv":"Ed25519","x":…,"d":…}`)
	}
	if why := didProblem(did, jwk); why != "" {
		return nil, nil, invalid(SecretKeyDID, "%s", why)
	}
	if why := jwkProblem(jwk); why != "" {
		return nil, nil, invalid(SecretKeyPrivateJWK, "%s", why)
	}
	signer, err := dwnmsg.NewSigner(did, jwk)
	if err != nil {
		key, why := explainSignerError(err)
		return nil, nil, invalid(key, "%s", why)
	}
	var grants dwnmsg.EndpointGrants
	if raw, ok := SecretValue(secret, SecretKeyGrants); ok {
		if grants, err = dwnmsg.ParseEndpointGrants(raw); err != nil {
			return nil, nil, invalid(SecretKeyGrants, "%v", err)
		}
	}
	return signer, grants, nil
}

// swapHint is added when each of did and privateJwk looks like what the other should hold.
const swapHint = "; did you swap did and privateJwk?"

// didProblem says why a did value is not a did:jwk, describing its shape only.
func didProblem(did string, jwk []byte) string {
	switch {
	case strings.HasPrefix(did, "{"):
		hint := ""
		if strings.HasPrefix(string(jwk), "did:") {
			hint = swapHint
		}
		return "does not look like a DID (it looks like a JSON object" + hint + "); set it to the signing DID (did:jwk:…)"
	case !strings.HasPrefix(did, "did:"):
		return "does not look like a DID (it does not start with did:); set it to the signing DID (did:jwk:…)"
	case !strings.HasPrefix(did, "did:jwk:"):
		return "is a DID of another method; only did:jwk Ed25519 identities can sign (did:jwk:…)"
	}
	return ""
}

// jwkProblem says why a privateJwk value is not a JSON object, describing its shape only.
func jwkProblem(jwk []byte) string {
	switch {
	case bytes.HasPrefix(jwk, []byte("did:")):
		return "does not look like a JWK (it looks like a DID" + swapHint + `); set it to the DID's Ed25519 private JWK {"kty":"OKP","crv":"Ed25519","x":…,"d":…}`
	case jwk[0] != '{' || !json.Valid(jwk):
		return `is not a JSON object; set it to the DID's Ed25519 private JWK {"kty":"OKP","crv":"Ed25519","x":…,"d":…}`
	}
	return ""
}

// didWhy says in its own words why a did:jwk does not resolve: the resolver's errors may quote
// what the DID decodes to (the JSON parser quotes a byte), and a value pasted there by mistake
// may be a private key.
func didWhy(msg string) string {
	switch {
	case strings.Contains(msg, "not base64url"), strings.Contains(msg, "not JSON"):
		return "the part after did:jwk: is not a base64url-encoded JSON JWK"
	case strings.Contains(msg, "private key"):
		return "it embeds a private key (d); a did:jwk holds the public key only"
	case strings.Contains(msg, "kty"):
		return "its key is not Ed25519 (want kty OKP and crv Ed25519)"
	case strings.Contains(msg, "x must be"):
		return "its x is not a base64url 32-byte Ed25519 public key"
	}
	return "set it to the DID of the key in privateJwk (did:jwk:…)"
}

// explainSignerError names the Secret key a msg.NewSigner error is about and says what is wrong
// in words of its own: the errors of a private key may quote parts of it, so they are never
// passed on. The DID's errors (a public identifier, already known to be a did:jwk) are.
func explainSignerError(err error) (key, why string) {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "signer did: "):
		return SecretKeyDID, "not a valid did:jwk Ed25519 identity: " + didWhy(msg)
	case strings.Contains(msg, "different DID"):
		return SecretKeyPrivateJWK, "belongs to a different DID than key \"did\" (did and privateJwk must be one identity)"
	case strings.Contains(msg, "x does not match d"):
		return SecretKeyPrivateJWK, "its x does not match its d (a corrupt key)"
	case strings.Contains(msg, "field d"):
		return SecretKeyPrivateJWK, "its d must be the base64url 32-byte Ed25519 seed"
	case strings.Contains(msg, "kty"):
		return SecretKeyPrivateJWK, "not an Ed25519 key: want kty OKP and crv Ed25519"
	}
	return SecretKeyPrivateJWK, `not a valid Ed25519 private JWK {"kty":"OKP","crv":"Ed25519","x":…,"d":…}`
}
