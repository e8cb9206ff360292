'use strict';
// The reference: the demo flows on plain express-session with its
// MemoryStore. What the SessionGrid paths must match.
const session = require('express-session');
const { createDemoApp } = require('../examples/demo-app');
const { listen } = require('./harness');
const { describeFlows } = require('./flows');

let app;
beforeAll(async () => {
  app = await listen(createDemoApp(session({
    secret: 'reference-secret',
    resave: false,
    saveUninitialized: false,
  })));
});
afterAll(async () => {
  if (app) await app.close();
});

describeFlows('express-session MemoryStore', () => app);
