'use strict';
// edgeSession() against the header protocol itself: requests carry the
// X-Session-* fields the edge would send (edge/session_protocol.h), and
// the tests read the directives the middleware answers. No edge here, so
// each directive can be checked exactly.
const express = require('express');
const { edgeSession } = require('..');
const { listen, waitFor } = require('./harness');

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64');
const unb64 = (s) => JSON.parse(Buffer.from(s, 'base64').toString());

function directives(response) {
  const out = {};
  for (const [k, v] of response.headers) {
    if (k.startsWith('x-session-')) out[k] = v;
  }
  return out;
}

function loaded(data, { id = 'A'.repeat(43), principal } = {}) {
  const h = { 'X-Session-Status': 'loaded', 'X-Session-Id': id, 'X-Session-Data': b64(data) };
  if (principal) h['X-Session-Principal'] = principal;
  return h;
}

function buildApp(options, expressModule = express) {
  const app = expressModule();
  app.use(edgeSession(options));
  app.get('/read', (req, res) => res.json({
    id: req.sessionID ?? null,
    sessionId: req.session.id ?? null,
    status: req.sessionStatus,
    principal: req.sessionPrincipal ?? null,
    data: { ...req.session, cookie: undefined },
    keys: Object.keys(req.session).filter((k) => k !== 'cookie'),
    maxAge: req.session.cookie.maxAge,
  }));
  app.get('/set', (req, res) => {
    for (const [k, v] of Object.entries(req.query)) req.session[k] = v;
    res.json({});
  });
  app.get('/same', (req, res) => {
    // Assigning the value it already has is no change.
    req.session.n = req.session.n; // eslint-disable-line no-self-assign
    res.json({});
  });
  app.get('/save', (req, res, next) => req.session.save((err) => (err ? next(err) : res.json({}))));
  app.get('/regenerate', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err);
      for (const [k, v] of Object.entries(req.query)) req.session[k] = v;
      res.json({ id: req.sessionID ?? null, data: { ...req.session, cookie: undefined } });
    });
  });
  app.get('/destroy', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ session: req.session === undefined ? 'gone' : 'kept' })));
  });
  app.get('/reload', (req, res, next) => {
    req.session.n = 'changed';
    req.session.reload((err) => (err ? next(err) : res.json({ n: req.session.n })));
  });
  app.get('/maxage', (req, res) => {
    req.session.cookie.maxAge = Number(req.query.ms);
    res.json({});
  });
  app.get('/expires', (req, res) => {
    req.session.cookie.expires = new Date(Date.now() + Number(req.query.ms));
    res.json({});
  });
  app.get('/touch', (req, res) => {
    req.session.touch();
    res.json({});
  });
  app.get('/stream', (req, res) => {
    res.write('head sent; ');
    req.session.late = 1;
    res.end('done');
  });
  app.use((err, req, res, next) => { // eslint-disable-line no-unused-vars
    res.status(err.status || 500).json({ error: err.message, code: err.code });
  });
  return app;
}

