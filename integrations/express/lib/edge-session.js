'use strict';
// edgeSession(): express-session's req.session for an app behind
// sessiongrid-edge. The edge loads the session and hands it over in request
// headers; this middleware turns them into req.session / req.sessionID and
// turns the changes the app made into the edge's response directives, just
// before the response head goes out. Nothing is written when nothing
// changed (express-session's resave: false, saveUninitialized: false).
//
// The protocol (edge/session_protocol.h):
//   edge -> app  X-Session-Status  none | loaded | expired | unavailable
//                X-Session-Id, X-Session-Data (base64), X-Session-Principal
//                                  (loaded only)
//   app -> edge  X-Session-Set (base64), X-Session-Principal,
//                X-Session-Destroy: 1, X-Session-TTL: <seconds>
//
// Behind nginx auth_request (option `authRequest`: the edge's
// --auth-request-path URL): nginx passes the same request headers from
// the edge's check (plus X-Session-Version and X-Session-Set-Cookie), but
// the response does not go through the edge, so the directives are POSTed
// to <authRequest>/commit with the request's Cookie, and the Set-Cookie
// the edge answers is sent to the browser. The response is held back
// (writeHead/write/end queued) only while such a commit is in flight.
const http = require('http');
const { BlockList, isIP } = require('net');

const H_STATUS = 'x-session-status';
const H_ID = 'x-session-id';
const H_DATA = 'x-session-data';
const H_PRINCIPAL = 'x-session-principal';
const H_VERSION = 'x-session-version';
const H_SET_COOKIE = 'x-session-set-cookie';

const STATUSES = new Set(['none', 'loaded', 'expired', 'unavailable']);
// Statuses whose directives the edge applies.
const WRITABLE = new Set(['none', 'loaded', 'expired']);

const CTX = Symbol('sessiongrid.edgeSession.context');

// A change after the response head went out cannot reach the edge: the
// default report is one process warning.
let lateChangeWarned = false;
function warnLateChange() {
  if (lateChangeWarned) return;
  lateChangeWarned = true;
  process.emitWarning(
    'sessiongrid-express: req.session changed after the response head was sent; ' +
    'behind the edge, changes travel in response headers, so this one was lost',
    { code: 'SESSIONGRID_LATE_CHANGE' });
}

// ---- cookie ---------------------------------------------------------------

// What req.session.cookie offers express-session code: maxAge (remaining
// ms, settable), originalMaxAge, expires, and the attributes for reading.
// The edge owns the real cookie; a changed maxAge becomes X-Session-TTL.
class EdgeCookie {
  constructor(maxAgeMs, attributes) {
    Object.assign(this, attributes);
    this.originalMaxAge = null;
    this._expires = null;
    if (typeof maxAgeMs === 'number') this.maxAge = maxAgeMs;
  }

  get maxAge() {
    return this._expires instanceof Date ? this._expires.getTime() - Date.now() : null;
  }

  set maxAge(ms) {
    if (ms !== null && ms !== undefined && typeof ms !== 'number') {
      throw new TypeError('cookie.maxAge must be a number of milliseconds or null');
    }
    if (typeof ms === 'number') {
      this._expires = new Date(Date.now() + ms);
      this.originalMaxAge = ms;
    } else {
      this._expires = null;
      this.originalMaxAge = null;
    }
  }

  get expires() {
    return this._expires;
  }

  set expires(date) {
    if (date instanceof Date) {
      this._expires = date;
      this.originalMaxAge = date.getTime() - Date.now();
    } else {
      this._expires = null;
      this.originalMaxAge = null;
    }
  }

  toJSON() {
    const out = {};
    for (const key of Object.keys(this)) {
      if (key !== '_expires') out[key] = this[key];
    }
    out.expires = this._expires;
    return out;
  }
}

// ---- session --------------------------------------------------------------

// The session's own enumerable properties, as JSON, without the cookie:
// what X-Session-Set carries and what "changed" is measured on.
function serialise(session) {
  return JSON.stringify(session, function replacer(key, value) {
    if (this === session && key === 'cookie') return undefined;
    return value;
  });
}

function defer(fn, ...args) {
  if (typeof fn === 'function') setImmediate(fn, ...args);
}

