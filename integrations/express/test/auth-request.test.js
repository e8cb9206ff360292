'use strict';
// Behind nginx auth_request: Debian's real nginx in front of the demo app
// (an ordinary express-session app on edgeSession({ authRequest })), every
// request checked by sessiongrid-edge --auth-request-path (no --upstream:
// the edge never proxies here), sessions in a real sessiongrid-server; the
// app writes its changes back through the edge's commit endpoint. Two
// nginx server blocks: one asks a --fail-mode=open edge, one a
// --fail-mode=closed edge (same cookie secret, same session service).
const crypto = require('crypto');
const http = require('http');
const { edgeSession } = require('..');
const { createDemoApp } = require('../examples/demo-app');
const {
  BROWSER_HEADERS, Browser, blackHole, freePort, listen, nodeStats, rawClient, startEdge, startServer, stop, stopAll,
} = require('./harness');
const { describeFlows, sessionCookieLine } = require('./flows');
const { AUTH_PATH, startNginx } = require('./nginx');

const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';

let server;
let edgeOpen;
let edgeClosed;
let app;
let nginx;
let raw;

beforeAll(async () => {
  server = await startServer();
  raw = rawClient(server.address);
  const secrets = [crypto.randomBytes(32).toString('hex')];
  const args = [`--auth-request-path=${AUTH_PATH}`, '--breaker-cooldown=30s'];
  edgeOpen = await startEdge({ service: server.address, secrets, args });
  edgeClosed = await startEdge({ service: server.address, secrets, args: [...args, '--fail-mode=closed'] });
  app = await listen(createDemoApp(edgeSession({
    principal: (s) => s.user,
    authRequest: `${edgeOpen.url}${AUTH_PATH}`,
  })));
  nginx = await startNginx([
    { edge: edgeOpen.url, app: app.url },
    { edge: edgeClosed.url, app: app.url },
  ]);
});

afterAll(async () => {
  if (raw) raw.close();
  if (nginx) await nginx.stop();
  if (app) await app.close();
  await stopAll();
});

