// Package dwnserver runs real TBD @web5/dwn-server 0.6.1 processes and a dwn-sdk-js client
// for tests and the demo, so dwnsync is exercised against the server it must interoperate
// with rather than a model of it.
//
// Everything it runs lives in hack/dwn-server (installed by hack/dwn-server/install.sh;
// `make test` does it). Servers bind 127.0.0.1 only, each with its own data directory
// (on tmpfs when /dev/shm is usable) holding a SQLite store and the server's log.
//
//	servers := dwnserver.Start(t, 2)
//	c := dwnserver.NewClient(t)
//	alice, _ := c.NewTenant()
//	seeded, _ := c.Seed(servers[0].URL, alice, dwnserver.SeedSpec{Records: 50})
package dwnserver
