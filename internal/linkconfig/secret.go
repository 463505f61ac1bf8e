// Package linkconfig turns a ReplicationLink and its signer Secret into the engine's
// syncer.LinkConfig. The operator and `dwnsync run` both use it, so a link means the same thing
// in a cluster and on a laptop.
package linkconfig

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/dwnsync/dwnsync/internal/dwn"
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
// and the key; they never include key material.
func Signer(secret *corev1.Secret) (*dwn.Signer, dwn.EndpointGrants, error) {
	ref := secret.Namespace + "/" + secret.Name
	invalid := func(key, format string, args ...any) *Error {
		return &Error{Reason: ReasonSecretInvalid, Message: fmt.Sprintf("signer Secret %s key %q: ", ref, key) + fmt.Sprintf(format, args...)}
	}
	did, ok := SecretValue(secret, SecretKeyDID)
	if !ok || strings.TrimSpace(string(did)) == "" {
		return nil, nil, invalid(SecretKeyDID, "missing or empty; set it to the signing DID (did:jwk:…)")
	}
	jwk, ok := SecretValue(secret, SecretKeyPrivateJWK)
	if !ok || strings.TrimSpace(string(jwk)) == "" {
		return nil, nil, invalid(SecretKeyPrivateJWK, `missing or empty; set it to the DID's Ed25519 private JWK {"kty":"OKP","crv":"Ed25519","x":…,"d":…}`)
	}
	signer, err := dwn.NewSigner(strings.TrimSpace(string(did)), jwk)
	if err != nil {
		key := SecretKeyPrivateJWK
		if strings.HasPrefix(err.Error(), "signer did") {
			key = SecretKeyDID
		}
		return nil, nil, invalid(key, "%v", err)
	}
	var grants dwn.EndpointGrants
	if raw, ok := SecretValue(secret, SecretKeyGrants); ok {
		if grants, err = dwn.ParseEndpointGrants(raw); err != nil {
			return nil, nil, invalid(SecretKeyGrants, "%v", err)
		}
	}
	return signer, grants, nil
}
