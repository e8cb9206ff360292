// Our own end-to-end tests of the session flow through sessiongrid-edge, on
// top of the seed's suite: logins, the counter kept in the session, logout,
// bots, forged cookies and the skip ratio of a realistic traffic mix.
//
// Browser requests carry X-Forwarded-For with a public address (run.sh
// trusts loopback as a proxy), so they are classified like real visitors
// rather than as internal loopback traffic.
const {
  BROWSER_UA,
  DEMO_URL,
  browserHeaders,
  http,
  isClearing,
  nodeStats,
  publicClient,
  runLimited,
  sessionCookie,
  sessionHealth,
  sessionSetCookies,
} = require('./helpers');

async function login(username, extra = {}) {
  const r = await http.post(
    '/api/auth/login',
    { username, password: 'correct horse' },
    { headers: browserHeaders(extra) },
  );
  expect(r.status).toBe(200);
  expect(r.data).toEqual({ ok: true, user: username });
  const cookie = sessionCookie(r);
  expect(cookie).not.toBeNull();
  return { response: r, cookie };
}

async function whoami(cookie) {
  const r = await http.get('/api/user/whoami', {
    headers: browserHeaders(cookie ? { Cookie: cookie } : {}),
  });
  expect(r.status).toBe(200);
  return r;
}

