package standalone_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dwnmsg "github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
	"github.com/dwnsync/dwnsync/internal/linkconfig/secrettest"
	"github.com/dwnsync/dwnsync/internal/standalone"
)

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "links.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func identity(t *testing.T) (did, jwk string) {
	t.Helper()
	s, k, err := dwnmsg.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	return s.DID, string(k)
}

func secretDoc(name, did, jwk string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name + "\nstringData:\n  did: '" + did + "'\n  privateJwk: '" + jwk + "'\n"
}

func linkDoc(name, tenant, endpoint, local, secret, extra string) string {
	return "apiVersion: dwnsync.io/v1alpha1\nkind: ReplicationLink\nmetadata:\n  name: " + name +
		"\nspec:\n  tenant: " + tenant + "\n  endpoint: " + endpoint + "\n  localEndpoint: " + local +
		"\n  signer:\n    secretRef:\n      name: " + secret + "\n" + extra
}

// The shipped sample loads: the same documents a user would kubectl apply.
func TestLoadSample(t *testing.T) {
	files, err := standalone.Load([]string{filepath.Join("..", "..", "config", "samples", "standalone-links.yaml")}, linkconfig.Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	links := files.Links
	if len(files.Refused) != 0 || len(links) != 1 || links[0].Config.Name != "default/alice" || links[0].Config.LocalEndpoint != "http://127.0.0.1:3000" ||
		links[0].Config.RemoteSigner == nil || links[0].Key == "" {
		t.Fatalf("links %+v", links)
	}
	// The in-cluster sample needs the operator's default local endpoint, which `run` has via --local-endpoint.
	if f, err := standalone.Load([]string{filepath.Join("..", "..", "config", "samples", "dwnsync_v1alpha1_replicationlink.yaml")},
		linkconfig.Defaults{LocalEndpoint: "http://127.0.0.1:3000"}); err != nil || len(f.Links) != 1 {
		t.Fatalf("%d links, error %v", len(f.Links), err)
	}
}

// Every problem is reported at once, each naming the file and document, the field and the fix.
func TestLoadReportsEveryProblemWithItsDocument(t *testing.T) {
	did, jwk := identity(t)
	content := strings.Join([]string{
		secretDoc("good", did, jwk),
		linkDoc("ftp", did, "ftp://remote.test", "http://127.0.0.1:3000", "good", ""),
		linkDoc("no-secret", did, "http://127.0.0.1:3001", "http://127.0.0.1:3000", "missing", ""),
		linkDoc("fast", did, "http://127.0.0.1:3002", "http://127.0.0.1:3000", "good", "  pollInterval: 1s\n"),
		secretDoc("broken", did, `{"kty":"OKP"}`),
		linkDoc("uses-broken", did, "http://127.0.0.1:3003", "http://127.0.0.1:3000", "broken", ""),
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
		linkDoc("typo", did, "http://127.0.0.1:3004", "http://127.0.0.1:3000", "good", "  directoin: pull\n"),
	}, "---\n")
	path := write(t, content)
	_, err := standalone.Load([]string{path}, linkconfig.Defaults{})
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{
		path + " document 2 (ReplicationLink default/ftp): spec.endpoint",
		"must be an absolute http:// or https:// URL",
		path + " document 3 (ReplicationLink default/no-secret): spec.signer.secretRef.name: Secret default/missing is not in the files",
		path + " document 4 (ReplicationLink default/fast): spec.pollInterval",
		"at least 10s",
		path + ` document 5 (Secret default/broken, used by default/uses-broken): signer Secret default/broken key "privateJwk"`,
		path + " document 7: v1 ConfigMap is not used by dwnsync run",
		path + ` document 8 (ReplicationLink default/typo): spec.directoin: Invalid value: "directoin": unknown field "directoin": check its spelling`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q", want)
		}
	}
}

// refusal returns the message of the refused link name with reason, failing when there is none.
func refusal(t *testing.T, files standalone.Files, name, reason string) string {
	t.Helper()
	for _, r := range files.Refused {
		if r.Name() == name && r.Reason == reason {
			return r.Message
		}
	}
	t.Fatalf("%s not refused with %s; refused: %+v", name, reason, files.Refused)
	return ""
}

