'use strict';
// Migration from connect-redis without logging anyone out: the demo app on
// express-session + connect-redis (real redis-server) logs users in; the
// import copies the sessions into sessiongrid-server under the same ids;
// the same app on SessionGridStore, and behind the edge with the same
// cookie secret, still knows them.
const { spawnSync } = require('child_process');
const path = require('path');
const session = require('express-session');
const { RedisStore } = require('connect-redis');
const { createClient } = require('redis');
const { SessionGridStore, edgeSession } = require('..');
const { importRedis } = require('../lib/import-redis');
const { createDemoApp } = require('../examples/demo-app');
const {
  BROWSER_HEADERS, Browser, listen, nodeStats, rawClient, startEdge, startRedis, startServer, stopAll,
} = require('./harness');

const SECRET = 'the-apps-cookie-secret-from-before-the-migration';
const CLI = path.join(__dirname, '..', 'bin', 'sessiongrid-import-redis.js');

let redisServer;
let redis;
let server;
let raw;
let before;
let after;
let sgStore;
const users = {};

function expressApp(store) {
  return createDemoApp(session({ store, secret: SECRET, resave: false, saveUninitialized: false }));
}

function idOf(cookie) {
  const v = decodeURIComponent(cookie);
  return v.slice(2, v.lastIndexOf('.'));
}

