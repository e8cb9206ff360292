'use strict';
// SessionGridStore: an express-session Store on sessiongrid-server, over
// gRPC. express-session mints the ids; the store keeps each session under
// that id (the server must run with --allow-client-ids), its JSON as the
// session data, and the cookie's remaining lifetime as the TTL.
const { createClients, grpc } = require('./client');
const { requirePeer } = require('./peer');

const { status: Code } = grpc;

// express-session is the application's: its Store is the base class, so
// sessions the store loads are the application's own Session objects.
const session = requirePeer('express-session', 'SessionGridStore');
const { Store } = session;

const DEFAULT_TTL_SECONDS = 86400;
const DEFAULT_TIMEOUT_MS = 1000;
// ListSessions pages (the server's largest), and the bound on how many a
// listing reads (10^9 sessions) so a server bug cannot loop us forever.
const LIST_PAGE_SIZE = 1000;
const MAX_LIST_PAGES = 1000000;
// clear(): Deletes in flight at once.
const CLEAR_CONCURRENCY = 16;

const CODE_NAMES = Object.fromEntries(Object.entries(Code).map(([k, v]) => [v, k]));

// A gRPC failure as an Error for express: status 503 when the service is
// unavailable or refusing (so express answers 503), 500 otherwise.
function serviceError(method, err, hint) {
  const name = CODE_NAMES[err.code] || String(err.code);
  const out = new Error(
    `SessionGrid ${method} failed: ${name}: ${err.details || err.message}${hint ? ` (${hint})` : ''}`);
  out.code = `SESSIONGRID_${name}`;
  out.grpcCode = err.code;
  out.status = [Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED,
    Code.CANCELLED].includes(err.code) ? 503 : 500;
  out.cause = err;
  return out;
}

// What a refused Create under express-session's id usually means.
function createHint(code) {
  if (code === Code.PERMISSION_DENIED) {
    return 'sessiongrid-server stores sessions under application ids only with --allow-client-ids';
  }
  if (code === Code.INVALID_ARGUMENT) {
    return 'ids must be 22-128 characters of [A-Za-z0-9_-], data at most --max-session-bytes, ' +
      'the TTL at most --max-ttl';
  }
  return '';
}

function seconds(n) {
  return { seconds: String(Math.max(1, Math.ceil(n))), nanos: 0 };
}

class SessionGridStore extends Store {
  // options:
  //   target          'HOST:PORT' or any grpc-js target ('dns:///name:7400',
  //                   'ipv4:10.0.0.1:7400,10.0.0.2:7400'); default
  //                   $SESSIONGRID_SERVER or 127.0.0.1:7400
  //   credentials     grpc-js channel credentials (default insecure)
  //   channelOptions  extra grpc-js channel options
  //   timeout         deadline of each call in ms (default 1000)
  //   ttl             seconds, or (session) => seconds, used when the cookie
  //                   has no expiry (default 86400), as in connect-redis
  //   disableTouch    touch() does nothing (TTLs are only set on writes)
  //   disableTTL      never send a TTL: new sessions get the server's
  //                   --default-ttl, writes keep the current expiry
  //   principal       (session) => string | undefined: who is logged in;
  //                   stored as the session's principal (authenticated
  //                   class, listByPrincipal / destroyByPrincipal)
  //   serializer      { stringify, parse } (default JSON)
  //   fallback        another express-session store (e.g. connect-redis's)
  //                   read on a miss during a migration: a session found
  //                   there is copied here under its id; destroy() removes
  //                   it from both
  //   adminToken      the server's --admin-token-file token, sent (as
  //                   'authorization: Bearer') with the calls that list or
  //                   delete many sessions: all, ids, clear, listByPrincipal,
  //                   destroyByPrincipal
  //   allowClear      clear() deletes every session of the cluster (the
  //                   edge's and other apps' too); it refuses unless this
  //                   is true
  constructor(options = {}) {
    super();
    this.target = options.target || process.env.SESSIONGRID_SERVER || '127.0.0.1:7400';
    this.timeout = options.timeout === undefined ? DEFAULT_TIMEOUT_MS : Number(options.timeout);
    if (!(this.timeout > 0)) throw new TypeError('SessionGridStore: timeout must be a positive number of ms');
    this.ttl = options.ttl === undefined ? DEFAULT_TTL_SECONDS : options.ttl;
    if (typeof this.ttl !== 'function' && !(typeof this.ttl === 'number' && this.ttl > 0)) {
      throw new TypeError('SessionGridStore: ttl must be a positive number of seconds or a function');
    }
    this.disableTouch = Boolean(options.disableTouch);
    this.disableTTL = Boolean(options.disableTTL);
    if (options.principal !== undefined && typeof options.principal !== 'function') {
      throw new TypeError('SessionGridStore: principal must be a function (session) => string');
    }
    this.principal = options.principal;
    this.serializer = options.serializer || JSON;
    if (options.fallback !== undefined &&
        !(options.fallback && typeof options.fallback.get === 'function' &&
          typeof options.fallback.destroy === 'function')) {
      throw new TypeError('SessionGridStore: fallback must be an express-session store');
    }
    this.fallback = options.fallback;
    if (options.adminToken !== undefined && (typeof options.adminToken !== 'string' || !options.adminToken)) {
      throw new TypeError('SessionGridStore: adminToken must be a non-empty string');
    }
    this.adminToken = options.adminToken;
    this.allowClear = options.allowClear === true;
    const { sessions, admin } = createClients({
      target: this.target,
      credentials: options.credentials,
      channelOptions: options.channelOptions,
    });
    this.client = sessions;
    this.admin = admin;
  }

