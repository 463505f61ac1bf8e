package validation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
)

// DecodeLink reads one ReplicationLink document (YAML or JSON) the way the API server admits
// it: schema checks, defaults, then the CEL rules. It returns the link (nil when it could not be
// decoded at all) and every problem found, each naming its field.
func DecodeLink(doc []byte) (*v1alpha1.ReplicationLink, field.ErrorList) {
	raw, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, field.ErrorList{field.Invalid(field.NewPath("document"), "", "not valid YAML: "+err.Error())}
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, field.ErrorList{field.Invalid(field.NewPath("document"), "", "must be a YAML mapping with apiVersion, kind, metadata and spec")}
	}

	// pollInterval is text on the wire and a Duration in Go: check the text as the CRD does,
	// then drop a bad value so the typed decode can report everything else.
	var errs field.ErrorList
	if spec, ok := obj["spec"].(map[string]any); ok {
		if v, present := spec["pollInterval"]; present {
			p := specPath.Child("pollInterval")
			if text, isString := v.(string); !isString {
				errs = append(errs, field.TypeInvalid(p, v, "must be a duration string like 2m"))
				delete(spec, "pollInterval")
			} else if perrs := ValidatePollInterval(p, text); len(perrs) > 0 {
				errs = append(errs, perrs...)
				delete(spec, "pollInterval")
			}
		}
	}
	raw, _ = json.Marshal(obj)

	link := &v1alpha1.ReplicationLink{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(link); err != nil {
		return nil, append(errs, decodeError(err, obj))
	}
	link.Default()
	return link, append(errs, ValidateLink(link)...)
}

// decodeError turns encoding/json's complaint into a field error.
func decodeError(err error, obj map[string]any) *field.Error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return field.TypeInvalid(pathOf(typeErr.Field), typeErr.Value, "must be of type "+typeErr.Type.String())
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		p := field.NewPath("document")
		if where := findKey(obj, name, nil); where != nil {
			p = field.NewPath(where[0], where[1:]...)
		}
		return field.Invalid(p, name, fmt.Sprintf("unknown field %q: check its spelling against config/samples", name))
	}
	return field.Invalid(field.NewPath("document"), "", err.Error())
}

// findKey returns the path of the first mapping key called name (encoding/json does not say
// where an unknown field was).
func findKey(v any, name string, at []string) []string {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	if _, ok := m[name]; ok {
		return append(at, name)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if p := findKey(m[k], name, append(append([]string(nil), at...), k)); p != nil {
			return p
		}
	}
	return nil
}

func pathOf(dotted string) *field.Path {
	parts := strings.Split(dotted, ".")
	return field.NewPath(parts[0], parts[1:]...)
}
