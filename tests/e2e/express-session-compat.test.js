// express-session compatibility: the edge's cookies are exactly the ones an
// express app with the same secret issues and accepts. Checked with
// cookie-signature, the library express-session signs its cookies with.
const signature = require('cookie-signature');
const {
  browserHeaders,
  cookieValue,
  ctl,
  http,
  secrets,
  sessionCookie,
} = require('./helpers');

// What express-session puts in the cookie for session `id`.
function expressCookie(id, secret) {
  return `connect.sid=${encodeURIComponent(`s:${signature.sign(id, secret)}`)}`;
}

function createSession(user, counter) {
  const session = ctl(
    'create',
    '--data', JSON.stringify({ user, counter }),
    '--principal', user,
  );
  expect(typeof session.id).toBe('string');
  return session.id;
}

async function whoami(cookie) {
  const r = await http.get('/api/user/whoami', {
    headers: browserHeaders({ Cookie: cookie }),
  });
  expect(r.status).toBe(200);
  return r.data;
}

describe('express-session cookie compatibility', () => {
  test('a cookie signed by cookie-signature loads the session', async () => {
    const id = createSession('heidi', 41);
    const cookie = expressCookie(id, secrets()[0]);
    expect(await whoami(cookie)).toEqual({
      loggedIn: true,
      user: 'heidi',
      counter: 41,
      sessionStatus: 'loaded',
    });
    const r = await http.post('/api/user/counter', null, {
      headers: browserHeaders({ Cookie: cookie }),
    });
    expect(r.data).toEqual({ counter: 42, user: 'heidi' });
  });

  test('a cookie signed with an older secret still verifies', async () => {
    const keys = secrets();
    expect(keys.length).toBeGreaterThanOrEqual(2);
    const id = createSession('ivan', 5);
    expect(await whoami(expressCookie(id, keys[keys.length - 1]))).toMatchObject({
      loggedIn: true,
      user: 'ivan',
    });
  });

  test('a cookie signed with an unknown secret is rejected', async () => {
    const id = createSession('judy', 1);
    const data = await whoami(expressCookie(id, 'not-the-edge-secret'));
    expect(data.loggedIn).toBe(false);
    expect(data.sessionStatus).toBe('none');
  });

  test('a cookie the edge issues is verified by cookie-signature', async () => {
    const r = await http.post(
      '/api/auth/login',
      { username: 'mallory', password: 'pw' },
      { headers: browserHeaders() },
    );
    expect(r.status).toBe(200);
    const cookie = sessionCookie(r);
    expect(cookie).not.toBeNull();
    const value = decodeURIComponent(cookieValue(cookie));
    expect(value.startsWith('s:')).toBe(true);
    const id = signature.unsign(value.slice(2), secrets()[0]);
    expect(id).not.toBe(false);
    expect(signature.unsign(value.slice(2), 'another-secret')).toBe(false);
    // The exact bytes express-session would have written for that id.
    expect(cookie).toBe(expressCookie(id, secrets()[0]));
    // And the id names the logged-in session in the session service.
    const stored = ctl('get', id);
    expect(stored.principal).toBe('mallory');
  });
});
