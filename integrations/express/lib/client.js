'use strict';
// The gRPC clients of sessiongrid-server's SessionService and AdminService,
// from the protos shipped in this package (a copy of the repository's
// proto/sessiongrid/v1; a test keeps them identical).
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.join(__dirname, '..', 'proto');

let loaded;
function services() {
  if (!loaded) {
    const definition = protoLoader.loadSync(
      ['sessiongrid/v1/session.proto', 'sessiongrid/v1/admin.proto'],
      {
        includeDirs: [PROTO_ROOT],
        keepCase: true,
        longs: String,
        enums: String,
        defaults: false,
        oneofs: true,
      },
    );
    loaded = grpc.loadPackageDefinition(definition).sessiongrid.v1;
  }
  return loaded;
}

// Reads and other idempotent calls (Get, Touch, Delete, admin calls) are
// hedged: a second attempt goes out (to the next node, round-robin) when
// the first has not answered within 150 ms or failed with UNAVAILABLE, so
// a node that stopped answering costs a read 150 ms, not its deadline.
// Create and Update are never sent twice: a late duplicate of a write
// would be applied after newer ones.
function serviceConfig() {
  const hedge = {
    maxAttempts: 2,
    hedgingDelay: '0.15s',
    nonFatalStatusCodes: ['UNAVAILABLE'],
  };
  const names = ['Get', 'Touch', 'Delete'].map((method) => ({
    service: 'sessiongrid.v1.SessionService',
    method,
  }));
  names.push({ service: 'sessiongrid.v1.AdminService' });
  return JSON.stringify({
    loadBalancingConfig: [{ round_robin: {} }],
    methodConfig: [{ name: names, hedgingPolicy: hedge }],
    // Fewer extra attempts while most calls fail (an outage): no storms.
    retryThrottling: { maxTokens: 10, tokenRatio: 0.1 },
  });
}

function createClients({ target, credentials, channelOptions }) {
  const v1 = services();
  const creds = credentials || grpc.credentials.createInsecure();
  const options = {
    'grpc.service_config': serviceConfig(),
    'grpc.enable_retries': 1,
    // Fail fast while the server is down: reconnect attempts stay short.
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 2000,
    // A node that stops answering without closing the connection: a ping
    // while calls are in flight, unanswered, drops the connection, and
    // round-robin leaves that node out until it answers again.
    'grpc.keepalive_time_ms': 10000,
    'grpc.keepalive_timeout_ms': 5000,
    'grpc.keepalive_permit_without_calls': 0,
    ...(channelOptions || {}),
  };
  const sessions = new v1.SessionService(target, creds, options);
  const admin = new v1.AdminService(target, creds, { ...options, channelOverride: sessions.getChannel() });
  return { sessions, admin };
}

module.exports = { createClients, grpc, PROTO_ROOT };
