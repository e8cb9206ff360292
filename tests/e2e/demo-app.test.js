// sessiongrid-demo-app on its own (DEMO_URL, no edge in between): the HTTP
// behaviour the edge relies on, and the header protocol as the app sees it.
const net = require('net');
const { DEMO_URL, http } = require('./helpers');

const demo = (path) => `${DEMO_URL}${path}`;

// Sends raw bytes on one TCP connection and collects the reply until the
// server closes it or `ms` passes.
function raw(bytes, ms = 3000) {
  const { hostname, port } = new URL(DEMO_URL);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let data = '';
    const timer = setTimeout(() => { socket.destroy(); resolve(data); }, ms);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk) => { data += chunk.toString('latin1'); });
    socket.on('end', () => { clearTimeout(timer); resolve(data); });
    socket.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

describe('sessiongrid-demo-app directly', () => {
  test('health answers the seed\'s shape with an ISO 8601 timestamp', async () => {
    const r = await http.get(demo('/api/health'));
    expect(r.status).toBe(200);
    expect(r.data.status).toBe('ok');
    expect(new Date(r.data.timestamp).toISOString()).toBe(r.data.timestamp);
  });

  test('two requests on one keep-alive connection, then close on request', async () => {
    const reply = await raw(
      'GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /assets/main.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(reply.match(/HTTP\/1\.1 200 OK\r\n/g)).toHaveLength(2);
    expect(reply).toMatch(/Content-Type: application\/javascript/);
  });

  test('HEAD has the GET headers and no body', async () => {
    const reply = await raw('HEAD /assets/logo.png HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(reply).toMatch(/Content-Length: 69\r\n/);
    expect(reply.endsWith('\r\n\r\n')).toBe(true);
  });

  test('malformed requests get 400, oversized bodies 413, never a crash', async () => {
    expect(await raw('NOT HTTP AT ALL\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    const big = await http.post(demo('/api/auth/login'), 'x'.repeat(100 * 1024), {
      headers: { 'Content-Type': 'application/json' },
    });
    expect(big.status).toBe(413);
    const after = await http.get(demo('/api/health'));
    expect(after.status).toBe(200);
  });

  test('login answers with the session directives; bad bodies are 4xx', async () => {
    const ok = await http.post(demo('/api/auth/login'), { username: 'zoe', password: 'pw' });
    expect(ok.status).toBe(200);
    expect(ok.headers['x-session-principal']).toBe('zoe');
    expect(JSON.parse(Buffer.from(ok.headers['x-session-set'], 'base64').toString()))
      .toEqual({ user: 'zoe', counter: 0 });
    for (const body of ['{', '[]', '{"username":"zoe"}', '{"username":"","password":"x"}']) {
      const r = await http.post(demo('/api/auth/login'), body, {
        headers: { 'Content-Type': 'application/json' },
      });
      expect([400, 401]).toContain(r.status);
      expect(r.headers['x-session-principal']).toBeUndefined();
    }
  });

  test('the counter reads the session the edge would send', async () => {
    const data = Buffer.from(JSON.stringify({ user: 'zoe', counter: 9 })).toString('base64');
    const r = await http.post(demo('/api/counter'), null, {
      headers: {
        'X-Session-Status': 'loaded',
        'X-Session-Id': 'abc',
        'X-Session-Data': data,
        'X-Session-Principal': 'zoe',
      },
    });
    expect(r.data).toEqual({ counter: 10, user: 'zoe' });
    expect(JSON.parse(Buffer.from(r.headers['x-session-set'], 'base64').toString()))
      .toEqual({ user: 'zoe', counter: 10 });
  });

  test('logout asks the edge to destroy the session', async () => {
    const r = await http.post(demo('/api/auth/logout'));
    expect(r.status).toBe(200);
    expect(r.headers['x-session-destroy']).toBe('1');
  });

  test('the page is HTML and generated assets answer for the seed\'s load test', async () => {
    const page = await http.get(demo('/'));
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.data).toMatch(/not logged in/);
    for (const i of [0, 37, 69]) {
      const r = await http.get(demo(`/assets/file${i}.js`));
      expect(r.status).toBe(200);
    }
    expect((await http.get(demo('/assets/nope.bin'))).status).toBe(404);
  });
});