class EdgeSession {
  constructor(ctx, id, data) {
    Object.defineProperty(this, CTX, { value: ctx });
    Object.defineProperty(this, 'id', { value: id, enumerable: false });
    Object.defineProperty(this, 'req', { value: ctx.req, enumerable: false });
    this.cookie = new EdgeCookie(ctx.options.cookieMaxAge, ctx.options.cookieAttributes);
    assignData(this, data);
  }

  // Writes happen with the response head; save() asks for a write even
  // when nothing changed (as express-session's explicit save does).
  save(callback) {
    const ctx = this[CTX];
    if (ctx.req.session === this) ctx.forceSave = true;
    defer(callback, null);
    return this;
  }

  // A new, empty session replaces this one; the old one is destroyed.
  regenerate(callback) {
    const ctx = this[CTX];
    ctx.regenerated = true;
    ctx.forceSave = false;
    ctx.destroyed = false;
    installSession(ctx, undefined, {});
    defer(callback, null);
    return this;
  }

  destroy(callback) {
    const ctx = this[CTX];
    ctx.destroyed = true;
    ctx.forceSave = false;
    delete ctx.req.session;
    defer(callback, null);
    return this;
  }

  // Back to what the edge loaded for this request (the edge reads once per
  // request, so there is nothing newer to fetch).
  reload(callback) {
    const ctx = this[CTX];
    if (ctx.regenerated || ctx.destroyed || ctx.req.session !== this) {
      defer(callback, new Error('failed to load session'));
      return this;
    }
    for (const key of Object.keys(this)) {
      if (key !== 'cookie') delete this[key];
    }
    assignData(this, ctx.loadedData());
    defer(callback, null);
    return this;
  }

  // The edge slides the expiry on every read: touching only resets the
  // cookie's maxAge, as express-session's touch() does.
  touch() {
    return this.resetMaxAge();
  }

  resetMaxAge() {
    this.cookie.maxAge = this.cookie.originalMaxAge;
    return this;
  }
}

function assignData(session, data) {
  for (const key of Object.keys(data)) {
    // Stored data never shadows the session's own members (as in
    // express-session); a stored cookie belongs to the store path.
    if (key in session) continue;
    session[key] = data[key];
  }
}

function installSession(ctx, id, data) {
  const session = new EdgeSession(ctx, id, data);
  ctx.req.session = session;
  ctx.req.sessionID = id;
  return session;
}

// ---- options ----------------------------------------------------------------

function buildTrust(trust) {
  if (trust === true) return () => true;
  if (typeof trust === 'function') return (req) => Boolean(trust(req.socket.remoteAddress, req));
  const entries = trust === undefined ? ['loopback'] : trust;
  if (!Array.isArray(entries)) {
    throw new TypeError('edgeSession: trust must be true, a function or an array of addresses/CIDRs');
  }
  const list = new BlockList();
  for (const entry of entries) {
    if (entry === 'loopback') {
      list.addSubnet('127.0.0.0', 8, 'ipv4');
      list.addAddress('::1', 'ipv6');
      continue;
    }
    const [address, bits] = String(entry).split('/');
    const family = isIP(address);
    if (family === 0) throw new TypeError(`edgeSession: trust entry ${entry} is not an address or CIDR`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) {
      list.addAddress(address, type);
    } else {
      const prefix = Number(bits);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
        throw new TypeError(`edgeSession: trust entry ${entry} has a bad prefix length`);
      }
      list.addSubnet(address, prefix, type);
    }
  }
  return (req) => {
    let address = req.socket && req.socket.remoteAddress;
    if (!address) return false;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) address = mapped[1];
    return list.check(address, isIP(address) === 4 ? 'ipv4' : 'ipv6');
  };
}

