'use strict';
// The Express app of bench/compare-express.sh: the demo app's flows
// (integrations/express/examples/demo-app.js) with one of two session
// layers, as its users would run it:
//
//   node app.js redis  PORT REDIS_PORT SECRET   express-session + connect-redis
//   node app.js edge   PORT                     behind sessiongrid-edge
//
// Prints "listening PORT" on stdout once it accepts connections.
const path = require('path');

const pkg = path.resolve(__dirname, '../../integrations/express');
const need = (name) => require(require.resolve(name, { paths: [pkg] }));
const { createDemoApp } = require(path.join(pkg, 'examples/demo-app.js'));

async function main() {
  const [mode, portArg, redisPort, secret] = process.argv.slice(2);
  let middleware;
  if (mode === 'redis') {
    const session = need('express-session');
    const { RedisStore } = need('connect-redis');
    const { createClient } = need('redis');
    const client = createClient({ url: `redis://127.0.0.1:${redisPort}` });
    await client.connect();
    middleware = session({
      store: new RedisStore({ client }),
      secret,
      resave: false,
      saveUninitialized: false,
    });
  } else if (mode === 'edge') {
    const { edgeSession } = require(pkg);
    middleware = edgeSession();
  } else {
    throw new Error(`usage: app.js redis|edge PORT [REDIS_PORT SECRET]`);
  }
  const server = createDemoApp(middleware).listen(Number(portArg), '127.0.0.1', () => {
    console.log(`listening ${server.address().port}`);
  });
  server.keepAliveTimeout = 60000;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
