'use strict';
// Copies connect-redis sessions into SessionGrid under the same ids, so
// that express-session cookies issued before the migration keep working:
// each `<prefix><id>` key's JSON becomes the data of session <id>, its
// remaining TTL the session's TTL. Needs the server's --allow-client-ids.
//
// Idempotent: an id already in SessionGrid (or deleted there) is skipped
// ("exists"), never overwritten, so re-running is safe and cheap.
// Resumable: it walks Redis with SCAN; an interrupted run reports the
// cursor to pass as `cursor` to go on from there.
const { createClients, grpc } = require('./client');

const { status: Code } = grpc;
const ID_RE = /^[A-Za-z0-9_-]{22,128}$/;
const BATCH_MAX = 1000;

function call(client, method, request, timeoutMs) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: new Date(Date.now() + timeoutMs) }, (err, r) => (err ? reject(err) : resolve(r)));
  });
}

// options:
//   redis        a connected node-redis (v4/v5) client
//   target       sessiongrid-server address (or `client`: a SessionService client)
//   prefix       connect-redis's prefix (default 'sess:')
//   dryRun       read and check everything, write nothing
//   defaultTtl   seconds for keys without a TTL (connect-redis disableTTL);
//                default: the server's --default-ttl
//   batch        sessions per BatchCreate (default 500, at most 1000)
//   cursor       SCAN cursor to start from (resume)
//   timeout      ms per gRPC call (default 10000)
//   onProgress   (stats) => void, after every batch
//   signal       an AbortSignal: stop after the current batch
// Resolves to the stats: { scanned, imported, skipped: { reason: n },
// cursor, done, elapsedMs }.
async function importRedis(options) {
  const {
    redis,
    prefix = 'sess:',
    dryRun = false,
    defaultTtl,
    cursor: startCursor = '0',
    timeout = 10000,
    onProgress,
    signal,
  } = options;
  const batch = Math.min(BATCH_MAX, Math.max(1, Number(options.batch || 500)));
  if (!redis) throw new TypeError('importRedis: redis (a node-redis client) is required');
  let clients;
  let sessions = options.client;
  if (!sessions) {
    if (!options.target) throw new TypeError('importRedis: target (the sessiongrid-server address) is required');
    clients = createClients({ target: options.target });
    sessions = clients.sessions;
  }

  const started = Date.now();
  const stats = { scanned: 0, imported: 0, skipped: {}, cursor: String(startCursor), done: false, elapsedMs: 0 };
  const skip = (reason) => {
    stats.skipped[reason] = (stats.skipped[reason] || 0) + 1;
  };

  // One batch of keys: read value and remaining TTL, check, create.
  async function importKeys(keys) {
    const rows = await Promise.all(keys.map(async (key) => {
      const [value, pttl] = await Promise.all([redis.get(key), redis.pTTL(key)]);
      return { key, value, pttl: Number(pttl) };
    }));
    const requests = [];
    for (const { key, value, pttl } of rows) {
      stats.scanned++;
      const id = key.slice(prefix.length);
      if (value === null || pttl === -2) { skip('expired'); continue; }
      if (!ID_RE.test(id)) { skip('bad_id'); continue; }
      let parsed;
      try {
        parsed = JSON.parse(value);
      } catch (_) {
        parsed = undefined;
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) { skip('not_json_object'); continue; }
      const request = { id, data: Buffer.from(value, 'utf8') };
      if (pttl > 0) {
        request.ttl = { seconds: String(Math.ceil(pttl / 1000)), nanos: 0 };
      } else if (defaultTtl) {
        request.ttl = { seconds: String(Math.ceil(defaultTtl)), nanos: 0 };
      }
      requests.push(request);
    }
    if (requests.length === 0) return;
    if (dryRun) {
      stats.imported += requests.length;
      return;
    }
    const response = await call(sessions, 'BatchCreate', { requests }, timeout);
    const results = response.results || [];
    for (let i = 0; i < requests.length; i++) {
      const code = results[i] && results[i].status ? Number(results[i].status.code || 0) : 0;
      if (code === Code.OK) stats.imported++;
      else if (code === Code.ALREADY_EXISTS) skip('exists');
      else if (code === Code.PERMISSION_DENIED) {
        const err = new Error('sessiongrid-server refused application ids: start it with --allow-client-ids');
        err.code = 'SESSIONGRID_PERMISSION_DENIED';
        throw err;
      } else if (code === Code.INVALID_ARGUMENT) skip('refused_invalid');
      else if (code === Code.RESOURCE_EXHAUSTED) skip('refused_memory');
      else {
        const err = new Error(`BatchCreate entry failed: code ${code}: ${results[i].status.message}`);
        err.grpcCode = code;
        throw err;
      }
    }
  }

  try {
    let cursor = String(startCursor);
    for (;;) {
      if (signal && signal.aborted) break;
      const page = await redis.scan(cursor, { MATCH: `${prefix}*`, COUNT: batch });
      const keys = page.keys.filter((k) => k.startsWith(prefix));
      for (let i = 0; i < keys.length; i += batch) await importKeys(keys.slice(i, i + batch));
      cursor = String(page.cursor);
      stats.cursor = cursor;
      stats.elapsedMs = Date.now() - started;
      if (cursor === '0') stats.done = true;
      if (onProgress) onProgress({ ...stats, skipped: { ...stats.skipped } });
      if (stats.done) break;
    }
  } finally {
    stats.elapsedMs = Date.now() - started;
    if (clients) clients.sessions.close();
  }
  return stats;
}

module.exports = { importRedis };
