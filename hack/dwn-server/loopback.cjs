// Preload (`node --require ./loopback.cjs`) for @web5/dwn-server.
//
// The server calls listen(port) without a host, which binds every interface;
// tests and the demo must only be reachable on loopback. This makes any TCP
// listen without an explicit host bind DWN_LISTEN_HOST (default 127.0.0.1).
//
// It writes "dwn-server harness: bound HOST:PORT" to stderr once the server's port (DS_PORT)
// is bound, so the harness knows a /health answer comes from this process.
//
// It also turns "port already in use" into a prompt exit (code 98): unpatched,
// the server logs nothing useful and keeps running without a listener, so a
// harness waiting for /health would only find out at its deadline.
'use strict';

const net = require('node:net');

const host = process.env.DWN_LISTEN_HOST || '127.0.0.1';
const originalListen = net.Server.prototype.listen;

function isPort(value) {
  return typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value));
}

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const first = args[0];
  if (isPort(first) && typeof args[1] !== 'string') {
    args.splice(1, 0, host);
  } else if (first && typeof first === 'object' && !Array.isArray(first) &&
             first.port !== undefined && first.host === undefined && first.path === undefined) {
    args[0] = { ...first, host };
  }
  const onError = (err) => {
    if (err && err.code === 'EADDRINUSE') {
      process.stderr.write(`dwn-server: ${err.message}; choose a free port\n`);
      process.exit(98);
    }
    // Our listener must not swallow errors nobody else handles.
    if (this.listenerCount('error') === 0) throw err;
  };
  this.once('error', onError);
  this.once('listening', () => {
    this.removeListener('error', onError);
    // The harness waits for this line as well as for /health: until it is in this process's
    // own log, a /health answer on the port may come from another process that took it.
    const addr = this.address();
    if (addr && typeof addr === 'object' && String(addr.port) === process.env.DS_PORT) {
      process.stderr.write(`dwn-server harness: bound ${addr.address}:${addr.port}\n`);
    }
  });
  return originalListen.apply(this, args);
};