  // One unary call with its own deadline; resolves to the response, rejects
  // with the gRPC error. `admin`: the call carries adminToken, if any.
  _call(client, method, request, { admin = false } = {}) {
    return new Promise((resolve, reject) => {
      const deadline = new Date(Date.now() + this.timeout);
      const metadata = new grpc.Metadata();
      if (admin && this.adminToken) metadata.set('authorization', `Bearer ${this.adminToken}`);
      client[method](request, metadata, { deadline }, (err, response) => {
        if (err) reject(err);
        else resolve(response);
      });
    });
  }

  // The session's TTL in seconds, as connect-redis computes it: the ttl
  // function, else the cookie's remaining lifetime, else the ttl number.
  _ttlSeconds(sess) {
    if (typeof this.ttl === 'function') return Number(this.ttl(sess));
    const expires = sess && sess.cookie && sess.cookie.expires;
    if (expires) return Math.ceil((new Date(expires).getTime() - Date.now()) / 1000);
    return this.ttl;
  }

  _principalOf(sess) {
    if (!this.principal) return undefined;
    const p = this.principal(sess);
    return p === undefined || p === null || p === false ? '' : String(p);
  }

  // Runs `work` (a promise factory) and hands its outcome to an optional
  // express-session style callback; also returns the promise.
  _run(work, callback) {
    const promise = work();
    if (typeof callback === 'function') {
      promise.then((value) => callback(null, value), (err) => callback(err));
      return undefined;
    }
    return promise;
  }

  get(sid, callback) {
    return this._run(async () => {
      const found = await this._get(sid);
      if (found !== null || !this.fallback) return found;
      return this._migrate(sid);
    }, callback);
  }

  async _get(sid) {
    let response;
    try {
      response = await this._call(this.client, 'Get', { id: sid });
    } catch (err) {
      // Absent, expired, or an id this service cannot hold: no session.
      if (err.code === Code.NOT_FOUND || err.code === Code.INVALID_ARGUMENT) return null;
      throw serviceError('Get', err);
    }
    return this._decode(response.session);
  }

  // A miss during a migration: the fallback's session, copied here under
  // the same id. A tombstone (logged out here) wins: no copy, no session.
  async _migrate(sid) {
    const old = await new Promise((resolve, reject) => {
      this.fallback.get(sid, (err, value) => (err ? reject(err) : resolve(value || null)));
    });
    if (!old) return null;
    const ttl = this.disableTTL ? undefined : this._ttlSeconds(old);
    if (ttl !== undefined && !(ttl > 0)) return null;
    const create = { id: sid, data: Buffer.from(this.serializer.stringify(old), 'utf8') };
    if (ttl !== undefined) create.ttl = seconds(ttl);
    const principal = this._principalOf(old);
    if (principal) create.principal = principal;
    try {
      await this._call(this.client, 'Create', create);
      this.emit('migrated', sid);
      return this._decode({ id: sid, data: create.data });
    } catch (err) {
      if (err.code !== Code.ALREADY_EXISTS) throw serviceError('Create', err, createHint(err.code));
    }
    // Created meanwhile by a concurrent request (then read it), or
    // destroyed here (then it stays destroyed).
    return this._get(sid);
  }

