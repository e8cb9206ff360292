'use strict';
// Debian's nginx (/usr/sbin/nginx, or SG_NGINX_BIN) as a foreground child
// (daemon off) with a config generated into a temp dir: prefix, pid, logs
// and temp paths all there, listening on free loopback ports. Each server
// block is the README's "Behind nginx" configuration: auth_request to the
// edge's --auth-request-path, the check's X-Session-* passed to the app.
const fs = require('fs');
const net = require('net');
const path = require('path');
const { spawn } = require('child_process');
const { freePort, tempDir, waitFor } = require('./harness');

const AUTH_PATH = '/_sessiongrid/auth';

function hostPort(url) {
  return new URL(url).host;
}

// One server block: nginx on `port` in front of `app`, asking `edge`.
function serverBlock(i, { port, edge, app }) {
  return `
  upstream sessiongrid_edge_${i} { server ${hostPort(edge)}; keepalive 16; }
  upstream app_${i} { server ${hostPort(app)}; keepalive 16; }
  server {
    listen 127.0.0.1:${port};

    # The check: an internal subrequest to the edge, with the original
    # request's headers and no body.
    location = ${AUTH_PATH} {
      internal;
      proxy_pass http://sessiongrid_edge_${i};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Real-IP $remote_addr;
      # The session travels in the answer's headers.
      proxy_buffer_size 64k;
      proxy_buffers 4 64k;
    }

    # --fail-mode=closed: the edge answers 503, which auth_request turns
    # into 500; give the browser the 503.
    location @sessiongrid_unavailable {
      default_type text/plain;
      return 503 "session service unavailable\\n";
    }

    location / {
      auth_request ${AUTH_PATH};
      error_page 500 = @sessiongrid_unavailable;
      auth_request_set $sg_status $upstream_http_x_session_status;
      auth_request_set $sg_id $upstream_http_x_session_id;
      auth_request_set $sg_data $upstream_http_x_session_data;
      auth_request_set $sg_principal $upstream_http_x_session_principal;
      auth_request_set $sg_version $upstream_http_x_session_version;
      auth_request_set $sg_set_cookie $upstream_http_x_session_set_cookie;
      auth_request_set $sg_bypass $upstream_http_x_session_bypass;
      # Always set (an empty value removes the field): a client cannot
      # send its own.
      proxy_set_header X-Session-Status $sg_status;
      proxy_set_header X-Session-Id $sg_id;
      proxy_set_header X-Session-Data $sg_data;
      proxy_set_header X-Session-Principal $sg_principal;
      proxy_set_header X-Session-Version $sg_version;
      proxy_set_header X-Session-Set-Cookie $sg_set_cookie;
      proxy_set_header X-Session-Bypass $sg_bypass;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app_${i};
    }
  }`;
}

function config(dir, servers) {
  // Workers run as root only when we are root (CI); otherwise as us.
  const user = typeof process.getuid === 'function' && process.getuid() === 0 ? 'user root root;' : '';
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp, { recursive: true });
  return `daemon off;
worker_processes 1;
${user}
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
events { worker_connections 1024; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
${servers.map((s, i) => serverBlock(i, s)).join('\n')}
}
`;
}

function connects(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

// Starts nginx with one server block per entry of `servers`
// ({ edge: edge URL, app: app URL }). Resolves to { urls, dir, stop }.
// A port taken between the probe and nginx's bind is retried (bounded).
async function startNginx(servers) {
  const bin = process.env.SG_NGINX_BIN || '/usr/sbin/nginx';
  if (!fs.existsSync(bin)) throw new Error(`nginx not found at ${bin} (scripts/setup installs Debian's nginx)`);
  let lastError;
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = tempDir('nginx');
    const withPorts = [];
    for (const s of servers) withPorts.push({ ...s, port: await freePort() });
    const conf = path.join(dir, 'nginx.conf');
    fs.writeFileSync(conf, config(dir, withPorts));
    const child = spawn(bin, ['-p', `${dir}/`, '-c', conf, '-e', path.join(dir, 'error.log')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    let exited = false;
    const exitedPromise = new Promise((resolve) => child.once('exit', () => {
      exited = true;
      resolve();
    }));
    const errorLog = () => {
      try {
        return fs.readFileSync(path.join(dir, 'error.log'), 'utf8');
      } catch (_) {
        return '';
      }
    };
    try {
      await waitFor(async () => {
        if (exited) throw new Error(`nginx exited: ${output}${errorLog()}`);
        for (const s of withPorts) if (!(await connects(s.port))) return false;
        return true;
      }, 'nginx to listen', { timeoutMs: 15000 });
    } catch (err) {
      if (!exited) child.kill('SIGKILL');
      await exitedPromise;
      lastError = new Error(`${err.message}\n${output}${errorLog()}`);
      if (/Address already in use/.test(lastError.message)) continue;
      throw lastError;
    }
    const stop = async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exitedPromise;
      clearTimeout(timer);
    };
    return { urls: withPorts.map((s) => `http://127.0.0.1:${s.port}`), dir, stop, errorLog };
  }
  throw lastError;
}

module.exports = { AUTH_PATH, startNginx };
