'use strict';
// Without the edge: express-session with SessionGridStore on a real
// sessiongrid-server (--allow-client-ids), on loopback.
const session = require('express-session');
const { SessionGridStore } = require('..');
const { createDemoApp } = require('../examples/demo-app');
const {
  BROWSER_HEADERS, Browser, blackHole, freePort, listen, nodeStats, rawClient, startServer, stopAll, tempDir, waitFor,
} = require('./harness');
const { describeFlows } = require('./flows');

const SECRET = 'store-test-secret';
const NOT_FOUND = 5;

let server;
let store;
let app;
let app4;
let raw;
const stores = [];

function newStore(options = {}) {
  const s = new SessionGridStore({ target: server.address, ...options });
  stores.push(s);
  return s;
}

function sessionApp(s, express) {
  return createDemoApp(session({ store: s, secret: SECRET, resave: false, saveUninitialized: false }), { express });
}

// A session as express-session hands it to store.set.
function sess(data, maxAgeMs = 3600 * 1000) {
  const cookie = { originalMaxAge: maxAgeMs, path: '/', httpOnly: true };
  if (maxAgeMs !== null) cookie.expires = new Date(Date.now() + maxAgeMs).toISOString();
  return { cookie, ...data };
}

// An id as express-session mints them (24 random bytes, base64url).
function newId() {
  return require('crypto').randomBytes(24).toString('base64url');
}

async function ttlOnServer(id) {
  const record = (await raw.call('Get', { id })).session;
  return Number(record.expire_time.seconds) - Date.now() / 1000;
}

async function gone(id) {
  try {
    await raw.call('Get', { id });
    return false;
  } catch (err) {
    return err.code === NOT_FOUND;
  }
}

beforeAll(async () => {
  server = await startServer({ args: ['--allow-client-ids', '--default-ttl=1h'] });
  raw = rawClient(server.address);
  store = newStore({ principal: (s) => s.user });
  app = await listen(sessionApp(store));
  app4 = await listen(sessionApp(store, require('express4')));
});

afterAll(async () => {
  if (app) await app.close();
  if (app4) await app4.close();
  for (const s of stores) s.close();
  if (raw) raw.close();
  await stopAll();
});

describeFlows('express-session + SessionGridStore', () => app);
describeFlows('express-session + SessionGridStore, express 4', () => app4);

