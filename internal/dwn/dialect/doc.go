// Package dialect implements dwn.Tenant for each server family (web5, enbox, enbox-smt): Open
// detects an endpoint's dialect, a Client holds its connections, and a Pool shares Clients
// between links and opens tenants for the engine (a dwn.Opener). Apply results and feed pages
// are decoded here.
package dialect
