'use strict';
// The demo app's flows as a browser sees them, run unchanged against the
// same express-session app (examples/demo-app.js) three ways: on
// express-session's MemoryStore (the reference), on SessionGridStore, and
// behind sessiongrid-edge with edgeSession(). `env()` returns
// { url } of what the browser talks to, once the suite's beforeAll ran.
const { Browser, BROWSER_HEADERS } = require('./harness');

function sessionCookieLine(setCookies) {
  return setCookies.filter((l) => l.startsWith('connect.sid=')).pop();
}

// Seconds until the cookie of a Set-Cookie line expires (Max-Age wins over
// Expires, as in browsers); null for a browser-session cookie.
function cookieLifetime(line) {
  const maxAge = /;\s*max-age=(\d+)/i.exec(line);
  if (maxAge) return Number(maxAge[1]);
  const expires = /;\s*expires=([^;]+)/i.exec(line);
  if (expires) return (Date.parse(expires[1]) - Date.now()) / 1000;
  return null;
}

function describeFlows(name, env) {
  describe(`demo flows (${name})`, () => {
    const browser = () => new Browser(env().url, { headers: BROWSER_HEADERS });

    test('an anonymous read creates no session and sets no cookie', async () => {
      const b = browser();
      const r = await b.get('/api/user/whoami');
      expect(r.status).toBe(200);
      expect(r.data).toEqual({ loggedIn: false, user: null, counter: 0 });
      expect(sessionCookieLine(r.setCookies)).toBeUndefined();
    });

    test('the counter lives in the session: one cookie, then it counts', async () => {
      const b = browser();
      const first = await b.post('/api/user/counter');
      expect(first.status).toBe(200);
      expect(first.data).toEqual({ counter: 1, user: null });
      expect(sessionCookieLine(first.setCookies)).toBeDefined();
      for (let i = 2; i <= 4; i++) {
        const r = await b.post('/api/user/counter');
        expect(r.data).toEqual({ counter: i, user: null });
      }
      const who = await b.get('/api/user/whoami');
      expect(who.data).toEqual({ loggedIn: false, user: null, counter: 4 });
      // A read of an unchanged session issues no new cookie.
      expect(sessionCookieLine(who.setCookies)).toBeUndefined();
    });

    test('login regenerates the id and keeps the anonymous counter', async () => {
      const b = browser();
      await b.post('/api/user/counter');
      await b.post('/api/user/counter');
      const before = b.cookies.get('connect.sid');
      expect(before).toBeDefined();
      const login = await b.post('/api/auth/login', { username: 'alice', password: 'pw' });
      expect(login.status).toBe(200);
      expect(login.data).toEqual({ ok: true, user: 'alice' });
      const after = b.cookies.get('connect.sid');
      expect(after).toBeDefined();
      expect(after).not.toBe(before);
      expect((await b.get('/api/user/whoami')).data).toEqual({ loggedIn: true, user: 'alice', counter: 2 });
      expect((await b.post('/api/user/counter')).data).toEqual({ counter: 3, user: 'alice' });

      // The pre-login cookie no longer opens any session (fixation).
      const attacker = browser();
      attacker.cookies.set('connect.sid', before);
      expect((await attacker.get('/api/user/whoami')).data).toEqual({ loggedIn: false, user: null, counter: 0 });
    });

    test('logout destroys the session for good', async () => {
      const b = browser();
      await b.post('/api/auth/login', { username: 'bob', password: 'pw' });
      const cookie = b.cookies.get('connect.sid');
      expect((await b.get('/api/user/whoami')).data.loggedIn).toBe(true);
      const out = await b.post('/api/auth/logout');
      expect(out.status).toBe(200);
      expect(out.data).toEqual({ ok: true });
      expect(b.cookies.get('connect.sid')).toBeUndefined();
      expect((await b.get('/api/user/whoami')).data).toEqual({ loggedIn: false, user: null, counter: 0 });
      // Replaying the old cookie: the session is gone on the server too.
      const replay = browser();
      replay.cookies.set('connect.sid', cookie);
      expect((await replay.get('/api/user/whoami')).data).toEqual({ loggedIn: false, user: null, counter: 0 });
    });

    test('a bad login is refused and creates nothing', async () => {
      const b = browser();
      const r = await b.post('/api/auth/login', { username: 'carol' });
      expect(r.status).toBe(401);
      expect(sessionCookieLine(r.setCookies)).toBeUndefined();
    });

    test('remember me: a 30-day cookie', async () => {
      const b = browser();
      const plain = await b.post('/api/auth/login', { username: 'dave', password: 'pw' });
      const plainLife = cookieLifetime(sessionCookieLine(plain.setCookies));
      const c = browser();
      const remembered = await c.post('/api/auth/login', { username: 'erin', password: 'pw', remember: true });
      const life = cookieLifetime(sessionCookieLine(remembered.setCookies));
      expect(life).toBeGreaterThan(29 * 86400);
      expect(life).toBeLessThanOrEqual(30 * 86400 + 5);
      expect(plainLife === null || plainLife < 29 * 86400).toBe(true);
      expect((await c.get('/api/user/whoami')).data).toEqual({ loggedIn: true, user: 'erin', counter: 0 });
    });

    test('concurrent users stay apart; one user\'s parallel requests all succeed', async () => {
      const users = Array.from({ length: 6 }, (_, i) => ({ b: browser(), name: `user${i}` }));
      await Promise.all(users.map(({ b, name }) => b.post('/api/auth/login', { username: name, password: 'pw' })));
      await Promise.all(users.map(async ({ b }) => {
        for (let i = 0; i < 5; i++) await b.post('/api/user/counter');
      }));
      for (const { b, name } of users) {
        expect((await b.get('/api/user/whoami')).data).toEqual({ loggedIn: true, user: name, counter: 5 });
      }
      // Eight increments at once on one session: every request answers and
      // the session survives (whole-session writes: the last one wins, as
      // with any express-session store).
      const { b, name } = users[0];
      const results = await Promise.all(Array.from({ length: 8 }, () => b.post('/api/user/counter')));
      for (const r of results) expect(r.status).toBe(200);
      const who = (await b.get('/api/user/whoami')).data;
      expect(who.user).toBe(name);
      expect(who.counter).toBeGreaterThanOrEqual(6);
      expect(who.counter).toBeLessThanOrEqual(13);
    });
  });
}

module.exports = { describeFlows, cookieLifetime, sessionCookieLine };