function runCli(args) {
  const r = spawnSync(process.execPath, [CLI, '--server', server.address, '--redis', redisServer.address, ...args], {
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

  // Before: connect-redis.
  before = await listen(expressApp(new RedisStore({ client: redis })));
  const browse = () => new Browser(before.url, { headers: BROWSER_HEADERS });
  users.alice = browse();
  await users.alice.post('/api/user/counter');
  await users.alice.post('/api/user/counter');
  await users.alice.post('/api/auth/login', { username: 'alice', password: 'pw' });
  users.bob = browse();
  await users.bob.post('/api/auth/login', { username: 'bob', password: 'pw', remember: true });
  users.carol = browse();
  for (let i = 0; i < 3; i++) await users.carol.post('/api/user/counter');
  for (const b of Object.values(users)) expect(b.cookies.get('connect.sid')).toBeDefined();
  // What an import must skip, and say why.
  await redis.set('sess:short', '{"cookie":{}}', { EX: 3600 });
  await redis.set(`sess:${'x'.repeat(32)}`, 'not json', { EX: 3600 });
  await redis.set('other:key', 'not a session');
});

afterAll(async () => {
  if (before) await before.close();
  if (after) await after.close();
  if (sgStore) sgStore.close();
  if (redis) await redis.quit();
  if (raw) raw.close();
  await stopAll();
});

describe('import-redis', () => {
  test('--dry-run counts and writes nothing', async () => {
    const stats = await nodeStats(server.address);
    const r = runCli(['--dry-run']);
    expect(r.status).toBe(0);
    expect(r.summary).toMatchObject({
      dryRun: true, done: true, scanned: 5, imported: 3, skipped: { bad_id: 1, not_json_object: 1 },
    });
    expect(await nodeStats(server.address)).toEqual(stats);
  });

  test('copies every session with its JSON and remaining TTL, reports progress', async () => {
    const r = runCli([]);
    expect(r.status).toBe(0);
    expect(r.summary).toMatchObject({ done: true, scanned: 5, imported: 3, skipped: { bad_id: 1, not_json_object: 1 } });
    expect(r.stderr).toMatch(/scanned 5\/~\d+, imported 3, skipped 2, \d+ sessions\/s, ETA 0s/);
    for (const b of Object.values(users)) {
      const id = idOf(b.cookies.get('connect.sid'));
      const record = (await raw.call('Get', { id })).session;
      expect(Buffer.from(record.data).toString()).toBe(await redis.get(`sess:${id}`));
      const ttl = Number(record.expire_time.seconds) - Date.now() / 1000;
      const redisTtl = (await redis.pTTL(`sess:${id}`)) / 1000;
      expect(Math.abs(ttl - redisTtl)).toBeLessThan(5);
    }
    const bobTtl = Number((await raw.call('Get', { id: idOf(users.bob.cookies.get('connect.sid')) })).session.expire_time.seconds) - Date.now() / 1000;
    expect(bobTtl).toBeGreaterThan(29 * 86400);
  });

  test('after: the same cookies are logged in on SessionGridStore', async () => {
    sgStore = new SessionGridStore({ target: server.address });
    after = await listen(expressApp(sgStore));
    const on = (b) => Object.assign(new Browser(after.url, { headers: BROWSER_HEADERS }), { cookies: new Map(b.cookies) });
    expect((await on(users.alice).get('/api/user/whoami')).data).toEqual({ loggedIn: true, user: 'alice', counter: 2 });
    expect((await on(users.bob).get('/api/user/whoami')).data).toEqual({ loggedIn: true, user: 'bob', counter: 0 });
    const carol = on(users.carol);
    expect((await carol.post('/api/user/counter')).data).toEqual({ counter: 4, user: null });
    users.carol = carol;
    // And logout works on the imported session.
    const alice = on(users.alice);
    await alice.post('/api/auth/logout');
    const replay = new Browser(after.url, { headers: BROWSER_HEADERS });
    replay.cookies.set('connect.sid', users.alice.cookies.get('connect.sid'));
    expect((await replay.get('/api/user/whoami')).data.loggedIn).toBe(false);
  });

  test('after: the same cookies work behind the edge with the same secret', async () => {
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

  test('idempotent: a second run imports nothing and overwrites nothing, not even a logout', async () => {
    const r = runCli([]);
    expect(r.status).toBe(0);
    // alice logged out on SessionGrid: her id is a tombstone there, and
    // the import must not bring her session back from Redis.
    expect(r.summary).toMatchObject({ imported: 0, skipped: { exists: 3, bad_id: 1, not_json_object: 1 } });
    const carol = new Browser(after.url, { headers: BROWSER_HEADERS });
    carol.cookies = new Map(users.carol.cookies);
    expect((await carol.get('/api/user/whoami')).data.counter).toBe(4);
  });

  test('resumable: an interrupted run reports a cursor; resuming from it completes the import', async () => {
    const prefix = 'resume:';
    for (let i = 0; i < 40; i++) {
      const id = `resume-${String(i).padStart(3, '0')}-${'r'.repeat(20)}`;
      await redis.set(`${prefix}${id}`, JSON.stringify({ cookie: {}, n: i }), { EX: 600 });
    }
    const controller = new AbortController();
    const first = await importRedis({
      redis, target: server.address, prefix, batch: 5, signal: controller.signal,
      onProgress: (s) => { if (s.imported > 0) controller.abort(); },
    });
    expect(first.done).toBe(false);
    expect(first.imported).toBeGreaterThan(0);
    expect(first.imported).toBeLessThan(40);
    const rest = await importRedis({ redis, target: server.address, prefix, batch: 5, cursor: first.cursor });
    expect(rest.done).toBe(true);
    // SCAN may return a key twice across pages: then it is "exists".
    expect(first.imported + rest.imported).toBe(40);
    const again = await importRedis({ redis, target: server.address, prefix, batch: 1000 });
    expect(again).toMatchObject({ imported: 0, skipped: { exists: 40 } });
  });

  test('fallback: a session written to Redis after the import is found, copied, and logged out in both', async () => {
    // Dave logs in on the old stack after the import ran.
    const dave = new Browser(before.url, { headers: BROWSER_HEADERS });
    await dave.post('/api/auth/login', { username: 'dave', password: 'pw' });
    const cookie = dave.cookies.get('connect.sid');
    const id = idOf(cookie);
    expect(await redis.get(`sess:${id}`)).not.toBeNull();
    const store = new SessionGridStore({ target: server.address, fallback: new RedisStore({ client: redis }) });
    const migrated = [];
    store.on('migrated', (sid) => migrated.push(sid));
    const app = await listen(expressApp(store));
    try {
      const b = new Browser(app.url, { headers: BROWSER_HEADERS });
      b.cookies.set('connect.sid', cookie);
      expect((await b.get('/api/user/whoami')).data).toEqual({ loggedIn: true, user: 'dave', counter: 0 });
      expect(migrated).toEqual([id]);
      expect(JSON.parse(Buffer.from((await raw.call('Get', { id })).session.data).toString()).user).toBe('dave');
      expect((await b.post('/api/user/counter')).data).toEqual({ counter: 1, user: 'dave' });
      expect(migrated).toEqual([id]); // read from SessionGrid from now on
      await b.post('/api/auth/logout');
      expect(await redis.get(`sess:${id}`)).toBeNull();
      const replay = new Browser(app.url, { headers: BROWSER_HEADERS });
      replay.cookies.set('connect.sid', cookie);
      expect((await replay.get('/api/user/whoami')).data.loggedIn).toBe(false);
    } finally {
      await app.close();
      store.close();
    }
  });

  test('a server without --allow-client-ids: exit 1, the flag named, nothing written', async () => {
    const strict = await startServer();
    const r = spawnSync(process.execPath, [CLI, '--server', strict.address, '--redis', redisServer.address], {
      encoding: 'utf8', timeout: 60000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--allow-client-ids/);
    expect((await nodeStats(strict.address)).sessions).toBe(0);
  });

  test('usage errors exit 2', () => {
    const r = spawnSync(process.execPath, [CLI, '--redis', '127.0.0.1:1'], {
      encoding: 'utf8', timeout: 10000, env: { ...process.env, SESSIONGRID_SERVER: '' },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--server/);
  });
});
