package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// Egress policy: which addresses a Client may connect to. Endpoints come from users' YAML, and
// a DWN server's answers are not trusted, so the check runs at dial time on the resolved IP (a
// name that resolves to a metadata address, or a DNS answer that changes, is caught too), not
// only on the URL. Loopback and private ranges stay allowed: self-hosters and tests use them.

// defaultEgressDeny is refused unless an Allow entry says otherwise: link-local ranges (every
// cloud's instance metadata service lives at 169.254.169.254) and the metadata addresses
// outside them.
var defaultEgressDeny = []string{
	"169.254.0.0/16",  // IPv4 link-local: AWS, GCP, Azure, OpenStack, DigitalOcean metadata
	"fe80::/10",       // IPv6 link-local
	"100.100.100.200", // Alibaba Cloud metadata
	"fd00:ec2::254",   // AWS metadata over IPv6
	"0.0.0.0/32",      // "this host": reaches local services without looking like loopback
	"::/128",          // the same in IPv6
	"metadata.google.internal",
}

// ErrEgressRefused marks a dial the policy refused (errors.Is finds it in a call's error).
var ErrEgressRefused = errors.New("address refused by the egress policy")

// EgressPolicy lists what a Client may (Allow) and may not (Deny) connect to, beyond the
// defaults (link-local and cloud metadata addresses are refused; everything else, loopback
// and private ranges included, is allowed). Entries are CIDRs ("10.0.0.0/8"), single IPs, or
// host names ("metadata.internal", or ".corp.example" for every name under it).
//
// A name in Deny is refused before resolution; an address in Deny or in the defaults is refused
// after it. Allow wins over both: an allowed name skips the address check, an allowed CIDR
// re-opens part of a denied range. Proxies (HTTP_PROXY) are checked, not what they reach.
type EgressPolicy struct {
	Allow []string
	Deny  []string
}

// Validate reports the first entry that is neither a CIDR, an IP nor a host name, naming it.
func (p EgressPolicy) Validate() error {
	_, err := p.Compile()
	return err
}

// SplitEgressList reads a flag value: entries separated by commas or spaces.
func SplitEgressList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// EgressRules is a parsed EgressPolicy.
type EgressRules struct {
	allowNets, denyNets   []netip.Prefix
	allowHosts, denyHosts []string
}

// compile parses the policy (defaults included); an entry that is neither CIDR, IP nor host
// name is an error naming it.
func (p EgressPolicy) Compile() (*EgressRules, error) {
	r := &EgressRules{}
	if err := r.add(defaultEgressDeny, &r.denyNets, &r.denyHosts, "default"); err != nil {
		return nil, err
	}
	if err := r.add(p.Deny, &r.denyNets, &r.denyHosts, "deny"); err != nil {
		return nil, err
	}
	if err := r.add(p.Allow, &r.allowNets, &r.allowHosts, "allow"); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *EgressRules) add(entries []string, nets *[]netip.Prefix, hosts *[]string, list string) error {
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
			continue
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return fmt.Errorf("egress %s entry %q is not a CIDR: %v", list, e, err)
			}
			*nets = append(*nets, p.Masked())
		default:
			if a, err := netip.ParseAddr(e); err == nil {
				*nets = append(*nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			if strings.ContainsAny(e, " :@/") {
				return fmt.Errorf("egress %s entry %q is neither a CIDR, an IP nor a host name", list, e)
			}
			*hosts = append(*hosts, strings.TrimSuffix(e, "."))
		}
	}
	return nil
}

// hostMatch reports whether host is one of names (".example" entries match every name under).
func hostMatch(host string, names []string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, n := range names {
		if host == n || strings.HasPrefix(n, ".") && strings.HasSuffix(host, n) {
			return true
		}
	}
	return false
}

func netMatch(a netip.Addr, nets []netip.Prefix) bool {
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// checkHost refuses a denied host name (before any resolution); allowed reports whether the
// name skips the address check.
func (r *EgressRules) checkHost(host string) (allowed bool, err error) {
	if hostMatch(host, r.allowHosts) {
		return true, nil
	}
	if hostMatch(host, r.denyHosts) {
		return false, fmt.Errorf("%w: host %q is denied", ErrEgressRefused, host)
	}
	return false, nil
}

// checkAddr refuses a resolved address ("ip:port" or an IP) that is denied and not allowed.
func (r *EgressRules) checkAddr(address string) error {
	host := address
	if h, _, err := net.SplitHostPort(address); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrEgressRefused, host)
	}
	a = a.Unmap().WithZone("")
	if netMatch(a, r.allowNets) || !netMatch(a, r.denyNets) {
		return nil
	}
	return fmt.Errorf("%w: %s is link-local, cloud metadata or denied; add it to the egress allow list if it really is a DWN server", ErrEgressRefused, a)
}

// dialContext wraps d so that every connection passes the policy: the name before resolution,
// each resolved IP in the dialer's Control hook (after DNS, before the SYN leaves).
func (r *EgressRules) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		allowed, err := r.checkHost(host)
		if err != nil {
			return nil, err
		}
		dd := *d
		if !allowed {
			prev := d.Control
			dd.Control = func(network, address string, c syscall.RawConn) error {
				if err := r.checkAddr(address); err != nil {
					return err
				}
				if prev != nil {
					return prev(network, address, c)
				}
				return nil
			}
		}
		return dd.DialContext(ctx, network, addr)
	}
}

// defaultEgress is the policy with nothing added (the defaults always compile).
func defaultEgress() *EgressRules {
	r, err := EgressPolicy{}.Compile()
	if err != nil {
		panic(err)
	}
	return r
}
