// Package dwntest is an in-process enbox-protocol DWN server for tests and benchmarks only:
// no enbox server can be installed on our machines, yet dwnsync must speak both enbox
// protocol generations. Production code never imports it.
//
// A Node listens on a random 127.0.0.1 port and keeps every tenant in memory. It speaks the
// JSON-RPC surface of docs/specs enbox-dwn-protocol.md over HTTP and WebSocket, with enough
// DWN semantics for replication to mean something: CIDs computed on admission, JWS verified
// for did:jwk authors, newer writes superseding older ones, deletes, protocol configuration,
// dependency checks (Incomplete), duplicates, and Messages permission grants for delegates.
//
// # Modes
//
// ModeEnbox (current enbox servers):
//   - GET /info with maxInFlight and httpRpcFraming ["body-v1"]; GET /health.
//   - dwn.processMessage (header or body-v1 framing) for RecordsWrite, RecordsDelete,
//     ProtocolsConfigure, MessagesQuery (the durable feed), MessagesRead, RecordsQuery,
//     RecordsRead, ProtocolsQuery.
//   - dwn.applyReplicatedMessage with Applied (position, ancestryOnly) / Duplicate /
//     Superseded / Incomplete (missing refs) / Invalid.
//   - WebSocket: rpc.subscribe.dwn.processMessage with MessagesSubscribe (cursor replay, eose,
//     live; head and fingerprint in the reply of a live-only subscription), rpc.ack with a
//     window of MaxInFlight (default 32), buffer overflow and stall timeout, rpc.subscribe.close,
//     rpc.ping, and the non-RecordsWrite processMessage/apply calls. Options.StrictAck plays the
//     server version whose rpc.ack demands cursor.messageCid.
//   - MessagesSync is answered 400 (no such schema any more).
//
// ModeEnboxSMT (the seed-era server @enbox/agent 0.5.15 replicated against):
//   - MessagesSync root / subtree / leaves / diff over one sparse Merkle tree per tenant plus
//     one per protocol (msg.SMT), authorised for the tenant or a Messages grant.
//   - MessagesSubscribe with ProgressToken cursors: replay, eose, live, 410 ProgressGap. The
//     EventLog cursors of that era are the same tokens; there is no flow control (no
//     maxInFlight in /info, rpc.ack answers -32601).
//   - MessagesRead, RecordsQuery/RecordsRead/ProtocolsQuery and dwn.processMessage writes
//     (202 / 204 / 409 / 400 / 401 / 404), the path the seed pushed through.
//   - NO durable feed: MessagesQuery replies 501 MessagesQueryReplicationFeedUnimplemented;
//     dwn.applyReplicatedMessage is -32601; /info has neither maxInFlight nor httpRpcFraming
//     and body-v1 requests are refused like any request without a dwn-request header (400).
//
// # Deliberate simplifications
//
//   - Protocol rules (who may write which path) are not enforced; any verified author may
//     write a record of a configured protocol. ProtocolsConfigure and grants must be authored
//     by the tenant. ProtocolsQuery treats every protocol as published.
//   - Only did:jwk signatures verify; other DID methods are Invalid (401 on processMessage).
//   - Record data is checked against descriptor.dataSize and dataCid (msg.DataCID, any size).
//   - Subscriptions deliver straight from the feed, so a message removed before its frame
//     went out is not delivered (its position is a hole by then, as in a scan).
//   - RotateEpoch keeps positions and open subscriptions; their later frames carry the new
//     epoch. Combine it with DropWebSockets to force clients to resume with old tokens.
//   - The server's WebSocket ping runs only when Options.PingInterval is set; the 30 s idle
//     re-drain of subscriptions is not modelled (wake-ups are never lost here).
//   - Tenant registration is not modelled; SetTenantActive(did, false) plays an unregistered
//     tenant.
//
// # Faults and inspection
//
// Every fault is a method of Node and takes effect at once: DropWebSockets, RefuseConnections /
// SetRefusing, FailNext (HTTP status, Retry-After), FailNextRPC (JSON-RPC error with the
// server's HTTP mapping), DeferNextApplies, SetTenantActive, SetLatency, RotateEpoch,
// CompactFeed, StallSubscriptions, ReplayBeforeReply, CorruptNextRead / CorruptNextMessages
// (bytes that do not match the CID), CorruptNextData, SendGarbageFrames. Timers (latency,
// refuse windows, subscription stall timeout, pings, grant expiry) run on Options.Clock.
//
// Inspection: CIDs, Fingerprint, Message, Head, Token, Count / Counts (requests by JSON-RPC
// method, DWN message kind, "apply:<kind>", "GET /info", "websocket"…), Subscriptions,
// WebSockets, Refused, Corrupted. Write stores a signed message without HTTP; Identity
// authors signed messages (records, updates, deletes, protocols, grants, queries).
package dwntest