// `authRequest`: the edge's check URL (http://HOST:PORT/<path>); the
// commit is <path>/commit on the same edge.
function authRequestOptions(o) {
  if (o.authRequest === undefined || o.authRequest === null) return null;
  let url;
  try {
    url = new URL(String(o.authRequest));
  } catch (_) {
    throw new TypeError(`edgeSession: authRequest must be an http:// URL (got ${o.authRequest})`);
  }
  if (url.protocol !== 'http:' || url.pathname === '/' || url.search || url.hash) {
    throw new TypeError('edgeSession: authRequest must be http://HOST:PORT/<--auth-request-path>, without query');
  }
  const timeoutMs = o.authRequestTimeout === undefined ? 3000 : o.authRequestTimeout;
  if (!(typeof timeoutMs === 'number' && timeoutMs > 0)) {
    throw new TypeError('edgeSession: authRequestTimeout must be a positive number of milliseconds');
  }
  const cookieName = o.cookieName === undefined ? 'connect.sid' : o.cookieName;
  if (typeof cookieName !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cookieName)) {
    throw new TypeError('edgeSession: cookieName must be a cookie name (the edge\'s --cookie-name)');
  }
  return {
    commitUrl: new URL(`${url.pathname.replace(/\/+$/, '')}/commit`, url.origin),
    timeoutMs,
    cookieName,
    agent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
  };
}

function normaliseOptions(options) {
  const o = options || {};
  const cookie = o.cookie || {};
  const { maxAge, ...attributes } = cookie;
  if (maxAge !== undefined && maxAge !== null &&
      !(typeof maxAge === 'number' && maxAge > 0)) {
    throw new TypeError('edgeSession: cookie.maxAge must be a positive number of milliseconds');
  }
  if (o.principal !== undefined && typeof o.principal !== 'function') {
    throw new TypeError('edgeSession: principal must be a function (session) => string');
  }
  const unavailable = o.unavailable === undefined ? 'error' : o.unavailable;
  if (unavailable !== 'error' && unavailable !== 'continue') {
    throw new TypeError("edgeSession: unavailable must be 'error' or 'continue'");
  }
  if (o.onLateChange !== undefined && typeof o.onLateChange !== 'function') {
    throw new TypeError('edgeSession: onLateChange must be a function (req) => void');
  }
  return {
    authRequest: authRequestOptions(o),
    onLateChange: o.onLateChange || warnLateChange,
    cookieMaxAge: typeof maxAge === 'number' ? maxAge : undefined,
    cookieAttributes: { path: '/', httpOnly: true, ...attributes },
    principal: o.principal,
    unavailable,
    trust: buildTrust(o.trust),
  };
}

// ---- request / response -------------------------------------------------------

function firstHeader(req, name) {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function decodeData(base64) {
  if (!base64) return {};
  try {
    const value = JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const { cookie, ...rest } = value;
      return rest;
    }
  } catch (_) {
    // Not ours (e.g. written by a non-JSON app): an empty session; it is
    // only overwritten if this request changes something.
  }
  return {};
}

// A principal the edge accepts: 1..256 visible ASCII or space characters.
function validPrincipal(p) {
  return p.length <= 256 && /^[\x20-\x7e]*$/.test(p);
}

function principalOf(ctx, session) {
  const value = ctx.options.principal(session);
  if (value === undefined || value === null || value === false) return '';
  const p = String(value).trim();
  if (!validPrincipal(p)) {
    process.emitWarning(
      'sessiongrid-express: principal ignored (must be at most 256 printable ASCII characters)',
      { code: 'SESSIONGRID_BAD_PRINCIPAL' });
    return null;
  }
  return p;
}

// The directives for what the request did to its session: a plain object
// of header name -> value (empty when nothing changed).
function directives(ctx) {
  const out = {};
  if (!WRITABLE.has(ctx.status)) return out;
  const session = ctx.req.session;
  const loaded = ctx.status === 'loaded';

  if (!(session instanceof EdgeSession) || session[CTX] !== ctx) {
    // destroy(): log out (the edge deletes the session, clears the cookie).
    if (ctx.destroyed) out['X-Session-Destroy'] = '1';
    return out;
  }

  const json = serialise(session);
  ctx.emittedJson = json;
  // A session that starts here: none/expired, or regenerated.
  const fresh = ctx.regenerated || !loaded;
  // express-session: a regenerated session's predecessor is destroyed at
  // once; a fresh session is stored only when it holds something (or was
  // saved explicitly); a loaded one only when it changed.
  if (ctx.regenerated && ctx.status !== 'none') out['X-Session-Destroy'] = '1';
  const write = ctx.forceSave || json !== (fresh ? '{}' : ctx.loadedJson);
  if (write) out['X-Session-Set'] = Buffer.from(json, 'utf8').toString('base64');

  if (write && ctx.options.principal) {
    const p = principalOf(ctx, session);
    const before = fresh ? '' : ctx.loadedPrincipal;
    if (p !== null && p !== before) out['X-Session-Principal'] = p;
  }

  // TTL: for a session being created, its cookie.maxAge (configured or set
  // by the app); for a loaded one, a maxAge the app changed.
  const maxAge = session.cookie && session.cookie.originalMaxAge;
  if (typeof maxAge === 'number' && maxAge > 0 &&
      (fresh ? write : maxAge !== ctx.initialMaxAge)) {
    out['X-Session-TTL'] = String(Math.ceil(maxAge / 1000));
  }
  return out;
}