describe.each([
  ['express 5', express],
  ['express 4', require('express4')],
])('%s', (expressName, expressModule) => {
  let plain;
  let withPrincipal;
  let withMaxAge;
  let untrusting;
  let continuing;
  let lateReporting;
  const lateChanges = [];

  beforeAll(async () => {
    plain = await listen(buildApp(undefined, expressModule));
    withPrincipal = await listen(buildApp({ principal: (s) => s.user }, expressModule));
    withMaxAge = await listen(buildApp({ cookie: { maxAge: 3600 * 1000 } }, expressModule));
    untrusting = await listen(buildApp({ trust: ['192.0.2.1', '10.0.0.0/8'] }, expressModule));
    continuing = await listen(buildApp({ unavailable: 'continue' }, expressModule));
    lateReporting = await listen(buildApp({ onLateChange: (req) => lateChanges.push(req.path) }, expressModule));
  });

  afterAll(async () => {
    for (const s of [plain, withPrincipal, withMaxAge, untrusting, continuing, lateReporting]) if (s) await s.close();
  });

  async function get(server, path, headers = {}) {
    const r = await fetch(server.url + path, { headers });
    const text = await r.text();
    let data = text;
    try { data = JSON.parse(text); } catch (_) { /* text */ }
    return { status: r.status, d: directives(r), data };
  }

  describe('reading the session the edge sent', () => {
    test('loaded: plain properties, req.sessionID and req.session.id, principal', async () => {
      const r = await get(plain, '/read', loaded({ user: 'alice', counter: 3 }, { principal: 'alice' }));
      expect(r.data).toMatchObject({
        id: 'A'.repeat(43), sessionId: 'A'.repeat(43), status: 'loaded', principal: 'alice',
        data: { user: 'alice', counter: 3 },
      });
      expect(r.d).toEqual({});
    });

    test('none / expired: an empty session without an id', async () => {
      for (const status of ['none', 'expired']) {
        const r = await get(plain, '/read', { 'X-Session-Status': status });
        expect(r.data).toMatchObject({ id: null, status, keys: [] });
        expect(r.d).toEqual({});
      }
    });

    test('no X-Session-Status (a bypassed request): a session, and nothing is ever written', async () => {
      let r = await get(plain, '/read');
      expect(r.data.status).toBe('bypassed');
      r = await get(plain, '/set?a=1');
      expect(r.d).toEqual({});
      r = await get(plain, '/save');
      expect(r.d).toEqual({});
    });

    test('stored data never shadows the session methods; a stored cookie is not data', async () => {
      const r = await get(plain, '/read', loaded({ save: 'x', regenerate: 1, cookie: { maxAge: 5 }, n: 1 }));
      expect(r.data.keys).toEqual(['n']);
      const w = await get(plain, '/set?m=2', loaded({ save: 'x', cookie: { maxAge: 5 }, n: 1 }));
      expect(unb64(w.d['x-session-set'])).toEqual({ n: 1, m: '2' });
    });

    test('data that is not a JSON object reads as empty and is left alone unless changed', async () => {
      const headers = { 'X-Session-Status': 'loaded', 'X-Session-Id': 'B'.repeat(43), 'X-Session-Data': Buffer.from('not json').toString('base64') };
      expect((await get(plain, '/read', headers)).data.keys).toEqual([]);
      expect((await get(plain, '/read', headers)).d).toEqual({});
      expect(unb64((await get(plain, '/set?a=1', headers)).d['x-session-set'])).toEqual({ a: '1' });
    });
  });

  describe('directives: lazy, and only what changed', () => {
    test('an unchanged loaded session writes nothing, even when a value is reassigned', async () => {
      expect((await get(plain, '/read', loaded({ n: 1 }))).d).toEqual({});
      expect((await get(plain, '/same', loaded({ n: 1 }))).d).toEqual({});
    });

    test('a change writes the whole session as base64 JSON', async () => {
      const r = await get(plain, '/set?b=2', loaded({ n: 1 }));
      expect(Object.keys(r.d)).toEqual(['x-session-set']);
      expect(unb64(r.d['x-session-set'])).toEqual({ n: 1, b: '2' });
    });

    test('a new session is written only when it holds something', async () => {
      expect((await get(plain, '/read', { 'X-Session-Status': 'none' })).d).toEqual({});
      const r = await get(plain, '/set?a=1', { 'X-Session-Status': 'none' });
      expect(r.d).toEqual({ 'x-session-set': b64({ a: '1' }) });
    });

    test('save() writes even an unchanged session', async () => {
      expect((await get(plain, '/save', loaded({ n: 1 }))).d).toEqual({ 'x-session-set': b64({ n: 1 }) });
      expect((await get(plain, '/save', { 'X-Session-Status': 'none' })).d).toEqual({ 'x-session-set': b64({}) });
    });

    test('regenerate(): the old session is destroyed, the new one starts empty', async () => {
      let r = await get(plain, '/regenerate?user=bob', loaded({ n: 1, secret: 'old' }));
      expect(r.data).toEqual({ id: null, data: { user: 'bob' } });
      expect(r.d).toEqual({ 'x-session-destroy': '1', 'x-session-set': b64({ user: 'bob' }) });
      // Regenerated and left empty: just the destroy.
      r = await get(plain, '/regenerate', loaded({ n: 1 }));
      expect(r.d).toEqual({ 'x-session-destroy': '1' });
      // No session before: just the new one.
      r = await get(plain, '/regenerate?user=bob', { 'X-Session-Status': 'none' });
      expect(r.d).toEqual({ 'x-session-set': b64({ user: 'bob' }) });
    });

    test('destroy(): req.session is gone and the edge is told to destroy', async () => {
      const r = await get(plain, '/destroy', loaded({ n: 1 }));
      expect(r.data).toEqual({ session: 'gone' });
      expect(r.d).toEqual({ 'x-session-destroy': '1' });
    });

    test('reload(): back to what the edge loaded', async () => {
      const r = await get(plain, '/reload', loaded({ n: 'original' }));
      expect(r.data).toEqual({ n: 'original' });
      expect(r.d).toEqual({});
    });

    test('cookie.maxAge / cookie.expires set by the app become X-Session-TTL', async () => {
      let r = await get(plain, '/maxage?ms=90000', loaded({ n: 1 }));
      expect(r.d).toEqual({ 'x-session-ttl': '90' });
      r = await get(plain, '/expires?ms=120000', loaded({ n: 1 }));
      expect(Number(r.d['x-session-ttl'])).toBeGreaterThanOrEqual(119);
      expect(Number(r.d['x-session-ttl'])).toBeLessThanOrEqual(120);
      // A new session that stays empty: nothing, whatever its maxAge.
      r = await get(plain, '/maxage?ms=90000', { 'X-Session-Status': 'none' });
      expect(r.d).toEqual({});
      // touch() only resets the cookie's clock: no directive.
      expect((await get(plain, '/touch', loaded({ n: 1 }))).d).toEqual({});
    });

    test('a configured cookie.maxAge is the TTL of the sessions created', async () => {
      let r = await get(withMaxAge, '/read', loaded({ n: 1 }));
      expect(r.data.maxAge).toBeGreaterThan(3590 * 1000);
      expect(r.d).toEqual({});
      r = await get(withMaxAge, '/set?a=1', { 'X-Session-Status': 'none' });
      expect(r.d).toEqual({ 'x-session-set': b64({ a: '1' }), 'x-session-ttl': '3600' });
      // An existing session keeps the TTL it has.
      r = await get(withMaxAge, '/set?a=2', loaded({ n: 1 }));
      expect(r.d).toEqual({ 'x-session-set': b64({ n: 1, a: '2' }) });
    });

    test('principal option: a login sends X-Session-Principal; no change, no principal', async () => {
      let r = await get(withPrincipal, '/regenerate?user=carol', loaded({ n: 1 }));
      expect(r.d).toEqual({
        'x-session-destroy': '1', 'x-session-set': b64({ user: 'carol' }), 'x-session-principal': 'carol',
      });
      r = await get(withPrincipal, '/set?counter=2', loaded({ user: 'carol' }, { principal: 'carol' }));
      expect(r.d).toEqual({ 'x-session-set': b64({ user: 'carol', counter: '2' }) });
      // Logged out without regenerate (user removed): back to anonymous.
      r = await get(withPrincipal, '/set?user=', loaded({ user: 'carol' }, { principal: 'carol' }));
      expect(r.d['x-session-principal']).toBe('');
    });

    test('a change after the response head went out is reported, not silently sent', async () => {
      const r = await get(lateReporting, '/stream', loaded({ n: 1 }));
      expect(r.data).toBe('head sent; done');
      expect(r.d).toEqual({});
      await waitFor(() => lateChanges.length === 1, 'the late change report');
      expect(lateChanges[0]).toBe('/stream');
      // An ordinary request is not reported.
      await get(lateReporting, '/set?a=1', loaded({ n: 1 }));
      await get(lateReporting, '/read', loaded({ n: 1 }));
      expect(lateChanges).toEqual(['/stream']);
    });
  });

  describe('trust and availability', () => {
    test('X-Session-* from a peer outside `trust` is ignored', async () => {
      let r = await get(untrusting, '/read', loaded({ user: 'mallory' }));
      expect(r.data).toMatchObject({ status: 'untrusted', id: null, keys: [] });
      r = await get(untrusting, '/set?a=1', loaded({ user: 'mallory' }));
      expect(r.d).toEqual({});
    });

    test('unavailable: an error (503) reaches express by default', async () => {
      const r = await get(plain, '/read', { 'X-Session-Status': 'unavailable' });
      expect(r.status).toBe(503);
      expect(r.data.code).toBe('SESSIONGRID_UNAVAILABLE');
    });

    test("unavailable with unavailable: 'continue': an empty session, no directives", async () => {
      let r = await get(continuing, '/read', { 'X-Session-Status': 'unavailable' });
      expect(r.status).toBe(200);
      expect(r.data).toMatchObject({ status: 'unavailable', keys: [] });
      r = await get(continuing, '/set?a=1', { 'X-Session-Status': 'unavailable' });
      expect(r.d).toEqual({});
    });

    test('bad options are refused at once', () => {
      expect(() => edgeSession({ trust: ['not-an-ip'] })).toThrow(/trust/);
      expect(() => edgeSession({ cookie: { maxAge: -1 } })).toThrow(/maxAge/);
      expect(() => edgeSession({ unavailable: 'maybe' })).toThrow(/unavailable/);
      expect(() => edgeSession({ principal: 'user' })).toThrow(/principal/);
    });
  });
});
