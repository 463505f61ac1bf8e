package linkconfig

import (
	"github.com/dwnsync/dwnsync/internal/baseurl"
	"github.com/dwnsync/dwnsync/internal/dwn/msg"
)

// normalizedGrants re-keys a Secret's grants by baseurl.Normalize, so a grant written for
// "https://DWN.example.com/" applies to the link whose endpoint is https://dwn.example.com.
func normalizedGrants(g msg.EndpointGrants) msg.EndpointGrants {
	if g == nil {
		return nil
	}
	out := make(msg.EndpointGrants, len(g))
	// Keys already in the normal spelling win over variants of it, whatever the map order.
	for _, exact := range []bool{false, true} {
		for ep, byMethod := range g {
			n := ep
			if ep != "*" {
				n = baseurl.Normalize(ep)
			}
			if (n == ep) == exact {
				out[n] = byMethod
			}
		}
	}
	return out
}
