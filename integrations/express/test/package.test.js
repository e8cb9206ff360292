'use strict';
// The package as a user gets it: `npm install ./integrations/express` (a
// link) and `npm install --install-links ./integrations/express` (a copy)
// into a fresh application, whose ordinary express-session code switches
// to SessionGrid by its store: line alone; run against a real server.
// And the protos shipped in the package are the repository's.
const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { rawClient, startServer, stopAll, tempDir, waitFor } = require('./harness');

const PKG = path.resolve(__dirname, '..');
const REPO_PROTO = path.resolve(PKG, '..', '..', 'proto');

function installedVersion(name) {
  return JSON.parse(fs.readFileSync(path.join(PKG, 'node_modules', name, 'package.json'), 'utf8')).version;
}

// npm install from the local cache (filled by `npm ci` in this package);
// the registry only if something is not cached.
function npmInstall(dir, args) {
  const base = ['install', '--no-audit', '--no-fund', '--loglevel=error', ...args];
  try {
    execFileSync('npm', [...base, '--offline'], { cwd: dir, stdio: 'pipe', timeout: 120000 });
  } catch (err) {
    if (!/ENOTCACHED/.test(String(err.stderr))) throw new Error(`npm install failed: ${err.stderr}`);
    execFileSync('npm', [...base, '--prefer-offline'], { cwd: dir, stdio: 'pipe', timeout: 120000 });
  }
}

const APP = `'use strict';
const express = require('express');
const session = require('express-session');
const { SessionGridStore } = require('sessiongrid-express');

const app = express();
app.use(session({
  store: new SessionGridStore({ target: process.env.SESSIONGRID_SERVER }),
  secret: 'install-test-secret',
  resave: false,
  saveUninitialized: false,
}));
app.get('/views', (req, res) => {
  req.session.views = (req.session.views || 0) + 1;
  res.json({ views: req.session.views });
});
const server = app.listen(0, '127.0.0.1', () => {
  const subclass = SessionGridStore.prototype instanceof session.Store;
  console.log('listening port=' + server.address().port + ' subclass=' + subclass);
});
process.on('SIGTERM', () => process.exit(0));
`;

let server;
let raw;
const children = [];

beforeAll(async () => {
  server = await startServer({ args: ['--allow-client-ids'] });
  raw = rawClient(server.address);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (raw) raw.close();
  await stopAll();
});

async function runApp(dir) {
  fs.writeFileSync(path.join(dir, 'app.js'), APP);
  const child = spawn(process.execPath, ['app.js'], {
    cwd: dir,
    env: { ...process.env, SESSIONGRID_SERVER: server.address },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  await waitFor(() => /listening port=\d+/.test(out) || child.exitCode !== null, 'the app to listen');
  const m = /listening port=(\d+) subclass=(\w+)/.exec(out);
  if (!m) throw new Error(`the app did not start:\n${out}`);
  return { url: `http://127.0.0.1:${m[1]}`, subclass: m[2], child };
}

async function countViews(url) {
  let cookie;
  const seen = [];
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${url}/views`, { headers: cookie ? { Cookie: cookie } : {} });
    const set = r.headers.getSetCookie().find((l) => l.startsWith('connect.sid='));
    if (set) cookie = set.split(';')[0];
    seen.push((await r.json()).views);
  }
  return { seen, cookie };
}

function idOf(cookie) {
  const v = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1));
  return v.slice(2, v.lastIndexOf('.'));
}

describe.each([
  ['npm install ./integrations/express (a link)', []],
  ['npm install --install-links ./integrations/express (a copy)', ['--install-links']],
])('%s', (name, flags) => {
  test('an express-session app runs on SessionGridStore by its store: line', async () => {
    const dir = tempDir('app');
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'user-app', version: '1.0.0', private: true }));
    npmInstall(dir, [
      ...flags,
      `express@${installedVersion('express')}`,
      `express-session@${installedVersion('express-session')}`,
      path.relative(dir, PKG),
    ]);
    const link = fs.lstatSync(path.join(dir, 'node_modules', 'sessiongrid-express'));
    expect(link.isSymbolicLink()).toBe(flags.length === 0);

    const app = await runApp(dir);
    try {
      expect(app.subclass).toBe('true');
      const { seen, cookie } = await countViews(app.url);
      expect(seen).toEqual([1, 2, 3]);
      // express-session's own id, stored on the server as its JSON.
      const id = idOf(cookie);
      expect(id).toMatch(/^[A-Za-z0-9_-]{32}$/);
      const record = (await raw.call('Get', { id })).session;
      expect(JSON.parse(Buffer.from(record.data).toString()).views).toBe(3);
    } finally {
      app.child.kill('SIGTERM');
    }
  }, 120000);
});

describe('protos', () => {
  const files = (root) => {
    const out = [];
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.proto')) out.push(path.relative(root, p));
      }
    };
    walk(root);
    return out.sort();
  };

  test('the package ships the repository\'s public protos unchanged', () => {
    const shipped = files(path.join(PKG, 'proto'));
    expect(shipped).toEqual(['sessiongrid/v1/admin.proto', 'sessiongrid/v1/session.proto']);
    for (const f of shipped) {
      expect(fs.readFileSync(path.join(PKG, 'proto', f), 'utf8'))
        .toBe(fs.readFileSync(path.join(REPO_PROTO, f), 'utf8'));
    }
  });
});
