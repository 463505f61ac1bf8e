// Package wire is the transport to DWN servers: JSON-RPC over HTTP (framings, streamed replies,
// retries, stall and rate bounds, refused redirects), the egress policy checked at dial time,
// and one multiplexed WebSocket per endpoint for subscriptions. It classifies every failure
// into a dwn.Error; what the messages mean is left to the dialect adapters.
package wire
