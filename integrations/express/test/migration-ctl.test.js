'use strict';
// Migration from connect-redis with the C++ importer, `sessiongridctl
// import-redis` (SG_CTL_BIN): the demo app on express-session +
// connect-redis (real redis-server) logs users in; the binary copies the
// sessions into sessiongrid-server under the same ids; the same app on
// SessionGridStore, and behind the edge with the same cookie secret, still
// knows them. migration.test.js is the same story with the npm importer.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const session = require('express-session');
const { RedisStore } = require('connect-redis');
const { createClient } = require('redis');
const { SessionGridStore, edgeSession } = require('..');
const { createDemoApp } = require('../examples/demo-app');
const {
  BROWSER_HEADERS, Browser, listen, nodeStats, rawClient, startEdge, startRedis, startServer, stopAll,
} = require('./harness');

const SECRET = 'the-apps-cookie-secret-from-before-the-migration';

let redisServer;
let redis;
let server;
let raw;
let before;
let after;
let sgStore;
const users = {};

// SG_CTL_BIN (ctest sets it), else the sessiongridctl next to
// SG_SERVER_BIN's build (tests/integrations/express/run.sh BUILD_DIR).
function ctlBinary() {
  const server = process.env.SG_SERVER_BIN;
  const bin = process.env.SG_CTL_BIN ||
    (server && path.join(path.dirname(server), '..', 'client', 'sessiongridctl'));
  if (!bin || !fs.existsSync(bin)) {
    throw new Error(`SG_CTL_BIN must name sessiongridctl (got ${bin || 'nothing'}); build it, run via ctest`);
  }
  return bin;
}

function expressApp(store) {
  return createDemoApp(session({ store, secret: SECRET, resave: false, saveUninitialized: false }));
}

function idOf(cookie) {
  const v = decodeURIComponent(cookie);
  return v.slice(2, v.lastIndexOf('.'));
}

// sessiongridctl --server S import-redis --redis R ARGS: exit code,
// output, and the JSON summary (its last stdout line).
function importRedis(args, address = server.address) {
  const r = spawnSync(ctlBinary(), ['--server', address, 'import-redis', '--redis', redisServer.address, ...args], {
    encoding: 'utf8',
    timeout: 60000,
  });
  let summary;
  try {
    summary = JSON.parse(r.stdout.trim().split('\n').pop());
  } catch (_) {
    summary = undefined;
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, summary };
}

beforeAll(async () => {
  redisServer = await startRedis();
  redis = createClient({ url: `redis://${redisServer.address}` });
  await redis.connect();
  server = await startServer({ args: ['--allow-client-ids'] });
  raw = rawClient(server.address);

  // Before: connect-redis, as the app runs today.
  before = await listen(expressApp(new RedisStore({ client: redis })));
  const browse = () => new Browser(before.url, { headers: BROWSER_HEADERS });
  users.alice = browse();
  await users.alice.post('/api/user/counter');
  await users.alice.post('/api/user/counter');
  await users.alice.post('/api/auth/login', { username: 'alice', password: 'pw' });
  users.bob = browse();
  await users.bob.post('/api/auth/login', { username: 'bob', password: 'pw', remember: true });
  for (const b of Object.values(users)) expect(b.cookies.get('connect.sid')).toBeDefined();
  await redis.set('sess:short', '{"cookie":{}}', { EX: 3600 });
  await redis.set(`sess:${'x'.repeat(32)}`, 'not json', { EX: 3600 });
});

afterAll(async () => {
  if (before) await before.close();
  if (after) await after.close();
  if (sgStore) sgStore.close();
  if (redis) await redis.quit();
  if (raw) raw.close();
  await stopAll();
});

