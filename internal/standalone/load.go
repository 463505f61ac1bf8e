// Package standalone is `dwnsync run`: the same engine as the operator, fed by YAML files
// holding the Secrets and ReplicationLinks a user would `kubectl apply`, with a small HTTP
// server for /metrics, /healthz and the JSON status `dwnsync status` prints.
package standalone

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/syncer"
	"github.com/dwnsync/dwnsync/internal/validation"
)

// Link is one validated, resolved link of the files.
type Link struct {
	Object *v1alpha1.ReplicationLink
	Config syncer.LinkConfig
	Key    string
	Source string // "file.yaml document 2"
	// Inputs fingerprints what the engine was given (spec and signer), to spot changes on reload.
	Inputs string
}

// LoadError lists every problem found in the files, one line each.
type LoadError struct{ Problems []string }

func (e *LoadError) Error() string {
	return fmt.Sprintf("%d problem(s) in the link files:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

type document struct {
	source string
	raw    []byte
}

type secretDoc struct {
	source string
	secret *corev1.Secret
}

// Load reads and validates the files: multi-document YAML of Secrets and ReplicationLinks.
// Every problem names its document, field and fix; nothing is returned unless all are valid.
func Load(files []string, defaults linkconfig.Defaults) ([]Link, error) {
	if len(files) == 0 {
		return nil, errors.New("no link files: pass -f FILE (a YAML of Secrets and ReplicationLinks, e.g. config/samples/)")
	}
	var docs []document
	var problems []string
	for _, f := range files {
		d, err := readDocuments(f)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		docs = append(docs, d...)
	}

	secrets := map[types.NamespacedName]secretDoc{}
	var links []Link
	linkNames := map[types.NamespacedName]string{}
	for _, d := range docs {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(d.raw, &tm); err != nil {
			problems = append(problems, fmt.Sprintf("%s: not valid YAML: %v", d.source, err))
			continue
		}
		switch {
		case tm.Kind == "Secret" && tm.APIVersion == "v1":
			s, err := decodeSecret(d.raw)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s (Secret): %v", d.source, err))
				continue
			}
			nn := nsName(s.Namespace, s.Name)
			if prev, dup := secrets[nn]; dup {
				problems = append(problems, fmt.Sprintf("%s (Secret %s): also defined in %s; keep one", d.source, nn, prev.source))
				continue
			}
			secrets[nn] = secretDoc{source: d.source, secret: s}
		case tm.Kind == "ReplicationLink" && tm.APIVersion == v1alpha1.GroupVersion.String():
			link, errs := validation.DecodeLink(d.raw)
			if link != nil && link.Namespace == "" {
				link.Namespace = "default"
			}
			what := fmt.Sprintf("%s (ReplicationLink %s)", d.source, looseName(d.raw))
			if link != nil && link.Name == "" {
				errs = append(errs, field.Required(field.NewPath("metadata", "name"), "every ReplicationLink needs a name"))
			}
			if len(errs) > 0 {
				for _, e := range errs {
					problems = append(problems, what+": "+e.Error())
				}
				continue
			}
			nn := nsName(link.Namespace, link.Name)
			if prev, dup := linkNames[nn]; dup {
				problems = append(problems, fmt.Sprintf("%s: ReplicationLink %s is also defined in %s; names must be unique", d.source, nn, prev))
				continue
			}
			linkNames[nn] = d.source
			links = append(links, Link{Object: link, Source: d.source})
		case tm.Kind == "" && len(bytes.TrimSpace(d.raw)) > 0:
			problems = append(problems, fmt.Sprintf("%s: no kind; expected a v1 Secret or a %s ReplicationLink", d.source, v1alpha1.GroupVersion))
		case tm.Kind != "":
			problems = append(problems, fmt.Sprintf("%s: %s %s is not used by dwnsync run; expected a v1 Secret or a %s ReplicationLink (remove it, or fix apiVersion/kind)", d.source, tm.APIVersion, tm.Kind, v1alpha1.GroupVersion))
		}
	}

	keys := map[string]string{}
	var resolved []Link
	for _, l := range links {
		link := l.Object
		what := fmt.Sprintf("%s (ReplicationLink %s/%s)", l.Source, link.Namespace, link.Name)
		ref := nsName(link.Namespace, link.Spec.Signer.SecretRef.Name)
		sd, ok := secrets[ref]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: spec.signer.secretRef.name: Secret %s is not in the files; add a Secret document with keys %q and %q",
				what, ref, linkconfig.SecretKeyDID, linkconfig.SecretKeyPrivateJWK))
			continue
		}
		signer, grants, err := linkconfig.Signer(sd.secret)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s (Secret %s, used by %s/%s): %v", sd.source, ref, link.Namespace, link.Name, err))
			continue
		}
		key, err := linkconfig.Key(link)
		if err == nil {
			if other, dup := keys[key]; dup {
				err = fmt.Errorf("replicates the same tenant, endpoint and scope as %s; keep one of the two", other)
			}
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", what, err))
			continue
		}
		keys[key] = what
		cfg, err := linkconfig.Build(link, signer, grants, defaults)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", what, err))
			continue
		}
		l.Config, l.Key = cfg, key
		l.Inputs = fingerprint(link.Spec, sd.secret)
		resolved = append(resolved, l)
	}
	if len(problems) > 0 {
		return nil, &LoadError{Problems: problems}
	}
	sort.Slice(resolved, func(i, j int) bool { return resolved[i].Config.Name < resolved[j].Config.Name })
	return resolved, nil
}

func readDocuments(path string) ([]document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var docs []document
	for n := 1; ; n++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s document %d: %w", path, n, err)
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			n--
			continue
		}
		docs = append(docs, document{source: fmt.Sprintf("%s document %d", path, n), raw: raw})
	}
}

// stripComments drops comment-only lines, so a document of comments counts as empty.
func stripComments(raw []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func decodeSecret(raw []byte) (*corev1.Secret, error) {
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, err
	}
	s := &corev1.Secret{}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("cannot decode (data values must be base64; use stringData for plain text): %v", err)
	}
	if s.Name == "" {
		return nil, errors.New("metadata.name: Required value: every Secret needs a name")
	}
	if s.Namespace == "" {
		s.Namespace = "default"
	}
	return s, nil
}

// fingerprint identifies a link's inputs without keeping key material around.
func fingerprint(spec v1alpha1.ReplicationLinkSpec, secret *corev1.Secret) string {
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(spec)
	for _, k := range []string{linkconfig.SecretKeyDID, linkconfig.SecretKeyPrivateJWK, linkconfig.SecretKeyGrants} {
		v, _ := linkconfig.SecretValue(secret, k)
		h.Write([]byte(k))
		h.Write(v)
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func nsName(namespace, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: name}
}

// looseName is namespace/name of a document that may not decode strictly (for messages).
func looseName(raw []byte) string {
	var m struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	_ = yaml.Unmarshal(raw, &m)
	ns := m.Metadata.Namespace
	if ns == "" {
		ns = "default"
	}
	name := m.Metadata.Name
	if name == "" {
		name = "<no name>"
	}
	return ns + "/" + name
}