describe('SessionGridStore API', () => {
  test('set then get: the session JSON under express-session\'s own id', async () => {
    const id = newId();
    const value = sess({ user: 'alice', cart: [1, 2] });
    await store.set(id, value);
    expect(await store.get(id)).toEqual(JSON.parse(JSON.stringify(value)));
    const record = (await raw.call('Get', { id })).session;
    expect(record.id).toBe(id);
    expect(JSON.parse(Buffer.from(record.data).toString())).toEqual(JSON.parse(JSON.stringify(value)));
    expect(record.principal).toBe('alice');
    // A second set updates in place.
    await store.set(id, sess({ user: 'alice', cart: [3] }));
    expect((await store.get(id)).cart).toEqual([3]);
  });

  test('callbacks work as express-session calls them', async () => {
    const id = newId();
    await new Promise((resolve, reject) => store.set(id, sess({ n: 1 }), (err) => (err ? reject(err) : resolve())));
    const got = await new Promise((resolve, reject) => store.get(id, (err, s) => (err ? reject(err) : resolve(s))));
    expect(got.n).toBe(1);
    await new Promise((resolve, reject) => store.destroy(id, (err) => (err ? reject(err) : resolve())));
    const after = await new Promise((resolve, reject) => store.get(id, (err, s) => (err ? reject(err) : resolve(s))));
    expect(after).toBeNull();
  });

  test('a session written without a cookie (by the edge) reads with one that ends with it', async () => {
    const created = (await raw.call('Create', {
      data: Buffer.from(JSON.stringify({ user: 'edge-user', counter: 2 })), ttl: { seconds: '600' },
    })).session;
    const got = await store.get(created.id);
    expect(got).toMatchObject({ user: 'edge-user', counter: 2 });
    const left = (Date.parse(got.cookie.expires) - Date.now()) / 1000;
    expect(left).toBeGreaterThan(590);
    expect(left).toBeLessThanOrEqual(601);
    // And express-session can load it: a signed cookie for that id works.
    const signature = require('cookie-signature');
    const b = new Browser(app.url, { headers: BROWSER_HEADERS });
    b.cookies.set('connect.sid', encodeURIComponent(`s:${signature.sign(created.id, SECRET)}`));
    expect((await b.get('/api/user/whoami')).data).toEqual({ loggedIn: true, user: 'edge-user', counter: 2 });
  });

  test('absent, destroyed and malformed ids read as no session', async () => {
    expect(await store.get(newId())).toBeNull();
    expect(await store.get('short')).toBeNull();
    expect(await store.get('has spaces and is long enough to pass')).toBeNull();
    await store.destroy(newId()); // nothing to destroy: no error
  });

  test('the TTL is the cookie\'s remaining maxAge', async () => {
    const id = newId();
    await store.set(id, sess({ n: 1 }, 120 * 1000));
    const ttl = await ttlOnServer(id);
    expect(ttl).toBeGreaterThan(115);
    expect(ttl).toBeLessThanOrEqual(121);
  });

  test('each write of an existing session sets its TTL again (a rolling cookie)', async () => {
    const id = newId();
    await store.set(id, sess({ n: 1 }, 60 * 1000));
    expect(await ttlOnServer(id)).toBeLessThanOrEqual(61);
    await store.set(id, sess({ n: 2 }, 7200 * 1000));
    expect(await ttlOnServer(id)).toBeGreaterThan(7190);
    await store.set(id, sess({ n: 3 }, 30 * 1000));
    expect(await ttlOnServer(id)).toBeLessThanOrEqual(31);
  });

  test('without a cookie expiry: the ttl option (number or function)', async () => {
    const id = newId();
    await newStore({ ttl: 300 }).set(id, sess({ n: 1 }, null));
    expect(await ttlOnServer(id)).toBeGreaterThan(295);
    expect(await ttlOnServer(id)).toBeLessThanOrEqual(301);
    const id2 = newId();
    await newStore({ ttl: (s) => s.days * 86400 }).set(id2, sess({ days: 2 }));
    expect(await ttlOnServer(id2)).toBeGreaterThan(2 * 86400 - 10);
  });

  test('disableTTL: the server\'s --default-ttl, and writes keep the expiry', async () => {
    const s = newStore({ disableTTL: true });
    const id = newId();
    await s.set(id, sess({ n: 1 }, 60 * 1000));
    const ttl = await ttlOnServer(id);
    expect(ttl).toBeGreaterThan(3590);
    expect(ttl).toBeLessThanOrEqual(3601);
    await s.touch(id, sess({ n: 1 }, 10 * 1000));
    expect(await ttlOnServer(id)).toBeGreaterThan(3580);
  });

  test('touch() extends to the cookie\'s maxAge; disableTouch leaves it', async () => {
    const id = newId();
    await store.set(id, sess({ n: 1 }, 60 * 1000));
    await store.touch(id, sess({ n: 1 }, 7200 * 1000));
    expect(await ttlOnServer(id)).toBeGreaterThan(7190);
    const quiet = newStore({ disableTouch: true });
    await quiet.touch(id, sess({ n: 1 }, 60 * 1000));
    expect(await ttlOnServer(id)).toBeGreaterThan(7190);
    await store.touch(newId(), sess({ n: 1 })); // absent: no error
  });

  test('a session expires on the server when its cookie does', async () => {
    const id = newId();
    await store.set(id, sess({ n: 1 }, 1500));
    expect(await store.get(id)).not.toBeNull();
    await waitFor(() => gone(id), 'the session to expire', { timeoutMs: 10000, intervalMs: 100 });
    expect(await store.get(id)).toBeNull();
  });

  test('an already expired cookie deletes the session', async () => {
    const id = newId();
    await store.set(id, sess({ n: 1 }));
    await store.set(id, sess({ n: 2 }, -1000));
    expect(await store.get(id)).toBeNull();
  });

  test('a write after destroy is dropped: a logout is never undone', async () => {
    const id = newId();
    await store.set(id, sess({ user: 'mallory' }));
    await store.destroy(id);
    const dropped = [];
    store.on('dropped', (sid) => dropped.push(sid));
    await store.set(id, sess({ user: 'mallory', n: 2 }));
    expect(dropped).toEqual([id]);
    expect(await store.get(id)).toBeNull();
  });

  test('length counts the live sessions of the node', async () => {
    // Earlier tests' short-TTL sessions may expire at any moment, so the
    // count is compared with the node's own, read just before and after.
    const agrees = async () => {
      const a = (await nodeStats(server.address)).sessions;
      const n = await store.length();
      const b = (await nodeStats(server.address)).sessions;
      return n <= Math.max(a, b) && n >= Math.min(a, b);
    };
    await waitFor(agrees, 'length to agree with NodeStats');
    const id = newId();
    await store.set(id, sess({ n: 1 }));
    await waitFor(agrees, 'length to agree after a set');
    await store.destroy(id);
    await waitFor(agrees, 'length to agree after a destroy');
  });

  test('all and ids list every live session (ListSessions), never a destroyed or expired one', async () => {
    const live = [newId(), newId(), newId()];
    for (const [i, id] of live.entries()) await store.set(id, sess({ user: `lister${i}`, n: i }));
    const destroyed = newId();
    await store.set(destroyed, sess({ n: 9 }));
    await store.destroy(destroyed);
    const short = newId();
    await store.set(short, sess({ n: 8 }, 1000));

    const all = await store.all();
    expect(Array.isArray(all)).toBe(true);
    const byId = new Map(all.map((s) => [s.id, s]));
    expect(all.length).toBe(byId.size);  // each once
    for (const [i, id] of live.entries()) {
      expect(byId.get(id)).toMatchObject({ id, user: `lister${i}`, n: i });
      expect(byId.get(id).cookie).toBeDefined();
    }
    expect(byId.has(destroyed)).toBe(false);
    const ids = await new Promise((resolve, reject) => store.ids((e, v) => (e ? reject(e) : resolve(v))));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of live) expect(ids).toContain(id);
    expect(ids).not.toContain(destroyed);
    // The 1 s cookie ends its session: it leaves the listing.
    await waitFor(async () => !(await store.ids()).includes(short), 'the expired session to leave ids()');
    expect((await store.all()).map((s) => s.id)).not.toContain(short);
    // The callback form, as express-session calls it.
    const viaCallback = await new Promise((resolve, reject) => store.all((e, v) => (e ? reject(e) : resolve(v))));
    expect(viaCallback.map((s) => s.id)).toEqual(expect.arrayContaining(live));
  });

  test('clear refuses unless allowClear: every session of the cluster would go', async () => {
    await expect(store.clear()).rejects.toMatchObject({ code: 'SESSIONGRID_CLEAR_NOT_ALLOWED' });
    const err = await new Promise((resolve) => store.clear((e) => resolve(e)));
    expect(err.message).toMatch(/allowClear/);
    expect((await store.ids()).length).toBeGreaterThan(0);
  });

  test('on their own server: all and ids page past 1000 sessions, clear deletes each (others\' too)', async () => {
    const own = await startServer({ args: ['--allow-client-ids'] });
    const s = new SessionGridStore({ target: own.address, allowClear: true, timeout: 5000 });
    const other = rawClient(own.address);
    try {
      const ids = Array.from({ length: 1105 }, newId);
      for (let i = 0; i < ids.length; i += 50) {
        await Promise.all(ids.slice(i, i + 50).map((id, k) => s.set(id, sess({ k: i + k }))));
      }
      // A session another client wrote (not JSON): listed by ids, left out
      // of all, deleted by clear.
      const foreign = (await other.call('Create', { data: Buffer.from('cart=3') })).session.id;
      const listed = await s.ids();
      expect(listed.length).toBe(ids.length + 1);
      expect(new Set(listed)).toEqual(new Set([...ids, foreign]));
      const all = await s.all();
      expect(all.length).toBe(ids.length);
      expect(all.map((x) => x.id).sort()).toEqual([...ids].sort());
      expect(await s.clear()).toBe(ids.length + 1);
      expect(await s.ids()).toEqual([]);
      expect(await s.get(ids[0])).toBeNull();
      await expect(other.call('Get', { id: foreign })).rejects.toMatchObject({ code: NOT_FOUND });
      // A cleared id stays deleted: a late write of it is dropped.
      await s.set(ids[1], sess({ late: true }));
      expect(await s.get(ids[1])).toBeNull();
    } finally {
      s.close();
      other.close();
    }
  }, 60000);

  test('adminToken: a server with --admin-token-file lists only for the token holder', async () => {
    const dir = tempDir('token');
    const file = require('path').join(dir, 'admin-token');
    require('fs').writeFileSync(file, 'listing-secret-token\n');
    const own = await startServer({ args: ['--allow-client-ids', `--admin-token-file=${file}`] });
    const holder = new SessionGridStore({ target: own.address, adminToken: 'listing-secret-token', allowClear: true });
    const stranger = new SessionGridStore({ target: own.address, allowClear: true });
    const wrong = new SessionGridStore({ target: own.address, adminToken: 'guess' });
    try {
      const id = newId();
      await stranger.set(id, sess({ n: 1 }));  // the session calls need no token
      expect(await holder.ids()).toEqual([id]);
      await expect(stranger.ids()).rejects.toMatchObject({ code: 'SESSIONGRID_UNAUTHENTICATED' });
      await expect(stranger.clear()).rejects.toMatchObject({ code: 'SESSIONGRID_UNAUTHENTICATED' });
      await expect(wrong.all()).rejects.toMatchObject({ code: 'SESSIONGRID_PERMISSION_DENIED' });
      expect(await stranger.get(id)).toMatchObject({ n: 1 });
      expect(await holder.clear()).toBe(1);
    } finally {
      holder.close();
      stranger.close();
      wrong.close();
    }
    expect(() => new SessionGridStore({ target: own.address, adminToken: '' })).toThrow(/adminToken/);
  });

  test('principal option: listByPrincipal and destroyByPrincipal (log out everywhere)', async () => {
    const ids = [newId(), newId(), newId()];
    for (const id of ids) await store.set(id, sess({ user: 'judy' }));
    const listed = await store.listByPrincipal('judy');
    expect(Object.keys(listed).sort()).toEqual([...ids].sort());
    expect(listed[ids[0]].user).toBe('judy');
    expect(await store.destroyByPrincipal('judy')).toBe(3);
    for (const id of ids) expect(await store.get(id)).toBeNull();
  });

  test('a server without --allow-client-ids: the refusal reaches the callback, with the flag named', async () => {
    const strict = await startServer();
    const s = new SessionGridStore({ target: strict.address });
    try {
      const err = await new Promise((resolve) => s.set(newId(), sess({ n: 1 }), resolve));
      expect(err).toBeInstanceOf(Error);
      expect(err.code).toBe('SESSIONGRID_PERMISSION_DENIED');
      expect(err.message).toMatch(/--allow-client-ids/);
    } finally {
      s.close();
    }
  });
});

