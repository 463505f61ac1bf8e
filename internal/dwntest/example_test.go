package dwntest_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/dwnsync/dwnsync/internal/dwntest"
)

// A node seeded directly, one fault injected, and the request counters read back.
func ExampleLaunch() {
	node, err := dwntest.Launch(dwntest.Options{Mode: dwntest.ModeEnbox})
	if err != nil {
		panic(err)
	}
	defer node.Close()

	alice, _ := dwntest.NewIdentity()
	proto, _ := alice.ConfigureProtocol("https://example.com/protocol/notes")
	note, _ := alice.Write(dwntest.WriteOpts{Protocol: "https://example.com/protocol/notes", ProtocolPath: "note", Data: []byte("hi")})
	update, _ := alice.Update(note, []byte("hi again"))
	for _, w := range []dwntest.Written{proto, note, update} {
		fmt.Println(node.Write(alice.DID, w.Message, w.Data).Kind)
	}
	fmt.Println("stored:", len(node.CIDs(alice.DID)), "head:", node.Head(alice.DID))

	node.FailNext(1, http.StatusServiceUnavailable, 2*time.Second)
	resp, _ := http.Post(node.URL()+"/", "application/json", nil)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Retry-After"))
	// Output:
	// Applied
	// Applied
	// Applied
	// stored: 3 head: 3
	// 503 2
}
