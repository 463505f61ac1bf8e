package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/dwnsync/dwnsync/internal/dwn/dialect"
	"github.com/dwnsync/dwnsync/internal/dwn/wire"
	"github.com/dwnsync/dwnsync/internal/faulttest"
)

// requestCounter counts a pool's HTTP requests by the DWN message they carry (RecordsWrite,
// MessagesRead, ...), so that P1 can tell what each contender asked of the servers per
// message copied. The transport underneath is the pool's default one.
type requestCounter struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

// newCountedPool is a pool whose requests a requestCounter counts.
func newCountedPool() (*dialect.Pool, *requestCounter, error) {
	egress, err := wire.EgressPolicy{}.Compile()
	if err != nil {
		return nil, nil, err
	}
	c := &requestCounter{base: wire.NewHTTPClient(egress).Transport, n: map[string]int{}}
	return dialect.NewPool(dialect.Options{HTTPClient: &http.Client{Transport: c}}), c, nil
}

func (c *requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	kind := faulttest.RequestKind(r)
	c.mu.Lock()
	c.n[kind]++
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

// String lists the counts, largest first, with their total.
func (c *requestCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	kinds := make([]string, 0, len(c.n))
	total := 0
	for k, v := range c.n {
		kinds = append(kinds, k)
		total += v
	}
	slices.SortFunc(kinds, func(a, b string) int { return c.n[b] - c.n[a] })
	parts := []string{fmt.Sprintf("total=%d", total)}
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c.n[k]))
	}
	return strings.Join(parts, " ")
}
