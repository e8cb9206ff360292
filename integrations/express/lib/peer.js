'use strict';
// Peer dependencies (express-session, redis) are the application's. When
// this package is installed as a link (npm install ./integrations/express)
// its files live outside the application, so the application's copy is
// looked up from the application first, then (e.g. in this package's own
// tests) from here.
const path = require('path');

function requirePeer(name, why) {
  const tried = [];
  const attempt = (fn) => {
    try {
      return fn();
    } catch (err) {
      tried.push(err.message.split('\n')[0]);
      return undefined;
    }
  };
  const linked = !__dirname.split(path.sep).includes('node_modules');
  const roots = linked ? [require.main && require.main.path, process.cwd()].filter(Boolean) : [];
  for (const root of roots) {
    const found = attempt(() => require(require.resolve(name, { paths: [root] })));
    if (found) return found;
  }
  const fromHere = attempt(() => require(name));
  if (fromHere) return fromHere;
  throw new Error(`sessiongrid-express: ${why} needs ${name} installed (${tried.join('; ')})`);
}

module.exports = { requirePeer };