function hookResponseHead(res, fn) {
  const original = res.writeHead;
  let done = false;
  res.writeHead = function writeHeadWithSession(...args) {
    if (!done) {
      done = true;
      fn();
    }
    return original.apply(this, args);
  };
}

// ---- auth_request write-back ---------------------------------------------------

// POSTs the directives to the edge's commit endpoint. Resolves to the
// Set-Cookie lines the edge answered; rejects on anything but 200 (503:
// the session service failed) or when the edge does not answer in time.
function postCommit(ctx, headers) {
  const a = ctx.options.authRequest;
  const reqHeaders = { ...headers, 'content-length': '0' };
  const cookie = ctx.req.headers.cookie;
  if (cookie) reqHeaders.cookie = cookie;
  if (ctx.version) reqHeaders[H_VERSION] = ctx.version;
  // The client nginx saw: the edge's --anon-session-rate counts new
  // sessions per client, not per application pod.
  for (const h of ['x-forwarded-for', 'x-real-ip']) {
    if (ctx.req.headers[h]) reqHeaders[h] = ctx.req.headers[h];
  }
  return new Promise((resolve, reject) => {
    const request = http.request(a.commitUrl, {
      method: 'POST',
      headers: reqHeaders,
      agent: a.agent,
      timeout: a.timeoutMs,
    }, (response) => {
      response.resume();
      response.once('end', () => {
        if (response.statusCode === 200) return resolve(response.headers['set-cookie'] || []);
        if (response.statusCode === 429) {
          // The edge's --anon-session-over-limit=reject: this client creates
          // sessions too fast; answer as the edge would have.
          const err = new Error('SessionGrid: too many new sessions from this address');
          err.status = 429;
          err.code = 'SESSIONGRID_LIMITED';
          err.retryAfter = response.headers['retry-after'];
          return reject(err);
        }
        const err = new Error(`SessionGrid: the session write-back failed (edge answered ${response.statusCode})`);
        err.status = 503;
        err.code = 'SESSIONGRID_UNAVAILABLE';
        return reject(err);
      });
      response.once('error', reject);
    });
    request.once('timeout', () => request.destroy(new Error(
      `SessionGrid: the session write-back timed out after ${a.timeoutMs} ms`)));
    request.once('error', (err) => {
      const e = new Error(`SessionGrid: the session service is unavailable (write-back: ${err.message})`);
      e.status = 503;
      e.code = 'SESSIONGRID_UNAVAILABLE';
      reject(e);
    });
    request.end();
  });
}

function cookieNameOf(line) {
  const eq = String(line).indexOf('=');
  return eq < 0 ? '' : String(line).slice(0, eq).trim();
}

// The session cookie is the edge's: the app's own Set-Cookie for it is
// dropped (as the edge does when it proxies), the edge's added.
function setSessionCookies(res, ctx, lines) {
  const name = ctx.options.authRequest.cookieName;
  const existing = res.getHeader('set-cookie');
  const kept = (existing === undefined ? [] : [].concat(existing))
    .filter((line) => cookieNameOf(line) !== name);
  const all = kept.concat(lines);
  if (all.length > 0) res.setHeader('Set-Cookie', all);
  else res.removeHeader('Set-Cookie');
}