describe('SessionGridStore when the service is unavailable', () => {
  let cookie;
  beforeAll(async () => {
    const b = new Browser(app.url, { headers: BROWSER_HEADERS });
    await b.post('/api/auth/login', { username: 'kim', password: 'pw' });
    cookie = b.cookies.get('connect.sid');
    expect(cookie).toBeDefined();
  });

  async function against(target, timeout) {
    const s = newStore({ target, timeout });
    const down = await listen(sessionApp(s));
    try {
      const b = new Browser(down.url, { headers: BROWSER_HEADERS });
      b.cookies.set('connect.sid', cookie);
      const results = [];
      for (const [method, p, body] of [
        ['GET', '/api/user/whoami'],
        ['POST', '/api/auth/login', { username: 'kim', password: 'pw' }],
        ['GET', '/'],
      ]) {
        const started = Date.now();
        const r = await b.request(method, p, { json: body, timeoutMs: 10000 });
        results.push({ ...r, ms: Date.now() - started });
      }
      return results;
    } finally {
      await down.close();
    }
  }

  test('nothing listening: every request gets the error from express at once (503)', async () => {
    const results = await against(`127.0.0.1:${await freePort()}`, 1000);
    for (const r of results) {
      expect(r.status).toBe(503);
      expect(r.ms).toBeLessThan(3000);
    }
    expect(results[0].data.error).toMatch(/SessionGrid Get failed: UNAVAILABLE/);
  });

  test('a service that never answers: the deadline ends each call (no hang)', async () => {
    const hole = await blackHole();
    try {
      const results = await against(hole.address, 300);
      for (const r of results) {
        expect(r.status).toBe(503);
        expect(r.ms).toBeLessThan(2500);
      }
      expect(results[0].data.error).toMatch(/DEADLINE_EXCEEDED|UNAVAILABLE/);
    } finally {
      await hole.close();
    }
  });
});
