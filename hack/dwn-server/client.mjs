// A long-lived DWN client for tests and the demo, speaking JSON lines.
//
//   node hack/dwn-server/client.mjs
//
// Each stdin line is one request {"id": <any>, "cmd": "<name>", ...params};
// each request gets exactly one stdout line: {"id": <same>, "result": {...}} or
// {"id": <same>, "error": "<message>"}. Requests run concurrently, so answers
// may come back in another order than asked: match them by id.
//
// Messages are made with dwn-sdk-js 0.5.2 and signed by did:jwk Ed25519
// identities; they are sent to @web5/dwn-server the way the server expects:
// POST / with the JSON-RPC request in the `dwn-request` header and the record
// data (if any) as the raw body.
//
// Identities are passed in with every request ({did, privateJwk}), so the
// process holds no secrets of its own. It does remember the newest message it
// wrote per record, so `update` and `delete` can build on it.
import { createInterface } from 'node:readline';
import { randomBytes, randomUUID } from 'node:crypto';

import {
  Message,
  MessagesQuery,
  MessagesRead,
  PermissionsProtocol,
  PrivateKeySigner,
  ProtocolsConfigure,
  ProtocolsQuery,
  RecordsDelete,
  RecordsRead,
  RecordsWrite,
} from '@tbd54566975/dwn-sdk-js';
import { DidJwk } from '@web5/dids';

const SEED_PROTOCOL = 'https://dwnsync.test/protocols/seed';
const SEED_DEFINITION = {
  protocol: SEED_PROTOCOL,
  published: true,
  types: {
    note: { schema: 'https://dwnsync.test/schemas/note', dataFormats: ['application/json'] },
    blob: { dataFormats: ['application/octet-stream'] },
  },
  structure: { note: {}, blob: {} },
};
// Above DwnConstant.maxDataSizeAllowedToBeEncoded (30,000 B) the server keeps data in its DataStore.
const LARGE_SIZE = 40_000;
const SEED_CONCURRENCY = 8;
const HTTP_TIMEOUT_MS = 60_000;

// recordId -> newest RecordsWrite message this process wrote or read for it.
const newestWrite = new Map();
// recordId -> contextId, so a child can name its parent by recordId.
const contextOf = new Map();
// protocol URI -> definition, to fill in schema and dataFormat of writes.
const definitions = new Map([[SEED_PROTOCOL, SEED_DEFINITION]]);

// ---------- identities ----------

function signerFor(params) {
  const did = required(params, 'did');
  const jwk = required(params, 'privateJwk');
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.d) {
    throw new Error('privateJwk: want an Ed25519 private JWK {"kty":"OKP","crv":"Ed25519","x":…,"d":…}');
  }
  return new PrivateKeySigner({ privateJwk: jwk, keyId: `${did}#0`, algorithm: 'EdDSA' });
}

function required(params, name) {
  if (params[name] === undefined || params[name] === null || params[name] === '') {
    throw new Error(`${name} is required`);
  }
  return params[name];
}

// ---------- transport (spec §4) ----------

// A request whose connection failed before an answer ("fetch failed": the server reset the
// socket, or closed a kept-alive one as it was reused, which a loaded machine makes likely) is
// sent again, SEND_ATTEMPTS in all: one such failure must not end a seed of thousands of
// writes (one ended a 10,000-message seed after 9,700 here). A timeout is not retried: the
// server may still be working on the request.
const SEND_ATTEMPTS = 3;
const RESEND_DELAY_MS = 200;

function connectionFailed(err) {
  return err instanceof TypeError && err.message === 'fetch failed';
}

// send returns the reply, its data, and whether the request had to be sent again (then an
// earlier attempt may have reached the server: see sendOk).
async function send(url, target, message, data) {
  for (let attempt = 1; ; attempt++) {
    try {
      return { ...(await sendOnce(url, target, message, data)), resent: attempt > 1 };
    } catch (err) {
      if (!connectionFailed(err) || attempt >= SEND_ATTEMPTS) throw err;
      await new Promise((resolve) => setTimeout(resolve, RESEND_DELAY_MS * attempt));
    }
  }
}

