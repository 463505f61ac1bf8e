package wire

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dwnsync/dwnsync/internal/dwn"
)

// RedactURL is endpoint as it may be printed: a password in it (https://user:pass@host) is
// replaced by "xxxxx". Every error and log line names an endpoint through this.
func RedactURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "(unparsable endpoint URL)" // the text may hold credentials: never echo it
	}
	return u.Redacted()
}

// errRedirectRefused ends a call whose server answered with a redirect.
var errRedirectRefused = errors.New("redirects are refused")

// RefuseRedirects returns hc (a shallow copy when it must change) refusing every redirect. A
// redirect would re-send a signed message to a place nobody configured (a 307 keeps the POST
// body), and could point the operator at an internal service.
func RefuseRedirects(hc *http.Client, shown string) *http.Client {
	c := *hc
	c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		return fmt.Errorf("endpoint %s answered with a redirect to host %q: %w (configure the final URL instead)",
			shown, dwn.RemoteText(clip(req.URL.Host, 100)), errRedirectRefused)
	}
	return &c
}
