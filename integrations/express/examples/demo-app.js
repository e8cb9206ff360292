'use strict';
// The demo app's flows (examples/demo-app in the repository) written as an
// ordinary express-session application: nothing in it knows about
// SessionGrid. Only the session middleware handed to createDemoApp()
// differs between running it on express-session's MemoryStore, on
// SessionGridStore, or behind sessiongrid-edge with edgeSession().
//
//   node examples/demo-app.js            # behind the edge: edgeSession()
//   SESSIONGRID_SERVER=127.0.0.1:7400 SESSION_SECRET=... \
//     node examples/demo-app.js --store  # express-session + SessionGridStore
const defaultExpress = require('express');

const REMEMBER_ME_MS = 30 * 24 * 3600 * 1000;

// `options.express`: the express module to build with (default: this
// package's; the tests also run it on express 4).
function createDemoApp(sessionMiddleware, options = {}) {
  const express = options.express || defaultExpress;
  const app = express();
  app.disable('x-powered-by');

  app.get('/api/health', (req, res) => {
    res.json({ status: 'ok', timestamp: new Date().toISOString() });
  });
  app.get('/assets/:name', (req, res) => {
    res.type(req.params.name).send(`/* demo asset ${req.params.name} */\n`);
  });

  app.use(sessionMiddleware);
  app.use(express.json());

  app.get('/', (req, res) => {
    const user = req.session.user;
    res.type('html').send(
      `<!doctype html><title>demo</title><p>${user ? `Hello, ${escapeHtml(user)}` : 'Not logged in'}` +
      ` &middot; counter ${req.session.counter || 0}</p>\n`);
  });

  app.post('/api/auth/login', (req, res, next) => {
    const { username, password, remember } = req.body || {};
    if (typeof username !== 'string' || !username || typeof password !== 'string' || !password) {
      return res.status(401).json({ error: 'username and password required' });
    }
    if (username.length > 64 || !/^[\x20-\x7e]+$/.test(username)) {
      return res.status(400).json({ error: 'username must be 1-64 printable ASCII characters' });
    }
    // Anonymous state (the counter) carries over into the logged-in
    // session; a new id at login (session fixation).
    const counter = req.session.counter || 0;
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = username;
      req.session.counter = counter;
      if (remember === true) req.session.cookie.maxAge = REMEMBER_ME_MS;
      req.session.save((saveErr) => {
        if (saveErr) return next(saveErr);
        res.json({ ok: true, user: username });
      });
    });
  });

  app.post('/api/auth/logout', (req, res, next) => {
    req.session.destroy((err) => {
      if (err) return next(err);
      res.clearCookie('connect.sid');
      res.json({ ok: true });
    });
  });

  const counter = (req, res) => {
    req.session.counter = (req.session.counter || 0) + 1;
    res.json({ counter: req.session.counter, user: req.session.user || null });
  };
  app.get(['/api/counter', '/api/user/counter'], counter);
  app.post(['/api/counter', '/api/user/counter'], counter);

  app.get(['/api/whoami', '/api/user/whoami'], (req, res) => {
    res.json({
      loggedIn: Boolean(req.session.user),
      user: req.session.user || null,
      counter: req.session.counter || 0,
    });
  });

  app.use('/api', (req, res) => res.status(404).json({ error: 'not found' }));

  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    res.status(err.status || 500).json({ error: err.message });
  });
  return app;
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

module.exports = { createDemoApp, REMEMBER_ME_MS };

if (require.main === module) {
  const { edgeSession, SessionGridStore } = require('..');
  const port = Number(process.env.PORT || 3000);
  let middleware;
  if (process.argv.includes('--store')) {
    const session = require('express-session');
    middleware = session({
      store: new SessionGridStore({ target: process.env.SESSIONGRID_SERVER || '127.0.0.1:7400' }),
      secret: process.env.SESSION_SECRET || 'change me',
      resave: false,
      saveUninitialized: false,
    });
  } else {
    middleware = edgeSession();
  }
  const server = createDemoApp(middleware).listen(port, '127.0.0.1', () => {
    console.log(`demo app on http://127.0.0.1:${server.address().port}`);
  });
}
