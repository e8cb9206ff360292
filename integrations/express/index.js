'use strict';
// sessiongrid-express: express-session on SessionGrid.
//   app.use(edgeSession())  behind sessiongrid-edge (req.session from the
//                           edge's X-Session-* headers)
//   session({ store: new SessionGridStore({ target: '127.0.0.1:7400' }), ... })
//                           without the edge (gRPC to sessiongrid-server)
const { edgeSession } = require('./lib/edge-session');

module.exports = { edgeSession };

// Loaded on first use: only the store needs express-session and gRPC.
Object.defineProperty(module.exports, 'SessionGridStore', {
  enumerable: true,
  get() {
    return require('./lib/store').SessionGridStore;
  },
});
