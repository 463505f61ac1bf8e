package dialect

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dwnsync/dwnsync/internal/dwn"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
)

// Every test here talks to 127.0.0.1 only. The metadata and link-local rows test the policy
// function itself; dial-time enforcement is shown by a policy that denies loopback.

const fakeSecret = "AccessKeyId=AKIAFAKEFAKEFAKE SecretAccessKey=wJalrFAKEFAKE"

// fakeMetadata is a 127.0.0.1 stand-in for a cloud metadata service, counting its visitors.
func fakeMetadata(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(fakeSecret))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// openTestTenant opens endpoint pinned to web5 (no /info probe, no retries) with a throwaway
// signer.
func openTestTenant(t *testing.T, endpoint string, opts Options) dwn.Tenant {
	t.Helper()
	opts.Dialect = dwn.DialectWeb5
	opts.Retries = -1
	return openPinned(t, endpoint, opts)
}

// openEnbox opens endpoint pinned to enbox, whose subscriptions ride the WebSocket.
func openEnbox(t *testing.T, endpoint string, opts Options) dwn.Tenant {
	t.Helper()
	opts.Dialect = dwn.DialectEnbox
	return openPinned(t, endpoint, opts)
}

// openPinned opens endpoint in opts.Dialect and returns a tenant of a throwaway signer.
func openPinned(t *testing.T, endpoint string, opts Options) dwn.Tenant {
	t.Helper()
	c, err := Open(context.Background(), endpoint, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	signer, _, err := msg.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	return c.Tenant(signer.DID, signer)
}

func TestRedirectsRefused(t *testing.T) {
	meta, hits := fakeMetadata(t)
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusFound, http.StatusPermanentRedirect} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, meta.URL+"/latest/meta-data/iam/security-credentials/role", code)
		}))
		_, err := openTestTenant(t, srv.URL, Options{}).ListCIDs(context.Background(), dwn.Scope{})
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), "redirects are refused") || dwn.IsTransient(err) {
			t.Errorf("HTTP %d: %v, want a Permanent error saying redirects are refused", code, err)
		}
		if err != nil && strings.Contains(err.Error(), "AccessKeyId") {
			t.Errorf("HTTP %d: the redirect target's body reached the error: %v", code, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the redirect target was requested %d times; the signed message must never leave for it", n)
	}
}

func TestNonDWNBodyNeverEchoed(t *testing.T) {
	for _, status := range []int{200, 400, 500, 503} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			_, _ = w.Write([]byte("<html>" + fakeSecret + "</html>"))
		}))
		tn := openTestTenant(t, srv.URL, Options{})
		_, err := tn.ListCIDs(context.Background(), dwn.Scope{})
		srv.Close()
		if err == nil {
			t.Fatalf("HTTP %d html: no error", status)
		}
		msg := err.Error()
		if strings.Contains(msg, "AccessKeyId") || strings.Contains(msg, "html>") {
			t.Errorf("HTTP %d: body echoed: %s", status, msg)
		}
		if !strings.Contains(msg, "non-DWN reply") || !strings.Contains(msg, "content-type text/html") || !strings.Contains(msg, "bytes") {
			t.Errorf("HTTP %d: %s, want it described by status, content type and size", status, msg)
		}
	}
}

func TestEndpointCredentialsRedacted(t *testing.T) {
	const password = "s3cretpassw0rd"
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close() // connection refused from now on
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(502)
	}))
	defer bad.Close()
	withPass := func(u string) string { return strings.Replace(u, "http://", "http://user:"+password+"@", 1) }
	var errs []error
	for _, u := range []string{refusedURL, bad.URL} {
		tn := openTestTenant(t, withPass(u), Options{})
		if strings.Contains(tn.Endpoint(), password) {
			t.Errorf("Tenant.Endpoint() shows the password: %s", tn.Endpoint())
		}
		_, err := tn.ListCIDs(context.Background(), dwn.Scope{})
		errs = append(errs, err)
		_, err = tn.Read(context.Background(), "bafyreiaaaa")
		errs = append(errs, err)
		sub, err := tn.Subscribe(context.Background(), dwn.Scope{}, nil)
		if sub != nil {
			_ = sub.Close()
		}
		errs = append(errs, err)
	}
	_, err := Open(context.Background(), "ftp://user:"+password+"@127.0.0.1/", Options{})
	errs = append(errs, err)
	_, err = wire.NewMux("gopher://user:"+password+"@127.0.0.1/", wire.MuxOptions{})
	errs = append(errs, err)
	for i, err := range errs {
		if err != nil && strings.Contains(err.Error(), password) {
			t.Errorf("error %d shows the endpoint's password: %v", i, err)
		}
	}
	if errs[0] == nil || errs[3] == nil {
		t.Fatalf("calls to a dead and a failing endpoint succeeded: %v", errs)
	}
}

// Enforcement happens when the socket is dialed: a policy denying loopback refuses a 127.0.0.1
// server by IP and by a name that resolves to it, over HTTP and WebSocket, and the server sees
// nothing.
func TestEgressEnforcedAtDial(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	byName := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	policies := map[string]wire.EgressPolicy{
		"cidr":    {Deny: []string{"127.0.0.0/8", "::1/128"}},
		"host":    {Deny: []string{"localhost"}},
		"address": {Deny: []string{"127.0.0.1", "::1"}},
	}
	for name, policy := range policies {
		for _, u := range []string{srv.URL, byName} {
			if name == "host" && u == srv.URL {
				continue // a host name entry does not cover the bare IP
			}
			tn := openTestTenant(t, u, Options{Egress: policy})
			_, err := tn.ListCIDs(context.Background(), dwn.Scope{})
			if !errors.Is(err, wire.ErrEgressRefused) || dwn.IsTransient(err) {
				t.Errorf("%s policy, %s: %v, want a Permanent egress refusal", name, u, err)
			}
			_, err = tn.Subscribe(context.Background(), dwn.Scope{}, nil)
			if err == nil {
				t.Errorf("%s policy, %s: a subscription got through", name, u)
			}
			ws := openEnbox(t, u, Options{Egress: policy})
			_, err = ws.Subscribe(context.Background(), dwn.Scope{}, nil)
			if err == nil || !strings.Contains(err.Error(), "egress policy") {
				t.Errorf("%s policy, %s: WebSocket subscribe: %v, want an egress refusal", name, u, err)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the denied server received %d requests", n)
	}
	allowed := openTestTenant(t, srv.URL, Options{Egress: wire.EgressPolicy{Deny: []string{"127.0.0.0/8"}, Allow: []string{"127.0.0.1"}}})
	if _, err := allowed.ListCIDs(context.Background(), dwn.Scope{}); errors.Is(err, wire.ErrEgressRefused) {
		t.Fatalf("an allowed address was refused: %v", err)
	}
}