// Holds the response (writeHead, write and end are queued) while the
// commit runs, then replays it with the edge's Set-Cookie. A response
// with nothing to write goes out at once. The wrappers stay in place
// (pass-through) so wrappers installed after ours keep working.
function hookCommit(res, ctx) {
  const original = { writeHead: res.writeHead, write: res.write, end: res.end };
  let state = 'open'; // open -> (pending ->) done
  const queue = [];
  const replay = () => {
    state = 'done';
    for (const [name, args] of queue.splice(0)) original[name].apply(res, args);
  };
  const fail = (err) => {
    state = 'done';
    queue.length = 0;
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.statusCode = err.status || 503;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    if (err.retryAfter) res.setHeader('Retry-After', err.retryAfter);
    original.end.call(res, JSON.stringify({ error: err.message }));
  };
  const checkCookie = () => (ctx.checkCookie ? [ctx.checkCookie] : []);
  const intercept = (name) => function interceptedResponse(...args) {
    if (state === 'done') return original[name].apply(this, args);
    if (state === 'open') {
      const headers = directives(ctx);
      if (Object.keys(headers).length === 0) {
        // Nothing to write: only what the check asked for (clearing a
        // forged or stale cookie, re-signing an old one); an app-set
        // session cookie never passes, bypassed requests included.
        setSessionCookies(res, ctx, checkCookie());
        state = 'done';
        return original[name].apply(this, args);
      }
      state = 'pending';
      queue.push([name, args]);
      postCommit(ctx, headers).then((lines) => {
        setSessionCookies(res, ctx, lines.length > 0 ? lines : checkCookie());
        replay();
      }, (err) => {
        if (ctx.options.unavailable === 'continue' && err.status !== 429) {
          setSessionCookies(res, ctx, checkCookie());
          return replay();
        }
        return fail(err);
      });
    } else {
      queue.push([name, args]);
    }
    return name === 'end' ? this : true;
  };
  res.writeHead = intercept('writeHead');
  res.write = intercept('write');
  res.end = intercept('end');
}

function edgeSession(options) {
  const opts = normaliseOptions(options);

  return function sessiongridEdgeSession(req, res, next) {
    if (req.session) return next();

    const trusted = opts.trust(req);
    let status = trusted ? firstHeader(req, H_STATUS) : undefined;
    if (status !== undefined) status = String(status).trim().toLowerCase();
    if (status !== undefined && !STATUSES.has(status)) status = undefined;

    const ctx = {
      req,
      options: opts,
      // 'bypassed': the edge sent no session (a bypassed request, or the app
      // is reached without the edge); 'untrusted': headers from a peer not
      // in `trust` were ignored.
      status: status || (trusted ? 'bypassed' : 'untrusted'),
      loadedJson: '{}',
      loadedPrincipal: '',
      regenerated: false,
      destroyed: false,
      forceSave: false,
      emittedJson: undefined,
      initialMaxAge: undefined,
      loadedData() {
        return JSON.parse(this.loadedJson);
      },
    };
    req.sessionStatus = ctx.status;

    if (ctx.status === 'unavailable' && opts.unavailable === 'error') {
      const err = new Error('SessionGrid: the session service is unavailable (X-Session-Status: unavailable)');
      err.status = 503;
      err.code = 'SESSIONGRID_UNAVAILABLE';
      return next(err);
    }

    let id;
    let data = {};
    if (ctx.status === 'loaded') {
      id = firstHeader(req, H_ID) || undefined;
      data = decodeData(firstHeader(req, H_DATA));
      ctx.loadedPrincipal = String(firstHeader(req, H_PRINCIPAL) || '').trim();
    }
    const session = installSession(ctx, id, data);
    ctx.loadedJson = serialise(session);
    ctx.initialMaxAge = session.cookie.originalMaxAge;
    req.sessionPrincipal = ctx.loadedPrincipal || undefined;

    if (opts.authRequest) {
      // What the check (through nginx) said besides the session itself.
      if (ctx.status === 'loaded') ctx.version = firstHeader(req, H_VERSION) || undefined;
      if (trusted) ctx.checkCookie = firstHeader(req, H_SET_COOKIE) || undefined;
      hookCommit(res, ctx);
    } else {
      hookResponseHead(res, () => {
        for (const [name, value] of Object.entries(directives(ctx))) {
          res.setHeader(name, value);
        }
      });
    }
    res.once('finish', () => {
      const s = req.session;
      if (ctx.emittedJson === undefined || !(s instanceof EdgeSession)) return;
      if (s[CTX] === ctx && serialise(s) !== ctx.emittedJson) opts.onLateChange(req);
    });
    next();
  };
}

module.exports = { edgeSession, EdgeSession, EdgeCookie };
