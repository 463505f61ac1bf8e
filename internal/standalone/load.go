// Package standalone is `dwnsync run`: the same engine as the operator, fed by YAML files
// holding the Secrets and ReplicationLinks a user would `kubectl apply`, with a small HTTP
// server for /metrics, /healthz and the JSON status `dwnsync status` prints.
package standalone

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
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
	// order is the link's place in the files: of two links with one key, the first one
	// applied keeps it.
	order int
}

// Refused is a ReplicationLink of the files that cannot run, and why. Like the operator, `run`
// runs the other links and lists this one in its status.
type Refused struct {
	Object *v1alpha1.ReplicationLink // as decoded; its spec may be partly empty
	Source string
	// Reason is a Ready condition reason (linkconfig.Reason…, DuplicateLink); Message says
	// which document and field, and the fix.
	Reason  string
	Message string
}

// Name is the refused link's namespace/name.
func (r Refused) Name() string { return linkconfig.Name(r.Object) }

// Files is what the link files hold: the links that run and the links refused.
type Files struct {
	Links   []Link
	Refused []Refused
}

// ReasonDuplicateLink refuses a link whose name, or tenant, endpoint and scope, an earlier
// document already uses (the operator uses the same reason).
const ReasonDuplicateLink = "DuplicateLink"

// LoadError lists the problems that refuse the files as a whole (unreadable files, malformed
// YAML, documents that are not a Secret or a ReplicationLink), one line each, and then the
// links that would be refused too, so one pass shows everything to fix.
type LoadError struct{ Problems []string }

