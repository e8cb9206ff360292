'use strict';
// Test harness: the real sessiongrid-server and sessiongrid-edge on free
// loopback ports (port 0, the bound address read from their
// "msg=listening" log line), each in its own temp dir; express apps on
// port 0; a cookie-keeping HTTP client on Node's fetch. Every wait is a
// bounded poll; every process is stopped in afterAll (SIGTERM, then
// SIGKILL after a bounded wait).
//
// Binaries: SG_SERVER_BIN, SG_EDGE_BIN (ctest passes them;
// tests/integrations/express/run.sh too). Missing binaries fail the test.
const { spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

function binary(name) {
  const value = process.env[name];
  if (!value || !fs.existsSync(value)) {
    throw new Error(`${name} must name the binary (got ${value || 'nothing'}); run via tests/integrations/express/run.sh or ctest`);
  }
  return value;
}

const processes = new Set();
const dirs = new Set();

// A fresh temp dir, removed by stopAll().
function tempDir(tag) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sg-express-${tag}-`));
  dirs.add(dir);
  return dir;
}

// Starts `bin args` and resolves when its log shows msg=listening, with
// the parsed key=value fields of that line. Rejects if it exits first or
// does not listen within timeoutMs.
function startLogged(name, bin, args, { timeoutMs = 20000, ready = /\bmsg=listening\b/ } = {}) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = { name, child, log: '', exited: false };
  processes.add(proc);
  const onData = (chunk) => {
    proc.log += chunk.toString();
    if (proc.log.length > 200000) proc.log = proc.log.slice(-100000);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    proc.exited = true;
    processes.delete(proc);
    resolve({ code, signal });
  }));
  proc.exitedPromise = exited;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      clearInterval(poll);
      reject(new Error(`${name} did not log ${ready} within ${timeoutMs} ms:\n${proc.log}`));
    }, timeoutMs);
    const poll = setInterval(() => {
      const line = proc.log.split('\n').find((l) => ready.test(l));
      if (line) {
        clearInterval(poll);
        clearTimeout(timer);
        const fields = {};
        for (const m of line.matchAll(/(\w+)=("[^"]*"|\S+)/g)) fields[m[1]] = m[2];
        proc.fields = fields;
        resolve(proc);
      } else if (proc.exited) {
        clearInterval(poll);
        clearTimeout(timer);
        reject(new Error(`${name} exited before listening:\n${proc.log}`));
      }
    }, 20);
  });
}

async function stop(proc, { timeoutMs = 10000 } = {}) {
  if (!proc || proc.exited) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  await proc.exitedPromise;
  clearTimeout(timer);
}

async function stopAll() {
  await Promise.all([...processes].map((p) => stop(p)));
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

// sessiongrid-server on a free port. Resolves to { address, dir, proc }.
async function startServer({ args = [], dir } = {}) {
  const work = dir || tempDir('server');
  const proc = await startLogged('sessiongrid-server', binary('SG_SERVER_BIN'), [
    '--listen=127.0.0.1:0',
    `--data-dir=${path.join(work, 'data')}`,
    '--node-id=express-test',
    '--sweep-interval=1s',
    ...args,
  ]);
  return { address: proc.fields.address, dir: work, proc };
}

// sessiongrid-edge in front of `upstream` (http://HOST:PORT; none for an
// edge that only answers auth_request). Resolves to
// { url, adminUrl, secrets, proc } once /readyz answers 200.
async function startEdge({ upstream, service, args = [], secrets = [crypto.randomBytes(32).toString('hex')] }) {
  const work = tempDir('edge');
  const secretFile = path.join(work, 'cookie-secrets');
  fs.writeFileSync(secretFile, `${secrets.join('\n')}\n`);
  const proc = await startLogged('sessiongrid-edge', binary('SG_EDGE_BIN'), [
    '--listen=127.0.0.1:0',
    '--admin-listen=127.0.0.1:0',
    ...(upstream ? [`--upstream=${upstream}`] : []),
    `--session-service=${service}`,
    `--cookie-secret-file=${secretFile}`,
    '--trusted-proxies=127.0.0.1/32,::1/128',
    '--drain-delay=0s',
    '--threads=1',
    ...args,
  ]);
  const edge = {
    url: `http://${proc.fields.address}`,
    adminUrl: `http://${proc.fields.admin}`,
    secrets,
    proc,
  };
  await waitFor(async () => (await fetch(`${edge.adminUrl}/readyz`)).status === 200, 'edge /readyz');
  return edge;
}

// redis-server on a free loopback port, no persistence, in a temp dir.
// Resolves to { address, port, proc }. A port taken between the probe and
// the bind is retried with another (bounded).
async function startRedis() {
  let lastError;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const work = tempDir('redis');
    try {
      const proc = await startLogged('redis-server', process.env.SG_REDIS_BIN || 'redis-server', [
        '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--dir', work, '--protected-mode', 'yes',
      ], { ready: /Ready to accept connections/ });
      return { address: `127.0.0.1:${port}`, port, proc };
    } catch (err) {
      lastError = err;
      if (!/Address already in use/.test(err.message)) throw err;
    }
  }
  throw lastError;
}

