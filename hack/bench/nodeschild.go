package main

// In-process enbox nodes (internal/dwntest) served by a child process (this binary again, with
// -nodes-serve), so that the RSS and goroutines the P5 and memory figures measure here are the
// engine's own, not the servers' stores and subscriptions.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwn/msg"
	"github.com/dwnsync/dwnsync/internal/dwntest"
)

var (
	nodesServe = flag.Int("nodes-serve", 0, "internal: serve this many enbox nodes for the bench (run by the bench itself)")
	nodesSeed  = flag.Int("nodes-seed", 0, "internal: with -nodes-serve, messages of one tenant seeded on the last node")
)

// childNodes is what the child prints once its nodes are up (and seeded).
type childNodes struct {
	URLs []string
	// DID and PrivateJWK: the seeded tenant (a throwaway key made for this run), when seeded.
	DID        string `json:",omitempty"`
	PrivateJWK []byte `json:",omitempty"`
	Seeded     int    `json:",omitempty"`
}

// childCounts answers the parent's "counts" line.
type childCounts struct {
	WebSockets int
	CIDs       []int // per node, of the seeded tenant
}

// serveChildNodes is the child: n enbox nodes, the last seeded with seed messages of a fresh
// tenant. It prints childNodes as one line, then answers each "counts" line of its stdin with
// childCounts, until stdin closes.
func serveChildNodes(n, seed int) error {
	nodes, closeNodes, err := launchNodes(n, dwntest.ModeEnbox)
	if err != nil {
		return err
	}
	defer closeNodes()
	out := childNodes{}
	for _, nd := range nodes {
		out.URLs = append(out.URLs, nd.URL())
	}
	var id *dwntest.Identity
	if seed > 0 {
		if id, err = dwntest.NewIdentity(); err != nil {
			return err
		}
		start := time.Now()
		if err := seedNode(id, seed, nodes[n-1]); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s child: seeded %d messages in %v\n", time.Now().UTC().Format("15:04:05"), seed, time.Since(start).Round(time.Millisecond))
		out.DID, out.PrivateJWK, out.Seeded = id.DID, id.PrivateJWK, seed
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if strings.TrimSpace(in.Text()) != "counts" {
			continue
		}
		c := childCounts{WebSockets: webSockets(nodes)}
		for _, nd := range nodes {
			if id != nil {
				c.CIDs = append(c.CIDs, len(nd.CIDs(id.DID)))
			}
		}
		b, _ := json.Marshal(c)
		fmt.Println(string(b))
	}
	return nil
}

// nodesChild is the parent's handle on a child serving nodes.
type nodesChild struct {
	childNodes
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	signer *msg.Signer // of the seeded tenant
}

// startNodesChild starts a child serving n nodes (the last seeded with seed messages) and
// waits until they are up.
func startNodesChild(ctx context.Context, n, seed int) (*nodesChild, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "-nodes-serve", strconv.Itoa(n), "-nodes-seed", strconv.Itoa(seed))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &nodesChild{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout)}
	if err := c.readLine(&c.childNodes); err != nil {
		c.stop()
		return nil, fmt.Errorf("child nodes: %w", err)
	}
	if len(c.URLs) != n {
		c.stop()
		return nil, fmt.Errorf("child nodes: %d URLs, want %d", len(c.URLs), n)
	}
	if c.DID != "" {
		if c.signer, err = msg.NewSigner(c.DID, c.PrivateJWK); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

func (c *nodesChild) readLine(v any) error {
	line, err := c.stdout.ReadString('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(line), v)
}

// counts asks the child for its WebSockets and the seeded tenant's CIDs per node.
func (c *nodesChild) counts() (childCounts, error) {
	var out childCounts
	if _, err := io.WriteString(c.stdin, "counts\n"); err != nil {
		return out, err
	}
	err := c.readLine(&out)
	return out, err
}

func (c *nodesChild) stop() {
	_ = c.stdin.Close()
	if err := c.cmd.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		logf("child nodes: %v", err)
	}
}
