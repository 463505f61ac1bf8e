package baseurl_test

import (
	"testing"

	"github.com/dwnsync/dwnsync/internal/baseurl"
)

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://dwn.example.com", "https://dwn.example.com"},
		{"https://dwn.example.com/", "https://dwn.example.com"},
		{"https://dwn.example.com//", "https://dwn.example.com"},
		{"  https://dwn.example.com/ ", "https://dwn.example.com"},
		{"HTTPS://DWN.Example.COM/", "https://dwn.example.com"},
		{"http://127.0.0.1:3000/", "http://127.0.0.1:3000"},
		{"https://Dwn.Example.com/Tenant/DWN/", "https://dwn.example.com/Tenant/DWN"}, // paths keep their case
		{"https://User:PW@Host.test/", "https://User:PW@host.test"},                   // so do credentials
		{"http://[::1]:3000/", "http://[::1]:3000"},
		{"HTTP://[FE80::1]:3000", "http://[fe80::1]:3000"},
		{"dwn.example.com/", "dwn.example.com"}, // no scheme: only the slash goes (validation refuses it)
		{"", ""},
	} {
		if got := baseurl.Normalize(c.in); got != c.want {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := baseurl.Normalize(c.want); got != c.want {
			t.Errorf("Normalize is not idempotent on %q: %q", c.want, got)
		}
	}
}

func TestSame(t *testing.T) {
	if !baseurl.Same("https://X.test/", "https://x.test") {
		t.Error("two spellings of one host are not the same server")
	}
	if baseurl.Same("https://x.test/A", "https://x.test/a") {
		t.Error("paths differing in case are one server")
	}
}
