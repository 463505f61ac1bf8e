package validation_test

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/validation"
	"github.com/dwnsync/dwnsync/internal/validation/validationtest"
)

// Verdict renders field errors as sorted "Type field" lines, the form both sides are compared in.
func verdict(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	sort.Strings(out)
	return out
}

func want(ws []validationtest.Want) []string {
	var out []string
	for _, w := range ws {
		out = append(out, causeType(w.Type)+" "+w.Field)
	}
	sort.Strings(out)
	return out
}

// causeType maps metav1 cause types to field.ErrorType strings.
func causeType(t string) string {
	for _, et := range []field.ErrorType{field.ErrorTypeInvalid, field.ErrorTypeRequired, field.ErrorTypeForbidden,
		field.ErrorTypeNotSupported, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeDuplicate} {
		if "FieldValue"+strings.ReplaceAll(string(et), " ", "") == t || string(et) == t {
			return string(et)
		}
	}
	return t
}

func TestDecodeLinkTable(t *testing.T) {
	for _, c := range validationtest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			link, errs := validation.DecodeLink(validationtest.Document("l", c.Edit))
			if got, exp := verdict(errs), want(c.Want); !slices.Equal(got, exp) {
				t.Fatalf("verdict %q, want %q\nerrors: %v", got, exp, errs)
			}
			for _, w := range c.Want {
				if w.Message != "" && !strings.Contains(errs.ToAggregate().Error(), w.Message) {
					t.Errorf("errors %v lack message %q", errs, w.Message)
				}
			}
			if len(c.Want) == 0 && link == nil {
				t.Fatal("valid document decoded to nil")
			}
		})
	}
}

func TestValidateLinkUpdateTable(t *testing.T) {
	old, errs := validation.DecodeLink(validationtest.Document("l", nil))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, c := range append(validationtest.UpdateCases, validationtest.MutableEdits...) {
		t.Run(c.Name, func(t *testing.T) {
			updated, errs := validation.DecodeLink(validationtest.Document("l", c.Edit))
			errs = append(errs, validation.ValidateLinkUpdate(updated, old)...)
			// DecodeLink already ran the create rules once more inside ValidateLinkUpdate.
			if got, exp := dedupe(verdict(errs)), want(c.Want); !slices.Equal(got, exp) {
				t.Fatalf("verdict %q, want %q\nerrors: %v", got, exp, errs)
			}
		})
	}
}

func dedupe(s []string) []string { return slices.Compact(s) }

func TestDecodeLinkErrorsNameTheField(t *testing.T) {
	_, errs := validation.DecodeLink([]byte("apiVersion: dwnsync.io/v1alpha1\nkind: ReplicationLink\nmetadata: {name: x}\nspec:\n  tenant: did:jwk:abc\n  endpoint: https://a.example\n  signer: {secretRef: {name: s}}\n  suspend: \"yes\"\n"))
	msg := errs.ToAggregate().Error()
	if !strings.Contains(msg, "spec.suspend") {
		t.Errorf("type error does not name spec.suspend: %s", msg)
	}
	_, errs = validation.DecodeLink([]byte("apiVersion: dwnsync.io/v1alpha1\nkind: ReplicationLink\nmetadata: {name: x}\nspec:\n  tenant: did:jwk:abc\n  endpoint: https://a.example\n  signer: {secretRef: {name: s}}\n  colour: blue\n"))
	if msg := errs.ToAggregate().Error(); !strings.Contains(msg, "spec.colour") || !strings.Contains(msg, "spelling") {
		t.Errorf("unknown field error does not name the field and the fix: %s", msg)
	}
}

func TestDefaultsMatchCRD(t *testing.T) {
	crd := loadCRD(t)
	spec := dig(crd, "spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "spec", "properties").(map[string]any)
	l := &v1alpha1.ReplicationLink{}
	l.Default()
	got := map[string]string{
		"direction":    string(l.Spec.Direction),
		"mode":         string(l.Spec.Mode),
		"dialect":      string(l.Spec.Dialect),
		"pollInterval": "2m",
	}
	if l.Spec.PollInterval.Duration != v1alpha1.DefaultPollInterval {
		t.Errorf("Default pollInterval %v", l.Spec.PollInterval.Duration)
	}
	for f, v := range got {
		if d := dig(spec, f, "default"); d != v {
			t.Errorf("CRD default of %s is %v, Go default %q", f, d, v)
		}
	}
}

// Every message the Go validator uses must be in the CRD verbatim, and vice versa.
func TestMessagesMatchCRD(t *testing.T) {
	var crdMsgs []string
	walk(loadCRD(t), func(k string, v any) {
		if s, ok := v.(string); ok && k == "message" {
			crdMsgs = append(crdMsgs, s)
		}
	})
	goMsgs := []string{validation.MsgTenantDID, validation.MsgEndpointURL, validation.MsgEndpointChars,
		validation.MsgLocalEndpointURL, validation.MsgLocalEndpointChars, validation.MsgSameEndpoints,
		validation.MsgProtocolURI, validation.MsgPathPrefix, validation.MsgPrefixesNeedProto,
		validation.MsgPollFormat, validation.MsgPollTooSmall, validation.MsgSignerRequired, validation.MsgSignerName}
	for _, f := range validation.IdentityFields {
		goMsgs = append(goMsgs, validation.ImmutableMessage(f))
	}
	slices.Sort(crdMsgs)
	slices.Sort(goMsgs)
	if !slices.Equal(crdMsgs, goMsgs) {
		t.Fatalf("CRD messages and Go messages differ:\nCRD: %q\nGo:  %q", crdMsgs, goMsgs)
	}
}

func loadCRD(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "dwnsync.io_replicationlinks.yaml"))
	if err != nil {
		t.Fatalf("read the generated CRD (run make manifests): %v", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func walk(v any, fn func(k string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			fn(k, val)
			walk(val, fn)
		}
	case []any:
		for _, val := range x {
			walk(val, fn)
		}
	}
}
