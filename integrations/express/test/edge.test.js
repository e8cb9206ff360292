'use strict';
// Behind the edge: the demo app on edgeSession(), sessiongrid-edge in
// front of it, sessiongrid-server behind the edge; all real, on loopback.
const { edgeSession } = require('..');
const { createDemoApp } = require('../examples/demo-app');
const {
  BROWSER_HEADERS, Browser, listen, nodeStats, rawClient, startEdge, startServer, stop, stopAll, waitFor,
} = require('./harness');
const { describeFlows, sessionCookieLine } = require('./flows');

let server;
let app;
let edge;
let app4;
let edge4;
let raw;

// The session id inside an express-session style cookie value.
function idOf(cookieValue) {
  const v = decodeURIComponent(cookieValue);
  expect(v.startsWith('s:')).toBe(true);
  return v.slice(2, v.lastIndexOf('.'));
}

async function recordOf(browser) {
  return (await raw.call('Get', { id: idOf(browser.cookies.get('connect.sid')) })).session;
}

beforeAll(async () => {
  server = await startServer();
  raw = rawClient(server.address);
  app = await listen(createDemoApp(edgeSession({ principal: (s) => s.user })));
  edge = await startEdge({ upstream: app.url, service: server.address });
  app4 = await listen(createDemoApp(edgeSession({ principal: (s) => s.user }), { express: require('express4') }));
  edge4 = await startEdge({ upstream: app4.url, service: server.address });
});

afterAll(async () => {
  if (raw) raw.close();
  if (app) await app.close();
  if (app4) await app4.close();
  await stopAll();
});

describeFlows('behind sessiongrid-edge, edgeSession()', () => edge);
describeFlows('behind sessiongrid-edge, edgeSession(), express 4', () => edge4);

describe('edgeSession behind the edge', () => {
  const browser = () => new Browser(edge.url, { headers: BROWSER_HEADERS });

  test('lazy: reads of no session and of an unchanged session write nothing', async () => {
    const b = browser();
    const before = await nodeStats(server.address);
    for (let i = 0; i < 5; i++) await b.get('/api/user/whoami');
    const afterAnon = await nodeStats(server.address);
    expect(afterAnon.creates).toBe(before.creates);
    expect(afterAnon.sessions).toBe(before.sessions);

    await b.post('/api/user/counter');
    const created = await nodeStats(server.address);
    expect(created.creates).toBe(before.creates + 1);
    const version = (await recordOf(b)).version;
    for (let i = 0; i < 5; i++) {
      const r = await b.get('/api/user/whoami');
      expect(r.data.counter).toBe(1);
    }
    expect((await recordOf(b)).version).toEqual(version);
  });

  test('the session JSON is what the server stores; a login sets the principal', async () => {
    const b = browser();
    await b.post('/api/user/counter');
    let record = await recordOf(b);
    expect(JSON.parse(Buffer.from(record.data).toString())).toEqual({ counter: 1 });
    expect(record.principal || '').toBe('');
    await b.post('/api/auth/login', { username: 'frank', password: 'pw' });
    record = await recordOf(b);
    expect(JSON.parse(Buffer.from(record.data).toString())).toEqual({ user: 'frank', counter: 1 });
    expect(record.principal).toBe('frank');
    expect(record.session_class).toBe('SESSION_CLASS_AUTHENTICATED');
  });

  test('remember me reaches the server as the session TTL', async () => {
    const b = browser();
    await b.post('/api/auth/login', { username: 'grace', password: 'pw', remember: true });
    const record = await recordOf(b);
    const ttl = Number(record.expire_time.seconds) - Date.now() / 1000;
    expect(ttl).toBeGreaterThan(30 * 86400 - 60);
    expect(ttl).toBeLessThanOrEqual(30 * 86400 + 5);
  });

  test('a bot gets no session even when the app writes to req.session', async () => {
    const bot = new Browser(edge.url, {
      headers: { ...BROWSER_HEADERS, 'User-Agent': 'Googlebot/2.1 (+http://www.google.com/bot.html)' },
    });
    const before = await nodeStats(server.address);
    const r = await bot.post('/api/user/counter');
    expect(r.status).toBe(200);
    expect(r.data).toEqual({ counter: 1, user: null });
    expect(sessionCookieLine(r.setCookies)).toBeUndefined();
    expect([...r.headers.keys()].filter((k) => k.startsWith('x-session'))).toEqual([]);
    expect((await nodeStats(server.address)).creates).toBe(before.creates);
  });

  test('client-sent X-Session-* headers cannot forge a session through the edge', async () => {
    const b = browser();
    await b.post('/api/auth/login', { username: 'heidi', password: 'pw' });
    const id = idOf(b.cookies.get('connect.sid'));
    const forger = new Browser(edge.url, {
      headers: {
        ...BROWSER_HEADERS,
        'X-Session-Status': 'loaded',
        'X-Session-Id': id,
        'X-Session-Data': Buffer.from(JSON.stringify({ user: 'heidi' })).toString('base64'),
      },
    });
    expect((await forger.get('/api/user/whoami')).data).toEqual({ loggedIn: false, user: null, counter: 0 });
  });
});

describe('edgeSession with cookie.maxAge: sessions expire on the server', () => {
  let shortApp;
  let shortEdge;
  beforeAll(async () => {
    shortApp = await listen(createDemoApp(edgeSession({ cookie: { maxAge: 2000 } })));
    shortEdge = await startEdge({ upstream: shortApp.url, service: server.address, args: ['--cookie-max-age=2s'] });
  });
  afterAll(async () => {
    if (shortEdge) await stop(shortEdge.proc);
    if (shortApp) await shortApp.close();
  });

  test('a 2 s session is created with TTL 2 s and is gone after it', async () => {
    const b = new Browser(shortEdge.url, { headers: BROWSER_HEADERS });
    const start = Date.now();
    expect((await b.post('/api/user/counter')).data.counter).toBe(1);
    const record = await recordOf(b);
    const ttl = Number(record.expire_time.seconds) - start / 1000;
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3);
    // Expiry is on the server. Every request through the edge slides it
    // (Get with touch), so watch without touching, bounded.
    const id = record.id;
    await waitFor(async () => {
      try {
        await raw.call('Get', { id });
        return false;
      } catch (err) {
        return err.code === 5; // NOT_FOUND
      }
    }, 'the session to expire', { timeoutMs: 10000, intervalMs: 100 });
    expect(Date.now() - start).toBeGreaterThanOrEqual(1500);
    const r = await b.get('/api/user/whoami');
    expect(r.data).toEqual({ loggedIn: false, user: null, counter: 0 });
  });
});

describe('edgeSession when the session service is down', () => {
  test('the error reaches express (503 from its error handler), promptly', async () => {
    const b = new Browser(edge.url, { headers: BROWSER_HEADERS });
    await b.post('/api/auth/login', { username: 'ivan', password: 'pw' });
    await stop(server.proc);
    const started = Date.now();
    const r = await b.get('/api/user/whoami', { timeoutMs: 5000 });
    expect(r.status).toBe(503);
    expect(r.data.error).toMatch(/unavailable/);
    expect(Date.now() - started).toBeLessThan(3000);
    // Bounded: every following request answers too (breaker open or not).
    for (let i = 0; i < 5; i++) {
      expect((await b.post('/api/user/counter', undefined, { timeoutMs: 5000 })).status).toBe(503);
    }
  });
});