describe('sessions through the edge', () => {
  test('login sets a signed, HttpOnly session cookie', async () => {
    const { response, cookie } = await login('alice');
    expect(cookie).toMatch(/^connect\.sid=s%3A[^.;]+\.[A-Za-z0-9%]+$/);
    const line = sessionSetCookies(response)[0];
    expect(line).toMatch(/;\s*HttpOnly/i);
    expect(line).toMatch(/;\s*Path=\//i);
    // The upstream's protocol headers never reach the client.
    for (const name of Object.keys(response.headers)) {
      expect(name.toLowerCase().startsWith('x-session-')).toBe(false);
    }
  });

  test('the counter increments across requests in one session', async () => {
    const { cookie } = await login('bob');
    for (let expected = 1; expected <= 3; expected++) {
      const r = await http.post('/api/user/counter', null, {
        headers: browserHeaders({ Cookie: cookie }),
      });
      expect(r.status).toBe(200);
      expect(r.data).toEqual({ counter: expected, user: 'bob' });
      // An update of an existing session re-issues no cookie.
      expect(sessionSetCookies(r)).toEqual([]);
    }
    const me = await whoami(cookie);
    expect(me.data).toEqual({
      loggedIn: true,
      user: 'bob',
      counter: 3,
      sessionStatus: 'loaded',
    });
  });

  test('anonymous state survives login, under a rotated id', async () => {
    const first = await http.post('/api/user/counter', null, {
      headers: browserHeaders(),
    });
    expect(first.data).toEqual({ counter: 1, user: null });
    const anonymous = sessionCookie(first);
    expect(anonymous).not.toBeNull(); // lazily created by X-Session-Set
    const { cookie } = await login('erin', { Cookie: anonymous });
    expect(cookie).not.toEqual(anonymous); // login rotates the id
    const me = await whoami(cookie);
    expect(me.data).toMatchObject({ loggedIn: true, user: 'erin', counter: 1 });
    // The pre-login id no longer names a session.
    const old = await whoami(anonymous);
    expect(old.data.loggedIn).toBe(false);
    expect(old.data.counter).toBe(0);
  });

  test('logout clears the cookie and the old cookie never brings the session back', async () => {
    const { cookie } = await login('carol');
    await http.post('/api/user/counter', null, {
      headers: browserHeaders({ Cookie: cookie }),
    });
    const out = await http.post('/api/auth/logout', null, {
      headers: browserHeaders({ Cookie: cookie }),
    });
    expect(out.status).toBe(200);
    const cleared = sessionSetCookies(out);
    expect(cleared.length).toBe(1);
    expect(isClearing(cleared[0])).toBe(true);

    const after = await whoami(cookie);
    expect(after.data.loggedIn).toBe(false);
    expect(after.data.sessionStatus).not.toBe('loaded');

    // Writing with the dead cookie must not resurrect the old id.
    const write = await http.post('/api/user/counter', null, {
      headers: browserHeaders({ Cookie: cookie }),
    });
    expect(write.status).toBe(200);
    expect(write.data.counter).toBe(1);
    const fresh = sessionCookie(write);
    if (fresh !== null) expect(fresh).not.toEqual(cookie);
    const again = await whoami(cookie);
    expect(again.data).toMatchObject({ loggedIn: false, counter: 0 });
  });

  test('a forged or tampered cookie gets no session', async () => {
    const { cookie } = await login('dave');
    const value = cookie.slice('connect.sid='.length);
    const [id, sig] = decodeURIComponent(value).slice(2).split('.');
    const otherId = (id[0] === 'A' ? 'B' : 'A') + id.slice(1);
    const forged = [
      'connect.sid=s%3Aforged-id.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      // the right signature on another id
      `connect.sid=${encodeURIComponent(`s:${otherId}.${sig}`)}`,
      // an unsigned id
      `connect.sid=${id}`,
      'connect.sid=garbage',
    ];
    for (const c of forged) {
      const r = await whoami(c);
      expect(r.data.loggedIn).toBe(false);
      expect(r.data.sessionStatus).toBe('none');
    }
  });

  test('bots, probes and scripts get no cookie and cost no session call', async () => {
    const { cookie } = await login('frank');
    const agents = [
      'Googlebot/2.1 (+http://www.google.com/bot.html)',
      'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
      'curl/8.4.0',
      'kube-probe/1.29',
      'python-requests/2.31.0',
      '',
    ];
    const before = nodeStats();
    for (const ua of agents) {
      const requests = [
        http.get('/', { headers: { 'User-Agent': ua, ...publicClient() } }),
        http.get('/assets/main.js', { headers: { 'User-Agent': ua } }),
        http.get('/api/health', { headers: { 'User-Agent': ua } }),
        // Even carrying a valid cookie to a page the app writes the session
        // from: an automated agent is bypassed, so nothing is read or
        // written and the app's X-Session-Set is dropped.
        http.get('/api/counter', {
          headers: { 'User-Agent': ua, Cookie: cookie, ...publicClient() },
        }),
      ];
      for (const r of await Promise.all(requests)) {
        expect(r.status).toBe(200);
        expect(r.headers['set-cookie']).toBeUndefined();
      }
    }
    const after = nodeStats();
    expect(after).toEqual(before);
    // frank's session was not touched by the bots' counter calls.
    const me = await whoami(cookie);
    expect(me.data).toMatchObject({ user: 'frank', counter: 0 });
  });

  test('the app\'s own leaked session cookie is stripped from bypassed responses', async () => {
    // sessiongrid-demo-app deliberately answers /api/health with
    // Set-Cookie: connect.sid=leaked-by-app ...
    const direct = await http.get(`${DEMO_URL}/api/health`);
    expect(direct.headers['set-cookie']).toEqual([
      'connect.sid=leaked-by-app; Path=/',
    ]);
    // ... which the edge removes.
    const r = await http.get('/api/health', {
      headers: { 'User-Agent': BROWSER_UA, ...publicClient() },
    });
    expect(r.status).toBe(200);
    expect(r.data.status).toBe('ok');
    expect(r.headers['set-cookie']).toBeUndefined();
  });

  test('skip ratio >= 95% for a realistic production mix', async () => {
    const { cookie } = await login('grace');
    const pageHeaders = (n) => ({
      'User-Agent': BROWSER_UA,
      Accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
      ...publicClient(n),
    });
    // Per 100 requests: 50 assets, 12 crawler page views, 10 health and
    // monitoring probes, 8 anonymous page views, 6 preflights / HEADs,
    // 5 scripted API reads, 5 logged-in page views, 4 session API calls.
    const kinds = [
      [50, (n) => http.get(`/assets/chunk-${n % 17}.js`, { headers: pageHeaders(n) })],
      [12, (n) => http.get(`/products/${n}`, {
        headers: { 'User-Agent': n % 2 ? 'Googlebot/2.1' : 'Mozilla/5.0 (compatible; bingbot/2.0)', ...publicClient(n) },
      })],
      [10, (n) => http.get('/api/health', { headers: { 'User-Agent': n % 2 ? 'kube-probe/1.29' : 'UptimeRobot/2.0' } })],
      [8, (n) => http.get('/', { headers: pageHeaders(n) })],
      [6, (n) => (n % 2
        ? http.options('/api/user/counter', { headers: pageHeaders(n) })
        : http.head('/', { headers: pageHeaders(n) }))],
      [5, (n) => http.get('/api/whoami', { headers: { 'User-Agent': 'python-requests/2.31.0', ...publicClient(n) } })],
      [5, (n) => http.get('/', { headers: { ...pageHeaders(n), Cookie: cookie } })],
      [4, (n) => (n % 2
        ? http.post('/api/user/counter', null, { headers: browserHeaders({ Cookie: cookie }) })
        : http.get('/api/user/whoami', { headers: browserHeaders({ Cookie: cookie }) }))],
    ];
    const tasks = [];
    for (let round = 0; round < 10; round++) {
      for (const [count, make] of kinds) {
        for (let i = 0; i < count; i++) {
          const n = round * 100 + i;
          tasks.push(() => make(n));
        }
      }
    }
    const sessionsBefore = nodeStats().sessions;
    const before = (await sessionHealth()).metrics;
    const responses = await runLimited(tasks, 32);
    const after = (await sessionHealth()).metrics;

    for (const r of responses) expect(r.status).toBeLessThan(500);
    const total = after.totalRequests - before.totalRequests;
    const skipped = after.skippedRequests - before.skippedRequests;
    // The mix plus the second session-health call itself.
    expect(total).toBeGreaterThanOrEqual(tasks.length);
    const ratio = skipped / total;
    console.log(`mix: ${skipped}/${total} skipped = ${(100 * ratio).toFixed(2)}%`);
    expect(ratio).toBeGreaterThanOrEqual(0.95);
    // Nothing in the mix may create a session.
    expect(nodeStats().sessions).toBe(sessionsBefore);
  });
});
