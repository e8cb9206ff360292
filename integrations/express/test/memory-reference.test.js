'use strict';
// The reference: the demo flows on plain express-session with its
// MemoryStore. What the SessionGrid paths must match.
const session = require('express-session');
const { createDemoApp } = require('../examples/demo-app');
const { listen } = require('./harness');
const { describeFlows } = require('./flows');

const options = { secret: 'reference-secret', resave: false, saveUninitialized: false };
let app;
let app4;
beforeAll(async () => {
  app = await listen(createDemoApp(session(options)));
  app4 = await listen(createDemoApp(session(options), { express: require('express4') }));
});
afterAll(async () => {
  if (app) await app.close();
  if (app4) await app4.close();
});

describeFlows('express-session MemoryStore', () => app);
describeFlows('express-session MemoryStore, express 4', () => app4);
