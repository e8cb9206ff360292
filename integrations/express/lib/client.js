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

// Idempotent calls are retried on UNAVAILABLE inside their deadline; the
// others (Create, Update without a version) never are. Round-robin over
// whatever the target resolves to.
function serviceConfig() {
  const retry = {
    maxAttempts: 3,
    initialBackoff: '0.02s',
    maxBackoff: '0.2s',
    backoffMultiplier: 2,
    retryableStatusCodes: ['UNAVAILABLE'],
  };
  const names = ['Get', 'Touch', 'Delete'].map((method) => ({
    service: 'sessiongrid.v1.SessionService',
    method,
  }));
  names.push({ service: 'sessiongrid.v1.AdminService' });
  return JSON.stringify({
    loadBalancingConfig: [{ round_robin: {} }],
    methodConfig: [{ name: names, retryPolicy: retry }],
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
    ...(channelOptions || {}),
  };
  const sessions = new v1.SessionService(target, creds, options);
  const admin = new v1.AdminService(target, creds, { ...options, channelOverride: sessions.getChannel() });
  return { sessions, admin };
}

module.exports = { createClients, grpc, PROTO_ROOT };