async function sendOnce(url, target, message, data) {
  const request = {
    jsonrpc: '2.0',
    id: randomUUID(),
    method: 'dwn.processMessage',
    params: { target, message },
  };
  const headers = { 'dwn-request': JSON.stringify(request) };
  let body;
  if (data && data.length > 0) {
    headers['content-type'] = 'application/octet-stream';
    body = data;
  }
  const response = await fetch(url, {
    method: 'POST',
    headers,
    body,
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  let rpc;
  let bytes;
  const framed = response.headers.get('dwn-response');
  if (framed) {
    rpc = JSON.parse(framed);
    bytes = Buffer.from(await response.arrayBuffer());
  } else {
    const text = await response.text();
    try {
      rpc = JSON.parse(text);
    } catch {
      throw new Error(`${url}: HTTP ${response.status}: ${text.slice(0, 200)}`);
    }
  }
  if (rpc.error) {
    throw new Error(`${url}: JSON-RPC error ${rpc.error.code}: ${rpc.error.message}`);
  }
  return { reply: rpc.result.reply, data: bytes };
}

// sendOk fails unless the DWN status is one of the accepted codes.
// A message sent again after a failed connection may answer 409 because the lost attempt
// stored it after all: that counts as accepted.
async function sendOk(url, target, message, data, accepted = [200, 202, 204]) {
  const result = await send(url, target, message, data);
  const status = result.reply?.status;
  const storedByLostAttempt = result.resent && status?.code === 409 && accepted.includes(202);
  if (!status || (!accepted.includes(status.code) && !storedByLostAttempt)) {
    const what = `${message.descriptor.interface}${message.descriptor.method}`;
    throw new Error(`${what} to ${url}: DWN status ${status?.code} ${status?.detail}`);
  }
  return result;
}

// ---------- time ----------

// DWN timestamps have microseconds; updates and deletes must be strictly newer
// than the message they supersede, even when made within the same millisecond.
function timestampAfter(previous) {
  let ms = Date.now();
  if (previous) {
    const prev = Date.parse(previous);
    if (ms <= prev) ms = prev + 1;
  }
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

// ---------- commands ----------

async function newTenant() {
  const bearer = await DidJwk.create({ options: { algorithm: 'Ed25519' } });
  const portable = await bearer.export();
  const { kty, crv, x, d } = portable.privateKeys[0];
  return { did: bearer.uri, privateJwk: { kty, crv, x, d } };
}

async function configureProtocol(p) {
  const definition = required(p, 'definition');
  const configure = await ProtocolsConfigure.create({
    definition,
    signer: signerFor(p),
    messageTimestamp: p.messageTimestamp,
  });
  const urls = urlsOf(p);
  for (const url of urls) {
    await sendOk(url, p.tenant ?? p.did, configure.message, undefined, p.allowConflict ? [202, 409] : [202]);
  }
  definitions.set(definition.protocol, definition);
  return { cid: await Message.getCid(configure.message) };
}

function urlsOf(p) {
  if (Array.isArray(p.urls) && p.urls.length > 0) return p.urls;
  return [required(p, 'url')];
}

function typeRule(protocol, protocolPath) {
  const definition = definitions.get(protocol);
  if (!definition || !protocolPath) return undefined;
  const leaf = protocolPath.split('/').pop();
  return definition.types?.[leaf];
}

async function write(p) {
  const data = Buffer.from(p.data ?? '', 'base64');
  const rule = typeRule(p.protocol, p.protocolPath);
  let parentContextId = p.parentContextId;
  if (!parentContextId && p.parentId) parentContextId = contextOf.get(p.parentId) ?? p.parentId;
  const recordsWrite = await RecordsWrite.create({
    data,
    dataFormat: p.dataFormat || rule?.dataFormats?.[0] || 'application/octet-stream',
    protocol: p.protocol || undefined,
    protocolPath: p.protocolPath || undefined,
    schema: p.schema || rule?.schema,
    parentContextId,
    recipient: p.recipient,
    published: p.published,
    tags: p.tags,
    signer: signerFor(p),
  });
  const message = recordsWrite.message;
  for (const url of urlsOf(p)) {
    await sendOk(url, p.tenant ?? p.did, message, data, [202]);
  }
  remember(message);
  return { recordId: message.recordId, contextId: message.contextId, cid: await Message.getCid(message) };
}

function remember(message) {
  newestWrite.set(message.recordId, message);
  if (message.contextId) contextOf.set(message.recordId, message.contextId);
}

// newestOf returns the newest write of a record: from memory, else a RecordsRead.
async function newestOf(p, recordId) {
  const known = newestWrite.get(recordId);
  if (known) return known;
  const read = await RecordsRead.create({ filter: { recordId }, signer: signerFor(p) });
  const { reply } = await sendOk(required(p, 'url'), p.tenant ?? p.did, read.message, undefined, [200]);
  const message = reply.record?.recordsWrite ?? reply.entry?.recordsWrite;
  if (!message) throw new Error(`record ${recordId}: RecordsRead returned no RecordsWrite`);
  const { encodedData, ...plain } = message; // eslint-disable-line no-unused-vars
  remember(plain);
  return plain;
}

async function update(p) {
  const recordId = required(p, 'recordId');
  const previous = await newestOf(p, recordId);
  const data = Buffer.from(p.data ?? '', 'base64');
  const recordsWrite = await RecordsWrite.createFrom({
    recordsWriteMessage: previous,
    data,
    dataFormat: p.dataFormat || undefined,
    published: p.published,
    messageTimestamp: timestampAfter(previous.descriptor.messageTimestamp),
    signer: signerFor(p),
  });
  const message = recordsWrite.message;
  for (const url of urlsOf(p)) {
    await sendOk(url, p.tenant ?? p.did, message, data, [202]);
  }
  remember(message);
  return { recordId, cid: await Message.getCid(message) };
}

async function remove(p) {
  const recordId = required(p, 'recordId');
  const previous = newestWrite.get(recordId);
  const recordsDelete = await RecordsDelete.create({
    recordId,
    messageTimestamp: timestampAfter(previous?.descriptor.messageTimestamp),
    signer: signerFor(p),
  });
  for (const url of urlsOf(p)) {
    await sendOk(url, p.tenant ?? p.did, recordsDelete.message, undefined, [202]);
  }
  newestWrite.delete(recordId);
  return { recordId, cid: await Message.getCid(recordsDelete.message) };
}

async function grant(p) {
  const scope = required(p, 'scope');
  const dateExpires = p.dateExpires ??
    new Date(Date.now() + 365 * 24 * 3600 * 1000).toISOString().replace(/Z$/, '000Z');
  const created = await PermissionsProtocol.createGrant({
    signer: signerFor(p),
    grantedTo: required(p, 'grantee'),
    dateExpires,
    description: p.description ?? `dwnsync test grant: ${scope.interface}${scope.method}`,
    scope,
  });
  const message = created.recordsWrite.message;
  for (const url of urlsOf(p)) {
    await sendOk(url, p.tenant ?? p.did, message, Buffer.from(created.permissionGrantBytes), [202]);
  }
  return { grantId: message.recordId, cid: await Message.getCid(message) };
}

// query lists every message CID of the tenant after the cursor (MessagesQuery
// has no page size: the first reply holds everything, the next one is empty).
async function query(p) {
  const url = required(p, 'url');
  const signer = signerFor(p);
  const cids = [];
  let cursor = p.cursor;
  for (;;) {
    const messagesQuery = await MessagesQuery.create({
      signer,
      filters: p.filters ?? [],
      cursor,
      permissionGrantId: p.permissionGrantId,
    });
    const { reply } = await sendOk(url, p.tenant ?? p.did, messagesQuery.message, undefined, [200]);
    const entries = reply.entries ?? [];
    cids.push(...entries.map((entry) => (typeof entry === 'string' ? entry : entry.messageCid)));
    if (entries.length === 0 || !reply.cursor) break;
    cursor = reply.cursor;
  }
  return { cids, cursor: cursor ?? null };
}

async function read(p) {
  const messagesRead = await MessagesRead.create({
    signer: signerFor(p),
    messageCid: required(p, 'messageCid'),
    permissionGrantId: p.permissionGrantId,
  });
  const { reply, data } = await send(required(p, 'url'), p.tenant ?? p.did, messagesRead.message);
  return {
    status: reply.status.code,
    message: reply.entry?.message ?? null,
    data: data ? data.toString('base64') : null,
  };
}

// seed writes `records` small JSON notes and `large` blobs, then updates the
// first `updates` of them and deletes the last `deletes`, 8 requests in flight.
async function seed(p) {
  const url = required(p, 'url');
  const records = p.records ?? 0;
  const large = p.large ?? 0;
  const total = records + large;
  const updates = p.updates ?? 0;
  const deletes = p.deletes ?? 0;
  if (updates > total || deletes > total) {
    throw new Error(`updates (${updates}) and deletes (${deletes}) must each be at most records+large (${total})`);
  }
  const prefix = p.prefix ?? 'seed';
  const started = process.hrtime.bigint();

  // Configure the seed protocol only when it is missing: a second configure would be
  // accepted too, replacing the first, which changes the listing in a way callers
  // counting CIDs do not expect.
  let configured = 0;
  const protocolsQuery = await ProtocolsQuery.create({ filter: { protocol: SEED_PROTOCOL }, signer: signerFor(p) });
  const existing = await sendOk(url, p.tenant ?? p.did, protocolsQuery.message, undefined, [200]);
  if ((existing.reply.entries ?? []).length === 0) {
    const configure = await ProtocolsConfigure.create({ definition: SEED_DEFINITION, signer: signerFor(p) });
    await sendOk(url, p.tenant ?? p.did, configure.message, undefined, [202]);
    configured = 1;
  }

  const note = (i, phase) => Buffer.from(JSON.stringify({
    kind: 'note', prefix, i, phase, nonce: randomBytes(8).toString('hex'), at: new Date().toISOString(),
  }));
  const blob = () => randomBytes(LARGE_SIZE);
  const base = { ...p, url, protocol: SEED_PROTOCOL };

  const recordIds = new Array(total);
  await pool(total, async (i) => {
    const isLarge = i >= records;
    const written = await write({
      ...base,
      protocolPath: isLarge ? 'blob' : 'note',
      data: (isLarge ? blob() : note(i, 'write')).toString('base64'),
    });
    recordIds[i] = written.recordId;
  });
  const updated = recordIds.slice(0, updates);
  await pool(updated.length, async (i) => {
    const isLarge = i >= records;
    await update({ ...base, recordId: updated[i], data: (isLarge ? blob() : note(i, 'update')).toString('base64') });
  });
  const deleted = recordIds.slice(total - deletes);
  await pool(deleted.length, async (i) => {
    await remove({ ...base, recordId: deleted[i] });
  });

  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const messages = configured + total + updates + deletes;
  // What MessagesQuery lists afterwards: the configure, one initial write per
  // record, plus the newest update of updated records and the delete of deleted
  // ones (a delete prunes the record's updates; initial writes always stay).
  const touched = new Set([...updated, ...deleted]);
  const expectedCids = configured + total + touched.size;
  return { configured, records, large, updates, deletes, messages, seconds, expectedCids, recordIds, updated, deleted };
}

async function pool(n, work) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await work(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(SEED_CONCURRENCY, n) }, worker));
}

const commands = {
  newTenant,
  configureProtocol,
  write,
  update,
  delete: remove,
  grant,
  query,
  read,
  seed,
  ping: async () => ({ pong: true }),
};

// ---------- JSON lines loop ----------

function reply(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const pending = new Set();
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  let request;
  try {
    request = JSON.parse(line);
  } catch (err) {
    reply({ id: null, error: `request is not JSON: ${err.message}` });
    return;
  }
  const id = request.id ?? null;
  const command = commands[request.cmd];
  if (!command) {
    reply({ id, error: `unknown cmd ${JSON.stringify(request.cmd)}; want one of ${Object.keys(commands).join(', ')}` });
    return;
  }
  const task = command(request)
    .then((result) => reply({ id, result }))
    .catch((err) => reply({ id, error: err?.message ?? String(err) }))
    .finally(() => pending.delete(task));
  pending.add(task);
});
lines.on('close', async () => {
  await Promise.allSettled([...pending]);
  process.exit(0);
});
