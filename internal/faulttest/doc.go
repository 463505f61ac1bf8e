// Package faulttest holds what the fault tests on real servers share: a counting reverse proxy
// on 127.0.0.1 (writes per message CID, read from the dwn-request envelope), the dwnsync
// binary built from ./cmd/dwnsync and run as a process that can be killed with SIGKILL, bulk
// seeding, and an inventory of a tenant (every CID and the hash of its data). Tests only.
package faulttest