  _decode(record) {
    const text = Buffer.from(record.data || []).toString('utf8');
    const sess = this.serializer.parse(text);
    if (!sess || typeof sess !== 'object') {
      throw new Error(`SessionGrid session ${record.id} does not hold a JSON object`);
    }
    if (!sess.cookie || typeof sess.cookie !== 'object') {
      // Written without a cookie (by the edge middleware or another
      // client): one that ends when the record does.
      const expires = record.expire_time
        ? new Date(Number(record.expire_time.seconds) * 1000) : undefined;
      sess.cookie = {
        originalMaxAge: expires ? expires.getTime() - Date.now() : null,
        expires: expires ? expires.toISOString() : undefined,
        httpOnly: true,
        path: '/',
      };
    }
    return sess;
  }

  set(sid, sess, callback) {
    return this._run(async () => {
      let ttl;
      if (!this.disableTTL) {
        ttl = this._ttlSeconds(sess);
        // An expired cookie: the session is over (as connect-redis does).
        if (!(ttl > 0)) return this._destroy(sid);
      }
      const data = Buffer.from(this.serializer.stringify(sess), 'utf8');
      const principal = this._principalOf(sess);
      const update = { id: sid, data };
      if (ttl !== undefined) update.ttl = seconds(ttl);
      if (principal !== undefined) update.principal = principal;

      // Most writes are to an existing session: Update first; NOT_FOUND
      // means new (or expired): Create under express-session's id.
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          await this._call(this.client, 'Update', update);
          return undefined;
        } catch (err) {
          if (err.code !== Code.NOT_FOUND) throw serviceError('Update', err);
        }
        const create = { id: sid, data };
        if (ttl !== undefined) create.ttl = seconds(ttl);
        if (principal) create.principal = principal;
        try {
          await this._call(this.client, 'Create', create);
          return undefined;
        } catch (err) {
          // ALREADY_EXISTS: created concurrently (try the Update again), or
          // destroyed (a tombstone; the Update answers NOT_FOUND again).
          if (err.code !== Code.ALREADY_EXISTS) {
            throw serviceError('Create', err, createHint(err.code));
          }
        }
      }
      // Destroyed while this request ran (a logout): the write is dropped,
      // a logout is never undone.
      this.emit('dropped', sid);
      return undefined;
    }, callback);
  }

  async _destroy(sid) {
    try {
      await this._call(this.client, 'Delete', { id: sid });
    } catch (err) {
      if (err.code !== Code.NOT_FOUND && err.code !== Code.INVALID_ARGUMENT) {
        throw serviceError('Delete', err);
      }
    }
    return undefined;
  }

  destroy(sid, callback) {
    return this._run(async () => {
      await this._destroy(sid);
      if (this.fallback) {
        await new Promise((resolve, reject) => {
          this.fallback.destroy(sid, (err) => (err ? reject(err) : resolve()));
        });
      }
    }, callback);
  }

  touch(sid, sess, callback) {
    return this._run(async () => {
      if (this.disableTouch || this.disableTTL) return undefined;
      const ttl = this._ttlSeconds(sess);
      if (!(ttl > 0)) return undefined;
      try {
        await this._call(this.client, 'Touch', { id: sid, ttl: seconds(ttl) });
      } catch (err) {
        if (err.code !== Code.NOT_FOUND && err.code !== Code.INVALID_ARGUMENT) {
          throw serviceError('Touch', err);
        }
      }
      return undefined;
    }, callback);
  }

  // The number of live sessions on the node that answers (NodeStats): every
  // session it holds, including ones the edge created. Exact on one node;
  // in a cluster, that node's share.
  length(callback) {
    return this._run(async () => {
      let response;
      try {
        response = await this._call(this.admin, 'NodeStats', {});
      } catch (err) {
        throw serviceError('NodeStats', err);
      }
      return Number((response.stats && response.stats.sessions) || 0);
    }, callback);
  }

  // Every live session of the cluster, page after page of ListSessions
  // (each page its own call and deadline): `onPage(records)` runs per page.
  async _listAll(includeData, onPage) {
    let token = '';
    for (let pages = 0; pages < MAX_LIST_PAGES; pages++) {
      let response;
      try {
        response = await this._call(this.client, 'ListSessions',
          { page_size: LIST_PAGE_SIZE, page_token: token, include_data: includeData }, { admin: true });
      } catch (err) {
        throw serviceError('ListSessions', err, err.code === Code.UNIMPLEMENTED
          ? 'the server predates ListSessions; upgrade sessiongrid-server' : '');
      }
      await onPage(response.sessions || []);
      token = response.next_page_token || '';
      if (!token) return;
    }
    throw new Error('SessionGrid ListSessions did not end');
  }

  // Every session as connect-redis answers it: an array of the sessions,
  // each with its `id`. Sessions that do not hold a JSON object (written by
  // other clients of the service, e.g. sessiongridctl create) are left out.
  all(callback) {
    return this._run(async () => {
      const out = [];
      await this._listAll(true, (records) => {
        for (const record of records) {
          let sess;
          try {
            sess = this._decode(record);
          } catch (err) {
            continue;
          }
          sess.id = record.id;
          out.push(sess);
        }
      });
      return out;
    }, callback);
  }

  // The ids of every live session (data is not fetched).
  ids(callback) {
    return this._run(async () => {
      const out = [];
      await this._listAll(false, (records) => {
        for (const record of records) out.push(record.id);
      });
      return out;
    }, callback);
  }

  // Deletes every session of the cluster, one Delete each (the service has
  // no call that wipes a store): only with allowClear, and with adminToken
  // when the server guards its listing. Resolves to how many were deleted.
  clear(callback) {
    return this._run(async () => {
      if (!this.allowClear) {
        const err = new Error(
          'SessionGridStore.clear() deletes every session of the cluster (the edge\'s and other apps\' too); ' +
          'create the store with allowClear: true to allow it');
        err.code = 'SESSIONGRID_CLEAR_NOT_ALLOWED';
        throw err;
      }
      let deleted = 0;
      await this._listAll(false, async (records) => {
        const ids = records.map((r) => r.id);
        const worker = async () => {
          while (ids.length) {
            const sid = ids.pop();
            let response;
            try {
              response = await this._call(this.client, 'Delete', { id: sid });
            } catch (err) {
              if (err.code === Code.NOT_FOUND) continue;
              throw serviceError('Delete', err);
            }
            if (response.deleted) deleted++;
          }
        };
        await Promise.all(Array.from({ length: CLEAR_CONCURRENCY }, worker));
      });
      return deleted;
    }, callback);
  }

  // Sessions of one principal (needs the principal option): an object of
  // id -> session, at most the server's limit (1000).
  listByPrincipal(principal, callback) {
    return this._run(async () => {
      let response;
      try {
        response = await this._call(this.client, 'ListByPrincipal', { principal: String(principal) }, { admin: true });
      } catch (err) {
        throw serviceError('ListByPrincipal', err);
      }
      const out = {};
      for (const record of response.sessions || []) out[record.id] = this._decode(record);
      return out;
    }, callback);
  }

  // Log out everywhere: deletes every session of the principal; resolves
  // to how many were deleted.
  destroyByPrincipal(principal, callback) {
    return this._run(async () => {
      let response;
      try {
        response = await this._call(this.client, 'DeleteByPrincipal', { principal: String(principal) }, { admin: true });
      } catch (err) {
        throw serviceError('DeleteByPrincipal', err);
      }
      return Number(response.deleted_count || 0);
    }, callback);
  }

  // Closes the gRPC channel (tests, graceful shutdown).
  close() {
    this.client.close();
  }
}

module.exports = { SessionGridStore, serviceError };
