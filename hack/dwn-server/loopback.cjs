// Preload (`node --require ./loopback.cjs`) for @web5/dwn-server.
//
// The server calls listen(port) without a host, which binds every interface;
// tests and the demo must only be reachable on loopback. This makes any TCP
// listen without an explicit host bind DWN_LISTEN_HOST (default 127.0.0.1).
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
  this.once('listening', () => this.removeListener('error', onError));
  return originalListen.apply(this, args);
};
