package standalone_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
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
	s, k, err := dwn.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	return s.DID, string(k)
}

func secretDoc(name, did, jwk string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name + "\nstringData:\n  did: " + did + "\n  privateJwk: '" + jwk + "'\n"
}

func linkDoc(name, tenant, endpoint, local, secret, extra string) string {
	return "apiVersion: dwnsync.io/v1alpha1\nkind: ReplicationLink\nmetadata:\n  name: " + name +
		"\nspec:\n  tenant: " + tenant + "\n  endpoint: " + endpoint + "\n  localEndpoint: " + local +
		"\n  signer:\n    secretRef:\n      name: " + secret + "\n" + extra
}

// The shipped sample loads: the same documents a user would kubectl apply.
func TestLoadSample(t *testing.T) {
	links, err := standalone.Load([]string{filepath.Join("..", "..", "config", "samples", "standalone-links.yaml")}, linkconfig.Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Config.Name != "default/alice" || links[0].Config.LocalEndpoint != "http://127.0.0.1:3000" ||
		links[0].Config.RemoteSigner == nil || links[0].Key == "" {
		t.Fatalf("links %+v", links)
	}
	// The in-cluster sample needs the operator's default local endpoint, which `run` has via --local-endpoint.
	if _, err := standalone.Load([]string{filepath.Join("..", "..", "config", "samples", "dwnsync_v1alpha1_replicationlink.yaml")},
		linkconfig.Defaults{LocalEndpoint: "http://127.0.0.1:3000"}); err != nil {
		t.Fatal(err)
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

func TestLoadRefusesDuplicates(t *testing.T) {
	did, jwk := identity(t)
	path := write(t, strings.Join([]string{
		secretDoc("s", did, jwk),
		linkDoc("one", did, "http://127.0.0.1:3001", "http://127.0.0.1:3000", "s", ""),
		linkDoc("two", did, "http://127.0.0.1:3001", "http://127.0.0.1:3000", "s", ""),
		linkDoc("one", did, "http://127.0.0.1:3009", "http://127.0.0.1:3000", "s", ""),
	}, "---\n"))
	_, err := standalone.Load([]string{path}, linkconfig.Defaults{})
	if err == nil || !strings.Contains(err.Error(), "replicates the same tenant, endpoint and scope as "+path+" document 2") ||
		!strings.Contains(err.Error(), "ReplicationLink default/one is also defined in "+path+" document 2") {
		t.Fatalf("duplicates not reported: %v", err)
	}
}

func TestLoadNeedsALocalEndpoint(t *testing.T) {
	did, jwk := identity(t)
	path := write(t, secretDoc("s", did, jwk)+"---\n"+strings.Replace(linkDoc("l", did, "http://127.0.0.1:3001", "x", "s", ""), "  localEndpoint: x\n", "", 1))
	_, err := standalone.Load([]string{path}, linkconfig.Defaults{})
	if err == nil || !strings.Contains(err.Error(), "--local-endpoint") {
		t.Fatalf("missing local endpoint not explained: %v", err)
	}
}
