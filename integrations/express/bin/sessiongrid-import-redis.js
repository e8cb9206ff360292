#!/usr/bin/env node
'use strict';
// sessiongrid-import-redis: copies connect-redis sessions into SessionGrid
// under the same ids (see lib/import-redis.js). Progress on a terminal
// (stderr), a JSON summary on stdout. Exit 0 when every key was scanned,
// 1 on an error, 2 on a usage error, 3 when interrupted (the summary's
// cursor resumes).
const { importRedis } = require('../lib/import-redis');
const { requirePeer } = require('../lib/peer');

const USAGE = `usage: sessiongrid-import-redis --server HOST:PORT --redis HOST:PORT
         [--prefix sess:] [--dry-run] [--default-ttl SECONDS] [--batch N]
         [--cursor CURSOR] [--redis-url redis://...]

Copies every connect-redis session (<prefix><id>, its JSON and remaining
TTL) into sessiongrid-server (which must run with --allow-client-ids)
under the same id. Idempotent: ids already there are skipped ("exists").
--server defaults to $SESSIONGRID_SERVER.`;

function parseArgs(argv) {
  const o = { prefix: 'sess:', dryRun: false, server: process.env.SESSIONGRID_SERVER };
  const value = (i, name) => {
    if (i + 1 >= argv.length) throw new Error(`${name} needs a value`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let inline;
    if (arg.startsWith('--') && arg.includes('=')) {
      inline = arg.slice(arg.indexOf('=') + 1);
      arg = arg.slice(0, arg.indexOf('='));
    }
    const take = (name) => {
      if (inline !== undefined) return inline;
      const v = value(i, name);
      i++;
      return v;
    };
    switch (arg) {
      case '--server': o.server = take(arg); break;
      case '--redis': o.redis = take(arg); break;
      case '--redis-url': o.redisUrl = take(arg); break;
      case '--prefix': o.prefix = take(arg); break;
      case '--dry-run': o.dryRun = true; break;
      case '--default-ttl': o.defaultTtl = Number(take(arg)); break;
      case '--batch': o.batch = Number(take(arg)); break;
      case '--cursor': o.cursor = take(arg); break;
      case '--help': case '-h': o.help = true; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (o.help) return o;
  if (!o.server) throw new Error('--server (or $SESSIONGRID_SERVER) is required');
  if (!o.redis && !o.redisUrl) throw new Error('--redis HOST:PORT (or --redis-url) is required');
  if (o.defaultTtl !== undefined && !(o.defaultTtl > 0)) throw new Error('--default-ttl must be a positive number of seconds');
  if (o.batch !== undefined && !(Number.isInteger(o.batch) && o.batch > 0 && o.batch <= 1000)) {
    throw new Error('--batch must be 1..1000');
  }
  return o;
}

function fmtDuration(s) {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`error: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { createClient } = requirePeer('redis', 'sessiongrid-import-redis');
  const redis = createClient({ url: opts.redisUrl || `redis://${opts.redis}` });
  redis.on('error', () => {}); // reported by the failing command
  await redis.connect();
  // For the ETA: keys in the database (an upper bound of the sessions).
  const total = await redis.dbSize();
  const controller = new AbortController();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const tty = process.stderr.isTTY;
  let lastLine = 0;
  const progress = (s) => {
    const now = Date.now();
    if (now - lastLine < (tty ? 200 : 10000) && !s.done) return;
    lastLine = now;
    const rate = s.scanned / Math.max(0.001, s.elapsedMs / 1000);
    const eta = (Math.max(0, total - s.scanned)) / Math.max(rate, 1e-9);
    const skipped = Object.values(s.skipped).reduce((a, b) => a + b, 0);
    const line = `${opts.dryRun ? '[dry run] ' : ''}scanned ${s.scanned}/~${total}, imported ${s.imported}, ` +
      `skipped ${skipped}, ${rate.toFixed(0)} sessions/s, ETA ${s.done ? '0s' : fmtDuration(eta)}`;
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
  };
  try {
    const stats = await importRedis({
      redis,
      target: opts.server,
      prefix: opts.prefix,
      dryRun: opts.dryRun,
      defaultTtl: opts.defaultTtl,
      batch: opts.batch,
      cursor: opts.cursor,
      onProgress: progress,
      signal: controller.signal,
    });
    if (tty) process.stderr.write('\n');
    process.stdout.write(`${JSON.stringify({ ...stats, dryRun: opts.dryRun })}\n`);
    if (interrupted && !stats.done) {
      process.stderr.write(`interrupted: resume with --cursor ${stats.cursor}\n`);
      return 3;
    }
    return 0;
  } catch (err) {
    if (tty) process.stderr.write('\n');
    process.stderr.write(`error: ${err.message}\n`);
    return 1;
  } finally {
    await redis.quit().catch(() => {});
  }
}

main().then((code) => {
  process.exitCode = code;
}, (err) => {
  process.stderr.write(`error: ${err.message}\n`);
  process.exitCode = 1;
});
