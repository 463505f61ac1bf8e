package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestEgressPolicyAddresses(t *testing.T) {
	rules := defaultEgress()
	for _, ip := range []string{"169.254.169.254", "169.254.0.1", "fe80::1", "100.100.100.200", "fd00:ec2::254",
		"::ffff:169.254.169.254", "0.0.0.0", "[fe80::1%eth0]:80", "169.254.169.254:80"} {
		if err := rules.checkAddr(ip); !errors.Is(err, ErrEgressRefused) {
			t.Errorf("%s: %v, want it refused by default", ip, err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "8.8.8.8", "2001:db8::1", "127.0.0.1:443"} {
		if err := rules.checkAddr(ip); err != nil {
			t.Errorf("%s: %v, want it allowed by default", ip, err)
		}
	}
	if _, err := rules.checkHost("metadata.google.internal"); !errors.Is(err, ErrEgressRefused) {
		t.Errorf("metadata.google.internal: %v, want refused", err)
	}

	custom, err := EgressPolicy{Allow: []string{"169.254.10.0/24", "link.local.example"}, Deny: []string{"10.0.0.0/8", ".corp.example", "192.168.1.7"}}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{"169.254.10.9": true, "169.254.169.254": false, "10.9.9.9": false, "192.168.1.7": false, "192.168.1.8": true}
	for ip, want := range cases {
		if got := custom.checkAddr(ip) == nil; got != want {
			t.Errorf("custom policy, %s allowed=%v, want %v", ip, got, want)
		}
	}
	if _, err := custom.checkHost("db.corp.example"); !errors.Is(err, ErrEgressRefused) {
		t.Errorf("a name under a denied .domain: %v", err)
	}
	if ok, err := custom.checkHost("link.local.example"); !ok || err != nil {
		t.Errorf("an allowed name must skip the address check: %v %v", ok, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "http://x", "a b"} {
		_, err := EgressPolicy{Deny: []string{bad}}.Compile()
		if err == nil || !strings.Contains(err.Error(), "egress deny entry") || !strings.Contains(err.Error(), bad) {
			t.Errorf("bad entry %q: %v, want an error naming it", bad, err)
		}
	}
}