describe('sessiongridctl import-redis', () => {
  test('--dry-run counts and writes nothing', async () => {
    const stats = await nodeStats(server.address);
    const r = importRedis(['--dry-run']);
    expect(r.status).toBe(0);
    expect(r.summary).toMatchObject({
      dryRun: true, done: true, scanned: 4, imported: 2, skipped: { bad_id: 1, not_json_object: 1 },
    });
    expect(await nodeStats(server.address)).toEqual(stats);
  });

  test('copies the connect-redis sessions: same JSON, remaining TTL, progress', async () => {
    const r = importRedis([]);
    expect(r.status).toBe(0);
    expect(r.summary).toMatchObject({ done: true, scanned: 4, imported: 2, skipped: { bad_id: 1, not_json_object: 1 } });
    expect(r.stderr).toMatch(/scanned 4\/~\d+, imported 2, skipped 2, \d+ sessions\/s, ETA 0s/);
    for (const b of Object.values(users)) {
      const id = idOf(b.cookies.get('connect.sid'));
      const record = (await raw.call('Get', { id })).session;
      expect(Buffer.from(record.data).toString()).toBe(await redis.get(`sess:${id}`));
      const ttl = Number(record.expire_time.seconds) - Date.now() / 1000;
      expect(Math.abs(ttl - (await redis.pTTL(`sess:${id}`)) / 1000)).toBeLessThan(5);
    }
  });

  test('a user logged in before is logged in after, on SessionGridStore', async () => {
    sgStore = new SessionGridStore({ target: server.address });
    after = await listen(expressApp(sgStore));
    const b = new Browser(after.url, { headers: BROWSER_HEADERS });
    b.cookies = new Map(users.alice.cookies);
    expect((await b.get('/api/user/whoami')).data).toEqual({ loggedIn: true, user: 'alice', counter: 2 });
    expect((await b.post('/api/user/counter')).data).toEqual({ counter: 3, user: 'alice' });
    // Logout on SessionGrid: the re-run below must not bring it back.
    await b.post('/api/auth/logout');
    const replay = new Browser(after.url, { headers: BROWSER_HEADERS });
    replay.cookies.set('connect.sid', users.alice.cookies.get('connect.sid'));
    expect((await replay.get('/api/user/whoami')).data.loggedIn).toBe(false);
  });

  test('and behind the edge with the same cookie secret', async () => {
    const app = await listen(createDemoApp(edgeSession()));
    try {
      const edge = await startEdge({ upstream: app.url, service: server.address, secrets: [SECRET] });
      const b = new Browser(edge.url, { headers: BROWSER_HEADERS });
      b.cookies.set('connect.sid', users.bob.cookies.get('connect.sid'));
      expect((await b.get('/api/user/whoami')).data).toEqual({ loggedIn: true, user: 'bob', counter: 0 });
      expect((await b.post('/api/user/counter')).data).toEqual({ counter: 1, user: 'bob' });
    } finally {
      await app.close();
    }
  });

  test('re-running imports nothing and overwrites nothing, not even a logout', async () => {
    const r = importRedis([]);
    expect(r.status).toBe(0);
    expect(r.summary).toMatchObject({ imported: 0, skipped: { exists: 2, bad_id: 1, not_json_object: 1 } });
    const replay = new Browser(after.url, { headers: BROWSER_HEADERS });
    replay.cookies.set('connect.sid', users.alice.cookies.get('connect.sid'));
    expect((await replay.get('/api/user/whoami')).data.loggedIn).toBe(false);
    // Bob's session as the edge last wrote it, not Redis' older copy.
    const bob = (await raw.call('Get', { id: idOf(users.bob.cookies.get('connect.sid')) })).session;
    expect(Buffer.from(bob.data).toString()).not.toBe(await redis.get(`sess:${idOf(users.bob.cookies.get('connect.sid'))}`));
  });

  test('a server without --allow-client-ids: exit 1, the flag named, nothing written', async () => {
    const strict = await startServer();
    const r = importRedis([], strict.address);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/error: PERMISSION_DENIED: .*--allow-client-ids/);
    expect(r.stderr).toMatch(/resume with: --cursor 0/);
    expect((await nodeStats(strict.address)).sessions).toBe(0);
  });
});