// Of two links with one name, the first in the files is loaded and the later one is refused,
// naming the first. Two links with one tenant, endpoint and scope both load: the engine decides
// which runs the key (TestRunRefusesASecondLinkOfOneKey).
func TestLoadRefusesDuplicateNames(t *testing.T) {
	did, jwk := identity(t)
	path := write(t, strings.Join([]string{
		secretDoc("s", did, jwk),
		linkDoc("one", did, "http://127.0.0.1:3001", "http://127.0.0.1:3000", "s", ""),
		linkDoc("two", did, "http://127.0.0.1:3001", "http://127.0.0.1:3000", "s", ""),
		linkDoc("one", did, "http://127.0.0.1:3009", "http://127.0.0.1:3000", "s", ""),
	}, "---\n"))
	files, err := standalone.Load([]string{path}, linkconfig.Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	if len(files.Links) != 2 || files.Links[0].Source != path+" document 2" || files.Links[1].Source != path+" document 3" || files.Links[0].Key != files.Links[1].Key {
		t.Fatalf("links %+v", files.Links)
	}
	if msg := refusal(t, files, "default/one", "DuplicateLink"); !strings.Contains(msg, "ReplicationLink default/one is also defined in "+path+" document 2") {
		t.Errorf("duplicate name: %s", msg)
	}
}

func TestLoadNeedsALocalEndpoint(t *testing.T) {
	did, jwk := identity(t)
	path := write(t, secretDoc("s", did, jwk)+"---\n"+strings.Replace(linkDoc("l", did, "http://127.0.0.1:3001", "x", "s", ""), "  localEndpoint: x\n", "", 1))
	files, err := standalone.Load([]string{path}, linkconfig.Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	if msg := refusal(t, files, "default/l", "LocalEndpointMissing"); !strings.Contains(msg, "--local-endpoint") {
		t.Fatalf("missing local endpoint not explained: %s", msg)
	}
}

// One bad Secret among good links refuses only the links that use it; each refusal names the
// document, the Secret and the key, and holds no piece of the Secret's values.
func TestLoadRefusesOnlyTheBadLink(t *testing.T) {
	did, jwk := identity(t)
	other, otherJWK := identity(t)
	path := write(t, strings.Join([]string{
		secretDoc("good", did, jwk),
		linkDoc("a", did, "http://127.0.0.1:3001", "http://127.0.0.1:3000", "good", ""),
		secretDoc("swapped", otherJWK, other),
		linkDoc("b", other, "http://127.0.0.1:3001", "http://127.0.0.1:3000", "swapped", ""),
		linkDoc("c", did, "http://127.0.0.1:3002", "http://127.0.0.1:3000", "missing", ""),
		linkDoc("d", did, "ftp://127.0.0.1:3003", "http://127.0.0.1:3000", "good", ""),
	}, "---\n"))
	files, err := standalone.Load([]string{path}, linkconfig.Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	if len(files.Links) != 1 || files.Links[0].Config.Name != "default/a" {
		t.Fatalf("links %+v", files.Links)
	}
	msg := refusal(t, files, "default/b", "SignerSecretInvalid")
	if !strings.Contains(msg, path+` document 3 (Secret default/swapped, used by default/b): signer Secret default/swapped key "did": does not look like a DID (it looks like a JSON object; did you swap did and privateJwk?)`) {
		t.Errorf("swapped Secret: %s", msg)
	}
	if piece := secrettest.Leak(msg, secrettest.PrivateParts(t, []byte(otherJWK))...); piece != "" {
		t.Errorf("refusal holds %q, a piece of the Secret", piece)
	}
	refusal(t, files, "default/c", "SignerSecretMissing")
	if msg := refusal(t, files, "default/d", "InvalidSpec"); !strings.Contains(msg, path+" document 6 (ReplicationLink default/d): spec.endpoint") {
		t.Errorf("bad endpoint: %s", msg)
	}
}

// A Secret document whose YAML does not parse is reported by file, document and line, never
// with the parser's words that quote a value: a private JWK used as a map key, a value under a
// tag it does not fit, a value taken for an anchor name.
func TestBadYAMLInASecretQuotesNoValue(t *testing.T) {
	did, jwk := identity(t)
	parts := secrettest.PrivateParts(t, []byte(jwk))
	head := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  did: '" + did + "'\n"
	var d struct{ D string }
	if err := json.Unmarshal([]byte(jwk), &d); err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{
		"the JWK as a map key":    head + "  ? " + jwk + "\n  : x\n",
		"a tag that does not fit": head + "  privateJwk: !!int " + d.D + "\n",
		"an anchor":               head + "  privateJwk: *" + d.D + "\n",
	}
	for what, doc := range docs {
		path := write(t, doc)
		_, err := standalone.Load([]string{path}, linkconfig.Defaults{})
		if err == nil {
			t.Fatalf("%s: loaded", what)
		}
		if piece := secrettest.Leak(err.Error(), parts...); piece != "" {
			t.Errorf("%s: the error shows %q of the private key: %v", what, piece, err)
		}
		if !strings.Contains(err.Error(), path+" document 1: not valid YAML") {
			t.Errorf("%s: the error does not name the document: %v", what, err)
		}
	}
}