// Sum of the samples of /metrics lines starting with `prefix`.
async function metric(edge, prefix) {
  const text = await (await fetch(`${edge.adminUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(prefix)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

function idOf(cookieValue) {
  const v = decodeURIComponent(cookieValue);
  return v.slice(2, v.lastIndexOf('.'));
}

// A raw request to the edge itself, optionally from another loopback
// source address. Resolves to { status, headers, body }.
function edgeRequest(edge, { method = 'GET', path = AUTH_PATH, headers = {}, localAddress } = {}) {
  const url = new URL(path, edge.url);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, localAddress, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
    req.end();
  });
}

describeFlows('behind nginx auth_request, edgeSession({ authRequest })', () => ({ url: nginx.urls[0] }));

describe('nginx auth_request in front of the demo app', () => {
  const browser = (url = nginx.urls[0]) => new Browser(url, { headers: BROWSER_HEADERS });

  test('bots, health checks and static files bypass with zero session calls', async () => {
    const callsBefore = await metric(edgeOpen, 'sg_edge_session_calls_total');
    const bypassBefore = await metric(edgeOpen, 'sg_edge_requests_total{decision="bypass"');
    const statsBefore = await nodeStats(server.address);

    const bot = new Browser(nginx.urls[0], { headers: { ...BROWSER_HEADERS, 'User-Agent': GOOGLEBOT } });
    for (let i = 0; i < 3; i++) {
      // The app writes to req.session; a bypassed request never commits.
      const r = await bot.post('/api/user/counter');
      expect(r.status).toBe(200);
      expect(r.data).toEqual({ counter: 1, user: null });
      expect(sessionCookieLine(r.setCookies)).toBeUndefined();
    }
    const b = browser();
    const health = await b.get('/api/health');
    expect(health.status).toBe(200);
    expect(health.data.status).toBe('ok');
    const asset = await b.get('/assets/app.js');
    expect(asset.status).toBe(200);
    expect(asset.data).toContain('demo asset app.js');
    for (const r of [health, asset]) expect(sessionCookieLine(r.setCookies)).toBeUndefined();

    expect(await metric(edgeOpen, 'sg_edge_session_calls_total')).toBe(callsBefore);
    expect(await metric(edgeOpen, 'sg_edge_requests_total{decision="bypass"')).toBe(bypassBefore + 5);
    const statsAfter = await nodeStats(server.address);
    expect(statsAfter.creates).toBe(statsBefore.creates);
    expect(statsAfter.sessions).toBe(statsBefore.sessions);

    // The same request from a browser does cost a session.
    const counted = await b.post('/api/user/counter');
    expect(sessionCookieLine(counted.setCookies)).toBeDefined();
    expect(await metric(edgeOpen, 'sg_edge_session_calls_total')).toBeGreaterThan(callsBefore);
    expect((await nodeStats(server.address)).creates).toBe(statsBefore.creates + 1);
  });

  test('the app\'s own session Set-Cookie never reaches the browser, on bypassed requests too', async () => {
    const bot = new Browser(nginx.urls[0], { headers: { ...BROWSER_HEADERS, 'User-Agent': GOOGLEBOT } });
    const r = await bot.post('/api/auth/logout'); // the demo app calls res.clearCookie('connect.sid')
    expect(r.status).toBe(200);
    expect(sessionCookieLine(r.setCookies)).toBeUndefined();
  });

  test('a login creates the session on the server, the counter counts, logout clears the cookie', async () => {
    const b = browser();
    const login = await b.post('/api/auth/login', { username: 'alice', password: 'pw' });
    expect(login.status).toBe(200);
    const line = sessionCookieLine(login.setCookies);
    expect(line).toMatch(/^connect\.sid=s%3A/);
    expect(line).toMatch(/HttpOnly/i);
    const id = idOf(b.cookies.get('connect.sid'));
    let record = (await raw.call('Get', { id })).session;
    expect(record.principal).toBe('alice');
    expect(JSON.parse(Buffer.from(record.data).toString())).toEqual({ user: 'alice', counter: 0 });

    for (let i = 1; i <= 3; i++) {
      const r = await b.post('/api/user/counter');
      expect(r.data).toEqual({ counter: i, user: 'alice' });
      expect(sessionCookieLine(r.setCookies)).toBeUndefined(); // same session, no new cookie
    }
    record = (await raw.call('Get', { id })).session;
    expect(JSON.parse(Buffer.from(record.data).toString()).counter).toBe(3);

    const out = await b.post('/api/auth/logout');
    expect(out.status).toBe(200);
    const clear = sessionCookieLine(out.setCookies);
    expect(clear).toMatch(/^connect\.sid=;/);
    expect(out.setCookies.filter((l) => l.startsWith('connect.sid='))).toHaveLength(1);
    expect(b.cookies.get('connect.sid')).toBeUndefined();
    await expect(raw.call('Get', { id })).rejects.toMatchObject({ code: 5 });
  });

  test('a forged cookie is cleared; a write on it starts a real session instead', async () => {
    const forged = `s%3A${'A'.repeat(43)}.${'B'.repeat(43)}`;
    const b = browser();
    b.cookies.set('connect.sid', forged);
    const read = await b.get('/api/user/whoami');
    expect(read.status).toBe(200);
    expect(read.data).toEqual({ loggedIn: false, user: null, counter: 0 });
    expect(sessionCookieLine(read.setCookies)).toMatch(/^connect\.sid=;/);
    expect(b.cookies.get('connect.sid')).toBeUndefined();

    b.cookies.set('connect.sid', forged);
    const write = await b.post('/api/user/counter');
    expect(write.data).toEqual({ counter: 1, user: null });
    // One Set-Cookie for the session, and it is the new session's, not
    // the clearing one (which would come after it and win).
    const lines = write.setCookies.filter((l) => l.startsWith('connect.sid='));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^connect\.sid=s%3A/);
    expect((await b.post('/api/user/counter')).data).toEqual({ counter: 2, user: null });
  });

  test('an expired session\'s cookie is cleared', async () => {
    const b = browser();
    await b.post('/api/user/counter');
    const id = idOf(b.cookies.get('connect.sid'));
    await raw.call('Delete', { id });
    const r = await b.get('/api/user/whoami');
    expect(r.data).toEqual({ loggedIn: false, user: null, counter: 0 });
    expect(sessionCookieLine(r.setCookies)).toMatch(/^connect\.sid=;/);
  });

  test('the check answers nginx\'s questions; bad ones are refused with a reason', async () => {
    const browserHeaders = { 'User-Agent': BROWSER_HEADERS['User-Agent'], 'X-Forwarded-For': '203.0.113.9' };
    const none = await edgeRequest(edgeOpen, { headers: { ...browserHeaders, 'X-Original-URI': '/api/user/whoami' } });
    expect(none.status).toBe(200);
    expect(none.headers['x-session-status']).toBe('none');
    expect(none.headers['x-session-bypass']).toBeUndefined();

    // ingress-nginx's X-Original-URL, a bot: bypassed, with the reason.
    const bot = await edgeRequest(edgeOpen, {
      headers: { 'User-Agent': GOOGLEBOT, 'X-Original-URL': 'https://shop.example/api/user/whoami', 'X-Original-Method': 'GET' },
    });
    expect(bot.status).toBe(200);
    expect(bot.headers['x-session-status']).toBeUndefined();
    expect(bot.headers['x-session-bypass']).toMatch(/bot/i);

    const missing = await edgeRequest(edgeOpen, { headers: browserHeaders });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatch(/X-Original-URI/);
    // The check never reaches an upstream; anything else has none here.
    expect((await edgeRequest(edgeOpen, { path: '/api/user/whoami', headers: browserHeaders })).status).toBe(404);
    expect((await edgeRequest(edgeOpen, { path: `${AUTH_PATH}/commit` })).status).toBe(405);
  });

  test('the endpoints answer only --trusted-proxies / --auth-request-allow peers', async () => {
    // The harness trusts 127.0.0.1/32 only: 127.0.0.2 is another host.
    const headers = { 'X-Original-URI': '/api/user/whoami', 'X-Session-Set': Buffer.from('{"x":1}').toString('base64') };
    const before = (await nodeStats(server.address)).creates;
    const refusedBefore = await metric(edgeOpen, 'sg_edge_local_replies_total{code="403"}');
    const commit = await edgeRequest(edgeOpen, { method: 'POST', path: `${AUTH_PATH}/commit`, headers, localAddress: '127.0.0.2' });
    expect(commit.status).toBe(403);
    const check = await edgeRequest(edgeOpen, { headers, localAddress: '127.0.0.2' });
    expect(check.status).toBe(403);
    expect((await nodeStats(server.address)).creates).toBe(before);
    expect(await metric(edgeOpen, 'sg_edge_local_replies_total{code="403"}')).toBe(refusedBefore + 2);
    // From an allowed peer the same commit creates a session.
    const ok = await edgeRequest(edgeOpen, { method: 'POST', path: `${AUTH_PATH}/commit`, headers });
    expect(ok.status).toBe(200);
    expect(ok.headers['set-cookie'][0]).toMatch(/^connect\.sid=s%3A/);
    expect((await nodeStats(server.address)).creates).toBe(before + 1);
  });

  test('a commit with the version the check read is compare-and-set: a concurrent write is re-read, a destroyed session stays destroyed', async () => {
    const b = browser();
    await b.post('/api/user/counter');
    const cookie = `connect.sid=${b.cookies.get('connect.sid')}`;
    const check = await edgeRequest(edgeOpen, {
      headers: { ...BROWSER_HEADERS, Cookie: cookie, 'X-Original-URI': '/api/user/counter' },
    });
    expect(check.headers['x-session-status']).toBe('loaded');
    const version = check.headers['x-session-version'];
    expect(version).toMatch(/^\d+\.\d+\./);
    const conflictsBefore = await metric(edgeOpen, 'sg_edge_session_write_conflicts_total{resolution="overwritten"}');
    // Another request wrote meanwhile: the version is stale.
    await b.post('/api/user/counter');
    const set = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64');
    const late = await edgeRequest(edgeOpen, {
      method: 'POST', path: `${AUTH_PATH}/commit`,
      headers: { Cookie: cookie, 'X-Session-Version': version, 'X-Session-Set': set({ counter: 100 }) },
    });
    expect(late.status).toBe(200);
    expect(await metric(edgeOpen, 'sg_edge_session_write_conflicts_total{resolution="overwritten"}')).toBe(conflictsBefore + 1);
    expect((await b.get('/api/user/whoami')).data.counter).toBe(100);

    // Logout, then a write that read the session before it: dropped.
    await b.post('/api/auth/logout');
    const dropped = await edgeRequest(edgeOpen, {
      method: 'POST', path: `${AUTH_PATH}/commit`,
      headers: { Cookie: cookie, 'X-Session-Version': version, 'X-Session-Set': set({ counter: 101 }) },
    });
    expect(dropped.status).toBe(200);
    expect(dropped.headers['set-cookie']).toBeUndefined();
    await expect(raw.call('Get', { id: idOf(cookie.slice('connect.sid='.length)) })).rejects.toMatchObject({ code: 5 });
  });
});

describe('nginx auth_request with the anonymous session limit', () => {
  test('--anon-session-over-limit=reject: the app answers 429 with Retry-After, per client address', async () => {
    const limited = await startEdge({
      service: server.address,
      args: [`--auth-request-path=${AUTH_PATH}`, '--anon-session-rate=0.1',
        '--anon-session-burst=2', '--anon-session-over-limit=reject'],
    });
    const limitedApp = await listen(createDemoApp(edgeSession({
      principal: (s) => s.user,
      authRequest: `${limited.url}${AUTH_PATH}`,
    })));
    const proxy = await startNginx([{ edge: limited.url, app: limitedApp.url }]);
    try {
      const visitor = (ip) => new Browser(proxy.urls[0], {
        headers: { ...BROWSER_HEADERS, 'X-Forwarded-For': ip },
      });
      const before = await nodeStats(server.address);
      for (let i = 0; i < 2; i++) {
        const r = await visitor('198.51.100.20').post('/api/user/counter');
        expect(r.status).toBe(200);
        expect(sessionCookieLine(r.setCookies)).toBeDefined();
      }
      const over = await visitor('198.51.100.20').post('/api/user/counter');
      expect(over.status).toBe(429);
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(sessionCookieLine(over.setCookies)).toBeUndefined();
      // Another address is its own client (the app passed the address on).
      const other = await visitor('198.51.100.21').post('/api/user/counter');
      expect(other.status).toBe(200);
      expect((await nodeStats(server.address)).creates).toBe(before.creates + 3);
      expect(await metric(limited, 'sg_edge_anon_sessions_limited_total{action="reject"}')).toBe(1);
    } finally {
      await proxy.stop();
      await limitedApp.close();
    }
  });
});

describe('nginx auth_request when the session service is down', () => {
  test('fail-open: the app is told (503 from its error handler); fail-closed: nginx answers 503; bypassed requests still work', async () => {
    const open = new Browser(nginx.urls[0], { headers: BROWSER_HEADERS });
    const closed = new Browser(nginx.urls[1], { headers: BROWSER_HEADERS });
    await open.post('/api/auth/login', { username: 'oscar', password: 'pw' });
    await closed.post('/api/auth/login', { username: 'clara', password: 'pw' });
    expect((await closed.get('/api/user/whoami')).data.user).toBe('clara');
    await stop(server.proc);

    const started = Date.now();
    const r1 = await open.get('/api/user/whoami', { timeoutMs: 5000 });
    expect(r1.status).toBe(503);
    expect(r1.data.error).toMatch(/unavailable/);
    const r2 = await closed.get('/api/user/whoami', { timeoutMs: 5000 });
    expect(r2.status).toBe(503);
    expect(r2.data).toMatch(/session service unavailable/);
    expect(Date.now() - started).toBeLessThan(4000);
    // Neither cookie was cleared: the session may well still exist.
    expect(sessionCookieLine(r1.setCookies)).toBeUndefined();
    expect(sessionCookieLine(r2.setCookies)).toBeUndefined();
    // Bounded: the following requests answer too (the breaker opens).
    for (let i = 0; i < 5; i++) {
      expect((await closed.get('/api/user/whoami', { timeoutMs: 5000 })).status).toBe(503);
    }
    // What needs no session does not need the service.
    const bot = new Browser(nginx.urls[1], { headers: { ...BROWSER_HEADERS, 'User-Agent': GOOGLEBOT } });
    expect((await bot.get('/api/user/whoami')).status).toBe(200);
    expect((await closed.get('/assets/site.css')).status).toBe(200);

    // A commit that cannot be applied: 503 when closed, 200 flagged when
    // open (the response goes out without the change, as when proxying).
    const headers = { 'X-Session-Set': Buffer.from('{"n":1}').toString('base64') };
    const failedClosed = await edgeRequest(edgeClosed, { method: 'POST', path: `${AUTH_PATH}/commit`, headers });
    expect(failedClosed.status).toBe(503);
    const failedOpen = await edgeRequest(edgeOpen, { method: 'POST', path: `${AUTH_PATH}/commit`, headers });
    expect(failedOpen.status).toBe(200);
    expect(failedOpen.headers['x-session-result']).toBe('failed');
    expect(failedOpen.headers['set-cookie']).toBeUndefined();
  });
});

// The middleware's side alone: requests as nginx would pass them (from
// loopback, X-Session-Status set), the commit going nowhere.
describe('edgeSession({ authRequest }) when the edge cannot be reached', () => {
  const asNginx = { ...BROWSER_HEADERS, 'X-Session-Status': 'none' };

  test('a write answers 503 by default, or goes out unchanged with unavailable: continue', async () => {
    const port = await freePort();
    const strict = await listen(createDemoApp(edgeSession({ authRequest: `http://127.0.0.1:${port}${AUTH_PATH}` })));
    const lenient = await listen(createDemoApp(edgeSession({
      authRequest: `http://127.0.0.1:${port}${AUTH_PATH}`, unavailable: 'continue',
    })));
    try {
      const r = await new Browser(strict.url, { headers: asNginx }).post('/api/user/counter');
      expect(r.status).toBe(503);
      expect(r.data.error).toMatch(/unavailable/);
      expect(sessionCookieLine(r.setCookies)).toBeUndefined();
      const ok = await new Browser(lenient.url, { headers: asNginx }).post('/api/user/counter');
      expect(ok.status).toBe(200);
      expect(ok.data).toEqual({ counter: 1, user: null });
      expect(sessionCookieLine(ok.setCookies)).toBeUndefined();
      // Reads need no commit: they never wait for the edge.
      expect((await new Browser(strict.url, { headers: asNginx }).get('/api/user/whoami')).status).toBe(200);
    } finally {
      await strict.close();
      await lenient.close();
    }
  });

  test('an edge that does not answer costs at most authRequestTimeout', async () => {
    const hole = await blackHole();
    const slow = await listen(createDemoApp(edgeSession({
      authRequest: `http://${hole.address}${AUTH_PATH}`, authRequestTimeout: 300,
    })));
    try {
      const started = Date.now();
      const r = await new Browser(slow.url, { headers: asNginx }).post('/api/user/counter');
      expect(r.status).toBe(503);
      expect(r.data.error).toMatch(/timed out/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await slow.close();
      await hole.close();
    }
  });

  test('bad authRequest options are refused at once', () => {
    expect(() => edgeSession({ authRequest: 'not a url' })).toThrow(/authRequest/);
    expect(() => edgeSession({ authRequest: 'https://edge:8081/_sessiongrid/auth' })).toThrow(/authRequest/);
    expect(() => edgeSession({ authRequest: 'http://edge:8081/' })).toThrow(/authRequest/);
    expect(() => edgeSession({ authRequest: 'http://edge:8081/a?b=1' })).toThrow(/authRequest/);
    expect(() => edgeSession({ authRequest: 'http://edge:8081/a', authRequestTimeout: 0 })).toThrow(/authRequestTimeout/);
    expect(() => edgeSession({ authRequest: 'http://edge:8081/a', cookieName: 'a b' })).toThrow(/cookieName/);
    expect(() => edgeSession({ authRequest: 'http://edge:8081/_sessiongrid/auth' })).not.toThrow();
  });
});
