package linkconfig_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dwnsync/dwnsync/api/v1alpha1"
	"github.com/dwnsync/dwnsync/internal/ledger"
	"github.com/dwnsync/dwnsync/internal/linkconfig"
)

// Two spellings of one remote are one link: the same ledger key (so the duplicate check sees
// them), and the engine, which keys the link from the built config, computes that key too.
func TestEndpointSpellingsShareOneKey(t *testing.T) {
	sec, did := secret(t, map[string]string{"grants": `{"https://REMOTE.test/": {"Read": "gr"}, "*": {"Query": "lq"}}`})
	signer, grants, err := linkconfig.Signer(sec)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, ep := range []string{"https://remote.test", "https://remote.test/", "HTTPS://Remote.Test/"} {
		link := &v1alpha1.ReplicationLink{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "l"},
			Spec: v1alpha1.ReplicationLinkSpec{Tenant: did, Endpoint: ep, LocalEndpoint: "HTTP://Local.test:3000/"}}
		link.Default()
		key, err := linkconfig.Key(link)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := linkconfig.Build(link, signer, grants, linkconfig.Defaults{})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.RemoteEndpoint != "https://remote.test" || cfg.LocalEndpoint != "http://local.test:3000" {
			t.Errorf("%s: config endpoints remote %q local %q", ep, cfg.RemoteEndpoint, cfg.LocalEndpoint)
		}
		engineKey, err := ledger.LinkKey(cfg.Tenant, cfg.RemoteEndpoint, cfg.Scope)
		if err != nil || engineKey != key {
			t.Errorf("%s: engine key %q (%v), Key %q", ep, engineKey, err, key)
		}
		if cfg.RemoteSigner.Grants["Read"] != "gr" || cfg.LocalSigner.Grants["Query"] != "lq" {
			t.Errorf("%s: grants remote %v local %v", ep, cfg.RemoteSigner.Grants, cfg.LocalSigner.Grants)
		}
		keys = append(keys, key)
	}
	if keys[0] != keys[1] || keys[1] != keys[2] {
		t.Fatalf("one remote, several keys: %q", keys)
	}

	// The local server spelled differently is still the local server.
	link := &v1alpha1.ReplicationLink{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "l"},
		Spec: v1alpha1.ReplicationLinkSpec{Tenant: did, Endpoint: "https://remote.test"}}
	link.Default()
	if _, err := linkconfig.Build(link, signer, grants, linkconfig.Defaults{LocalEndpoint: "https://Remote.test/"}); err == nil || !strings.Contains(err.Error(), "local server itself") {
		t.Fatalf("local = remote in another spelling: %v", err)
	}
}
