// Shared helpers for our own E2E tests (the seed's suite uses none of
// these, to stay a faithful copy). run.sh sets the environment:
//   TEST_URL            the edge's main listener, http://127.0.0.1:PORT
//   ADMIN_URL           the edge's admin listener
//   DEMO_URL            the demo app itself (the edge's upstream)
//   COOKIE_SECRET_FILE  the edge's --cookie-secret-file (newest key first)
//   SG_CTL              sessiongridctl binary
//   SG_SESSION_SERVICE  the session server's gRPC address
const { execFileSync } = require('child_process');
const fs = require('fs');
const axios = require('axios');

const BASE_URL = process.env.TEST_URL || 'http://localhost:3000';
const ADMIN_URL = process.env.ADMIN_URL || '';
const DEMO_URL = process.env.DEMO_URL || '';
const COOKIE_NAME = 'connect.sid';

// A desktop Chrome: matches none of the edge's automated-agent patterns.
const BROWSER_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) ' +
  'Chrome/124.0.0.0 Safari/537.36';

// Every request of these tests reads the full response and never throws on
// a status code, so assertions see what the edge answered.
const http = axios.create({
  baseURL: BASE_URL,
  validateStatus: () => true,
  maxRedirects: 0,
  timeout: 10000,
});

// A client address outside every internal range (TEST-NET-3, RFC 5737):
// with run.sh's --trusted-proxies for loopback, the edge classifies the
// request as coming from this public client rather than from 127.0.0.1.
function publicClient(n = 7) {
  return { 'X-Forwarded-For': `203.0.113.${n % 250 + 1}` };
}

function browserHeaders(extra = {}) {
  return {
    'User-Agent': BROWSER_UA,
    Accept: 'application/json',
    ...publicClient(),
    ...extra,
  };
}

// The Set-Cookie lines of a response for the session cookie.
function sessionSetCookies(response) {
  const lines = response.headers['set-cookie'] || [];
  return lines.filter((l) => l.startsWith(`${COOKIE_NAME}=`));
}

// "connect.sid=VALUE" from the response's Set-Cookie, or null.
function sessionCookie(response) {
  const lines = sessionSetCookies(response);
  if (lines.length === 0) return null;
  return lines[lines.length - 1].split(';')[0];
}

// The raw (still URL-encoded) cookie value from "name=value".
function cookieValue(pair) {
  return pair.slice(pair.indexOf('=') + 1);
}

// Whether a Set-Cookie line deletes its cookie.
function isClearing(line) {
  const value = line.split(';')[0].split('=').slice(1).join('=');
  return (
    value === '' ||
    /;\s*max-age=0(\s*;|\s*$)/i.test(line) ||
    /;\s*expires=[^;]*19(70|69)/i.test(line)
  );
}

function secrets() {
  const file = process.env.COOKIE_SECRET_FILE;
  if (!file) throw new Error('COOKIE_SECRET_FILE is not set (use run.sh)');
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

// Runs sessiongridctl against the session server; parses JSON output.
function ctl(...args) {
  const bin = process.env.SG_CTL;
  const server = process.env.SG_SESSION_SERVICE;
  if (!bin || !server) throw new Error('SG_CTL / SG_SESSION_SERVICE not set');
  const out = execFileSync(bin, ['--server', server, ...args], {
    encoding: 'utf8',
    timeout: 10000,
  });
  return JSON.parse(out);
}

// The session server's counters (sessions, creates, reads, writes,
// deletes), numbers as numbers.
function nodeStats() {
  const stats = ctl('stats');
  const s = stats.stats || stats;
  const n = (v) => Number(v || 0);
  return {
    sessions: n(s.sessions),
    creates: n(s.creates),
    reads: n(s.reads),
    writes: n(s.writes),
    deletes: n(s.deletes),
  };
}

async function sessionHealth() {
  const r = await http.get('/api/session-health', {
    headers: { 'User-Agent': 'kube-probe/1.29' },
  });
  if (r.status !== 200) throw new Error(`session-health answered ${r.status}`);
  return r.data;
}

// Runs `tasks` (functions returning promises) with at most `limit` in
// flight; resolves to their results in order.
async function runLimited(tasks, limit) {
  const results = new Array(tasks.length);
  let next = 0;
  async function worker() {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

module.exports = {
  ADMIN_URL,
  BASE_URL,
  DEMO_URL,
  BROWSER_UA,
  COOKIE_NAME,
  browserHeaders,
  cookieValue,
  ctl,
  http,
  isClearing,
  nodeStats,
  publicClient,
  runLimited,
  secrets,
  sessionCookie,
  sessionHealth,
  sessionSetCookies,
};