func (e *LoadError) Error() string {
	return fmt.Sprintf("%d problem(s) in the link files:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

type document struct {
	source string
	raw    []byte
}

// secretDoc is a Secret document; err is why it cannot be used (its links are refused).
type secretDoc struct {
	source string
	secret *corev1.Secret
	err    error
}

// loader collects what Load finds in the documents.
type loader struct {
	problems []string // refuse the files
	secrets  map[types.NamespacedName]secretDoc
	links    []Link
	names    map[types.NamespacedName]string // link name → its document
	refused  []Refused
}

// Load reads and validates the files: multi-document YAML of Secrets and ReplicationLinks.
// Links that cannot run are refused one by one, each naming its document, field and fix; an
// error (*LoadError) refuses the files as a whole, for problems that are no link's own.
func Load(files []string, defaults linkconfig.Defaults) (Files, error) {
	if len(files) == 0 {
		return Files{}, errors.New("no link files: pass -f FILE (a YAML of Secrets and ReplicationLinks, e.g. config/samples/)")
	}
	l := &loader{secrets: map[types.NamespacedName]secretDoc{}, names: map[types.NamespacedName]string{}}
	for _, f := range files {
		docs, err := readDocuments(f)
		if err != nil {
			l.problems = append(l.problems, err.Error())
			continue
		}
		for _, d := range docs {
			l.document(d)
		}
	}
	resolved := l.resolve(defaults)
	if len(l.problems) > 0 {
		problems := l.problems
		for _, r := range l.refused {
			problems = append(problems, r.Message)
		}
		return Files{}, &LoadError{Problems: problems}
	}
	sort.Slice(resolved, func(i, j int) bool { return resolved[i].Config.Name < resolved[j].Config.Name })
	return Files{Links: resolved, Refused: l.refused}, nil
}

// document sorts one document into Secrets, links, refusals and problems.
func (l *loader) document(d document) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(d.raw, &tm); err != nil {
		l.problems = append(l.problems, fmt.Sprintf("%s: not valid YAML: %s", d.source, yamlProblem(err)))
		return
	}
	switch {
	case tm.Kind == "Secret" && tm.APIVersion == "v1":
		l.secret(d)
	case tm.Kind == "ReplicationLink" && tm.APIVersion == v1alpha1.GroupVersion.String():
		l.link(d)
	case tm.Kind == "" && len(bytes.TrimSpace(d.raw)) > 0:
		l.problems = append(l.problems, fmt.Sprintf("%s: no kind; expected a v1 Secret or a %s ReplicationLink", d.source, v1alpha1.GroupVersion))
	case tm.Kind != "":
		l.problems = append(l.problems, fmt.Sprintf("%s: %s %s is not used by dwnsync run; expected a v1 Secret or a %s ReplicationLink (remove it, or fix apiVersion/kind)", d.source, tm.APIVersion, tm.Kind, v1alpha1.GroupVersion))
	}
}

// secret records a Secret document. One that does not decode, or is defined twice, refuses
// only the links that use it.
func (l *loader) secret(d document) {
	s, err := decodeSecret(d.raw)
	if s == nil {
		s = &corev1.Secret{ObjectMeta: looseMeta(d.raw)}
	}
	if s.Name == "" {
		l.problems = append(l.problems, fmt.Sprintf("%s (Secret): metadata.name: Required value: every Secret needs a name", d.source))
		return
	}
	nn := nsName(s.Namespace, s.Name)
	if prev, dup := l.secrets[nn]; dup {
		err = fmt.Errorf("defined twice, in %s and %s; keep one", prev.source, d.source)
		d.source = prev.source
	}
	l.secrets[nn] = secretDoc{source: d.source, secret: s, err: err}
}

// link records a ReplicationLink document, or refuses it.
func (l *loader) link(d document) {
	link, errs := validation.DecodeLink(d.raw)
	if link == nil {
		for _, e := range errs {
			l.problems = append(l.problems, fmt.Sprintf("%s (ReplicationLink %s): %v", d.source, looseName(d.raw), e))
		}
		return
	}
	if link.Namespace == "" {
		link.Namespace = "default"
	}
	if link.Name == "" {
		l.problems = append(l.problems, fmt.Sprintf("%s (ReplicationLink): metadata.name: Required value: every ReplicationLink needs a name", d.source))
		return
	}
	what := fmt.Sprintf("%s (ReplicationLink %s)", d.source, linkconfig.Name(link))
	if len(errs) > 0 {
		lines := make([]string, len(errs))
		for i, e := range errs {
			lines[i] = what + ": " + e.Error()
		}
		l.refuse(link, d.source, linkconfig.ReasonInvalidSpec, strings.Join(lines, "; "))
		return
	}
	nn := nsName(link.Namespace, link.Name)
	if prev, dup := l.names[nn]; dup {
		l.refuse(link, d.source, ReasonDuplicateLink, fmt.Sprintf("%s: ReplicationLink %s is also defined in %s; names must be unique", d.source, nn, prev))
		return
	}
	l.names[nn] = d.source
	l.links = append(l.links, Link{Object: link, Source: d.source})
}

func (l *loader) refuse(link *v1alpha1.ReplicationLink, source, reason, message string) {
	l.refused = append(l.refused, Refused{Object: link, Source: source, Reason: reason, Message: message})
}

// resolve pairs each link with its Secret and builds its engine config; a link that cannot be
// built is refused. Two links with one ledger key both resolve: the engine runs the first one
// applied (the first in the files, or the owner its ledger record names) and refuses the other.
func (l *loader) resolve(defaults linkconfig.Defaults) []Link {
	var resolved []Link
	for i, lk := range l.links {
		link := lk.Object
		what := fmt.Sprintf("%s (ReplicationLink %s)", lk.Source, linkconfig.Name(link))
		ref := nsName(link.Namespace, link.Spec.Signer.SecretRef.Name)
		sd, ok := l.secrets[ref]
		if !ok {
			l.refuse(link, lk.Source, linkconfig.ReasonSecretMissing, fmt.Sprintf("%s: spec.signer.secretRef.name: Secret %s is not in the files; add a Secret document with keys %q and %q",
				what, ref, linkconfig.SecretKeyDID, linkconfig.SecretKeyPrivateJWK))
			continue
		}
		signer, grants, err := signerOf(sd)
		if err != nil {
			l.refuse(link, lk.Source, linkconfig.ReasonSecretInvalid, fmt.Sprintf("%s (Secret %s, used by %s): %v", sd.source, ref, linkconfig.Name(link), err))
			continue
		}
		key, err := linkconfig.Key(link)
		if err != nil {
			l.refuse(link, lk.Source, linkconfig.ReasonInvalidSpec, fmt.Sprintf("%s: %v", what, err))
			continue
		}
		cfg, err := linkconfig.Build(link, signer, grants, defaults)
		if err != nil {
			l.refuse(link, lk.Source, reasonOf(err), fmt.Sprintf("%s: %v", what, err))
			continue
		}
		lk.Config, lk.Key, lk.order = cfg, key, i
		resolved = append(resolved, lk)
	}
	return resolved
}

func signerOf(sd secretDoc) (*msg.Signer, msg.EndpointGrants, error) {
	if sd.err != nil {
		return nil, nil, &linkconfig.Error{Reason: linkconfig.ReasonSecretInvalid, Message: sd.err.Error()}
	}
	return linkconfig.Signer(sd.secret)
}

// reasonOf is the condition reason of a linkconfig error.
func reasonOf(err error) string {
	var le *linkconfig.Error
	if errors.As(err, &le) {
		return le.Reason
	}
	return linkconfig.ReasonInvalidSpec
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

// yamlLine is a parser error that names a line: "yaml: line 7: did not find expected key".
var yamlLine = regexp.MustCompile(`yaml: line (\d+): ([^\n'"` + "`" + `]*)$`)

// yamlProblem says where a document's YAML is broken without the parser's words when they may
// quote the document: an invalid map key is printed whole, a mistagged scalar and an unknown
// anchor by value, and in a Secret that value may be a private key.
func yamlProblem(err error) string {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		return "line " + m[1] + ": " + m[2]
	}
	return "a map key that is not a string, a tag that does not fit its value, or an unknown anchor (*name) " +
		"(the parser's message is not shown: it may quote a Secret value); quote plain-text values, or check the document with a YAML linter"
}

func decodeSecret(raw []byte) (*corev1.Secret, error) {
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, errors.New("not valid YAML: " + yamlProblem(err))
	}
	s := &corev1.Secret{}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("cannot decode the Secret (data values must be base64; use stringData for plain text): %v", err)
	}
	if s.Namespace == "" {
		s.Namespace = "default"
	}
	return s, nil
}

func nsName(namespace, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: name}
}

// looseMeta is the namespace (defaulted) and name of a document that may not decode strictly.
func looseMeta(raw []byte) metav1.ObjectMeta {
	var m struct {
		Metadata struct{ Namespace, Name string } `json:"metadata"`
	}
	_ = yaml.Unmarshal(raw, &m)
	ns := m.Metadata.Namespace
	if ns == "" {
		ns = "default"
	}
	return metav1.ObjectMeta{Namespace: ns, Name: m.Metadata.Name}
}

// looseName is namespace/name of a document that may not decode strictly (for messages).
func looseName(raw []byte) string {
	m := looseMeta(raw)
	if m.Name == "" {
		m.Name = "<no name>"
	}
	return m.Namespace + "/" + m.Name
}