// A free port on one loopback address (bound, then closed).
function freePortOn(host) {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A cluster of `size` sessiongrid-server nodes, node i on its own loopback
// address 127.0.X.i (client and peer ports probed free there), every node
// given the same --peers list. Resolves to { nodes: [{ address, proc }],
// target } once every node sees all of them SERVING.
async function startCluster({ size = 3, args = [] } = {}) {
  const net3 = 40 + crypto.randomInt(200);
  const hosts = Array.from({ length: size }, (_, i) => `127.0.${net3}.${i + 1}`);
  const ports = [];
  for (const host of hosts) ports.push({ client: await freePortOn(host), peer: await freePortOn(host) });
  const peers = hosts.map((h, i) => `${h}:${ports[i].peer}`).join(',');
  const nodes = await Promise.all(hosts.map(async (host, i) => {
    const work = tempDir(`node${i}`);
    const address = `${host}:${ports[i].client}`;
    const proc = await startLogged(`sessiongrid-server node${i}`, binary('SG_SERVER_BIN'), [
      `--listen=${address}`,
      `--peer-listen=${host}:${ports[i].peer}`,
      `--peers=${peers}`,
      `--advertise-address=${address}`,
      `--data-dir=${path.join(work, 'data')}`,
      `--node-id=node${i}`,
      '--sweep-interval=1s',
      ...args,
    ]);
    return { address, proc };
  }));
  const { createClients } = require('../lib/client');
  for (const node of nodes) {
    const { admin, sessions } = createClients({ target: node.address });
    try {
      await waitFor(() => new Promise((resolve) => {
        admin.ClusterStatus({}, { deadline: new Date(Date.now() + 2000) }, (err, r) => {
          resolve(!err && Number(r.serving_count) === size);
        });
      }), `node ${node.address} to see ${size} serving nodes`, { timeoutMs: 30000, intervalMs: 100 });
    } finally {
      sessions.close();
    }
  }
  return { nodes, target: `ipv4:${nodes.map((n) => n.address).join(',')}` };
}

// An express app (or any request listener) on a free loopback port.
function listen(app) {
  return new Promise((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1');
    server.once('error', reject);
    server.once('listening', () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}`,
        server,
        close: () => new Promise((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
      });
    });
  });
}

// A loopback port nothing listens on (bound, then closed).
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A TCP server that accepts connections and never answers: calls to it
// can only end by their deadline.
function blackHole() {
  return new Promise((resolve, reject) => {
    const sockets = new Set();
    const s = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    });
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve({
      address: `127.0.0.1:${s.address().port}`,
      close: () => new Promise((r) => {
        for (const socket of sockets) socket.destroy();
        s.close(() => r());
      }),
    }));
  });
}

// Polls `check` (sync or async, truthy = done) every `intervalMs` until
// timeoutMs; rejects naming `what` on timeout.
async function waitFor(check, what, { timeoutMs = 15000, intervalMs = 25 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${lastError.message})` : ''}`);
}

// A desktop browser as far as the edge's classifier is concerned: browser
// user agent, and a public client address (TEST-NET-3; a header only,
// believed because the edge trusts loopback as a proxy).
const BROWSER_HEADERS = {
  'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  Accept: 'application/json',
  'X-Forwarded-For': '203.0.113.7',
};

// One browser: keeps the cookies it is given (name=value, honouring
// clearing Set-Cookies), sends them back.
class Browser {
  constructor(baseUrl, { headers = {} } = {}) {
    this.baseUrl = baseUrl;
    this.headers = headers;
    this.cookies = new Map();
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  absorb(response) {
    const lines = response.headers.getSetCookie();
    for (const line of lines) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const clearing = value === '' || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) ||
        attrs.some((a) => /^\s*expires=.*19(70|69)/i.test(a));
      if (clearing) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return lines;
  }

  async request(method, urlPath, { json, headers = {}, timeoutMs = 10000 } = {}) {
    const h = { ...this.headers, ...headers };
    const cookie = this.cookieHeader();
    if (cookie) h.Cookie = cookie;
    let body;
    if (json !== undefined) {
      h['Content-Type'] = 'application/json';
      body = JSON.stringify(json);
    }
    const response = await fetch(this.baseUrl + urlPath, {
      method,
      headers: h,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const setCookies = this.absorb(response);
    const text = await response.text();
    let data;
    try {
      data = JSON.parse(text);
    } catch (_) {
      data = text;
    }
    return { status: response.status, headers: response.headers, setCookies, data };
  }

  get(p, o) {
    return this.request('GET', p, o);
  }

  post(p, json, o = {}) {
    return this.request('POST', p, { ...o, json });
  }
}

// Node stats of the server through its gRPC admin API.
async function nodeStats(address) {
  const { createClients } = require('../lib/client');
  const { admin, sessions } = createClients({ target: address });
  try {
    const response = await new Promise((resolve, reject) => {
      admin.NodeStats({}, { deadline: new Date(Date.now() + 5000) }, (err, r) => (err ? reject(err) : resolve(r)));
    });
    const s = response.stats || {};
    return {
      sessions: Number(s.sessions || 0),
      creates: Number(s.creates || 0),
      deletes: Number(s.deletes || 0),
      authenticated: Number(s.authenticated_sessions || 0),
    };
  } finally {
    sessions.close();
  }
}

// Raw SessionService calls (for checking what the server holds).
function rawClient(address) {
  const { createClients } = require('../lib/client');
  const { sessions } = createClients({ target: address });
  const call = (method, request) => new Promise((resolve, reject) => {
    sessions[method](request, { deadline: new Date(Date.now() + 5000) }, (err, r) => (err ? reject(err) : resolve(r)));
  });
  return { call, close: () => sessions.close() };
}

module.exports = {
  BROWSER_HEADERS,
  Browser,
  blackHole,
  freePort,
  listen,
  nodeStats,
  rawClient,
  startCluster,
  startEdge,
  startRedis,
  startServer,
  stop,
  stopAll,
  tempDir,
  waitFor,
};
