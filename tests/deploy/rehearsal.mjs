// Rehearsal: the chart's rendered StatefulSet and Deployment run as real
// processes on loopback, probed and terminated as Kubernetes would
// (rehearsal/kubelet.mjs), under steady HTTP load through the edges with
// logged-in sessions (each user also logs in again now and then, and logs
// out and in):
//
//   1. servers (Parallel) and edges start; the load begins;
//   2. rolling restart of the servers, highest ordinal first, each waiting
//      for the new pod to be ready, never below the PDB;
//   3. rolling restart of the edges (maxSurge 1, maxUnavailable 0);
//   4. a node drain: one server and one edge evicted at once (each PDB
//      allows one), replaced by their controllers;
//   5. scale-down of the StatefulSet by one;
//   6. every session is still there.
//
// Pass: 0 failed requests (of any kind, printed and counted by status),
// 0 lost sessions, every counter answer above the user's previous one (with
// the chart's R + W > N), 0 session writes the edges could not make (their
// /metrics), every pod exited 0 within its grace period (no SIGKILL), no
// probe failure. The load has no randomness (USERS users, fixed order);
// ports and the work dir are chosen at run time and printed.
//
// Translation to loopback (printed at start): each pod has its own 127.x
// address and the rendered ports (chosen free by --set); $(VAR) expanded
// from env as the kubelet does; volume mounts become directories (ConfigMap
// and Secret items written as files, one directory per PVC, kept across a
// pod's restarts); `--peer-dns=<headless service>:PORT` becomes
// `--peers=<every server pod>:PORT` (what that DNS name answers);
// `--advertise-address=<pod DNS name>:PORT` the pod's address;
// `--session-service=dns:///<client service>:PORT` the list of server pod
// addresses (what a dns:/// client resolved); `--memory-limit=auto` the
// container's memory limit (what auto reads from the pod's cgroup).
//
// While the server lacks the replication flags (issue 7), only server pod 0
// runs (the flags it does not know are dropped and listed), phases 2 and 5
// are reported as skipped and phase 4 drains the edge alone: one node
// restarting is an outage by design.
//
//   SG_SERVER_BIN=... SG_EDGE_BIN=... SG_DEMO_BIN=... node tests/deploy/rehearsal.mjs
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Pod, ServiceProxy, freePort, httpProbe, now, sleep, writeFile } from "./rehearsal/kubelet.mjs";
import { find, render, releaseNamespace, tally } from "./lib.mjs";

const t = tally("deploy.rehearsal");
const abs = (p) => (p ? resolve(p) : p);
const bins = {
  server: abs(process.env.SG_SERVER_BIN),
  edge: abs(process.env.SG_EDGE_BIN),
  demo: abs(process.env.SG_DEMO_BIN),
};
for (const [k, v] of Object.entries(bins)) {
  if (!v) {
    console.error(`SG_${k.toUpperCase()}_BIN is not set`);
    process.exit(1);
  }
}
const USERS = Number(process.env.SG_REHEARSAL_USERS ?? 8);
// SG_REHEARSAL_SERVER_ROUNDS=N repeats the servers' rolling restart N times
// (to hunt a rare failure; the run's own deadline grows with it).
const serverRounds = Math.max(1, Number(process.env.SG_REHEARSAL_SERVER_ROUNDS ?? 1));
const ENDPOINT_DELAY_MS = 1000; // endpoint removal reaching kube-proxy/DNS
const work = mkdtempSync(join(tmpdir(), "sg-rehearsal-"));
const events = [];
const pods = [];
let demo = null;
const cleanup = () => {
  for (const p of pods) p.hardStop();
  demo?.kill("SIGKILL");
};
process.on("exit", cleanup);
// Our own deadline, below ctest's TIMEOUT (480 s), so that we, not a kill
// from outside, stop the processes we started.
setTimeout(() => {
  console.log(`FAIL deploy.rehearsal: did not finish within ${420 + 120 * (serverRounds - 1)} s`);
  for (const e of events.slice(-40)) console.log(e);
  process.exit(1);
}, (420 + 120 * (serverRounds - 1)) * 1000).unref();
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

// --- what the server binary knows ----------------------------------------------
const serverHelp = spawnSync(bins.server, ["--help"], { encoding: "utf8" }).stdout ?? "";
const serverKnows = (flag) => serverHelp.includes(`--${flag} `) || serverHelp.includes(`--${flag}\n`);
// SG_REHEARSAL_SINGLE_NODE=1 runs one node as if the flags were missing
// (to rehearse the edges alone).
const replication = !process.env.SG_REHEARSAL_SINGLE_NODE &&
  ["peer-listen", "peers", "advertise-address"].every(serverKnows);

// --- render ------------------------------------------------------------------------------
const ports = { server: await freePort(), peer: await freePort(), metrics: await freePort(), edge: await freePort(), admin: await freePort(), demo: await freePort() };
const objects = render([
  "--set", `server.port=${ports.server}`,
  "--set", `server.peerPort=${ports.peer}`,
  "--set", `server.metrics.port=${ports.metrics}`,
  "--set", `edge.port=${ports.edge}`,
  "--set", `edge.adminPort=${ports.admin}`,
  "--set", `edge.upstream=http://127.0.0.1:${ports.demo}`,
  "--set", "edge.cookie.secrets[0]=rehearsal-key-0123456789abcdef",
  // Extra values, e.g. SG_REHEARSAL_SET=edge.preStopSleepSeconds=0,edge.drainDelaySeconds=0
  // shows what the pause and the drain delay are for (requests fail).
  ...(process.env.SG_REHEARSAL_SET ? ["--set", process.env.SG_REHEARSAL_SET] : []),
  // One node: a cluster of one (N = W = R = 1).
  ...(replication ? [] : ["--set", "server.replicas=1,server.replication.factor=1,server.replication.writeQuorum=1,server.replication.readQuorum=1"]),
]);
const sts = objects.find((o) => o.kind === "StatefulSet");
const dep = objects.find((o) => o.kind === "Deployment");
const peersSvc = find(objects, "Service", sts.spec.serviceName);
const pdbServer = objects.find((o) => o.kind === "PodDisruptionBudget" && o.metadata.name === sts.metadata.name);
const pdbEdge = objects.find((o) => o.kind === "PodDisruptionBudget" && o.metadata.name === dep.metadata.name);
const ns = releaseNamespace;
const domain = /svc\.([a-z0-9.-]+):\d+$/.exec(sts.spec.template.spec.containers[0].args.find((a) => a.startsWith("--peer-dns=")))[1];
const serverReplicas = replication ? sts.spec.replicas : 1;
const serverIp = (i) => `127.0.10.${i + 1}`;
let edgeSerial = 0;

const dropped = new Set();
function mountMap(pod) {
  // mountPath -> local directory, with ConfigMap/Secret items written.
  const m = [];
  const vols = new Map((pod.podSpec.volumes ?? []).map((v) => [v.name, v]));
  const claims = new Set((sts.spec.volumeClaimTemplates ?? []).map((c) => c.metadata.name));
  for (const vm of pod.container.volumeMounts ?? []) {
    const v = vols.get(vm.name);
    let dir;
    if (!v && claims.has(vm.name) && pod.kind === "server") {
      dir = join(work, "pvc", `${vm.name}-${pod.name}`); // kept across restarts
    } else {
      dir = join(work, "pods", pod.name, vm.mountPath);
    }
    if (v?.configMap) {
      const cm = find(objects, "ConfigMap", v.configMap.name);
      for (const it of v.configMap.items) writeFile(join(dir, it.path), cm.data[it.key]);
    } else if (v?.secret) {
      const s = find(objects, "Secret", v.secret.secretName);
      for (const it of v.secret.items) writeFile(join(dir, it.path), Buffer.from(s.data[it.key], "base64"), v.secret.defaultMode ?? 0o644);
    } else {
      writeFile(join(dir, ".keep"), "");
    }
    m.push([vm.mountPath, dir]);
  }
  return m.sort((a, b) => b[0].length - a[0].length);
}

function translate(args, pod) {
  const mounts = mountMap(pod);
  const serverAddrs = (port) => Array.from({ length: serverReplicas }, (_, i) => `${serverIp(i)}:${port}`).join(",");
  const out = [];
  for (const a of args) {
    const m = /^--([a-z0-9-]+)=(.*)$/s.exec(a);
    if (!m) {
      out.push(a);
      continue;
    }
    let [, flag, v] = m;
    const rendered = flag;
    if (["listen", "peer-listen", "admin-listen", "metrics-listen"].includes(flag)) {
      v = v.replace(/^0\.0\.0\.0:/, `${pod.ip}:`);
    } else if (flag === "peer-dns") {
      const [name, port] = v.split(":");
      t.equal(name, `${peersSvc.metadata.name}.${ns}.svc.${domain}`, `${pod.name}: --peer-dns names the headless Service`);
      flag = "peers";
      v = serverAddrs(port);
      if (!replication) {
        // One node without replication: the local store alone.
        dropped.add(rendered);
        continue;
      }
    } else if (flag === "memory-limit" && v === "auto") {
      // auto reads the container's cgroup memory.max, which the kubelet sets
      // to resources.limits.memory; on loopback there is no such cgroup.
      const lim = /^(\d+)(Ki|Mi|Gi)$/.exec(pod.container.resources?.limits?.memory ?? "");
      t.check(lim, `${pod.name}: --memory-limit=auto with a memory limit (${pod.container.resources?.limits?.memory})`);
      if (lim) v = `${lim[1]}${lim[2]}B`;
    } else if (flag === "advertise-address") {
      const port = v.split(":").pop();
      t.equal(v, `${pod.name}.${peersSvc.metadata.name}.${ns}.svc.${domain}:${port}`, `${pod.name}: --advertise-address is the pod's DNS name`);
      v = `${pod.ip}:${port}`;
    } else if (flag === "session-service") {
      const mm = /^dns:\/\/\/([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.[a-z0-9.-]+:(\d+)$/.exec(v);
      t.check(mm && mm[2] === ns, `${pod.name}: --session-service=${v} is a dns:/// Service name`);
      v = serverAddrs(mm[3]);
    } else {
      for (const [mp, dir] of mounts) {
        if (v === mp || v.startsWith(mp + "/")) {
          v = dir + v.slice(mp.length);
          break;
        }
      }
    }
    if (pod.kind === "server" && !serverKnows(flag)) {
      dropped.add(rendered);
      continue;
    }
    out.push(`--${flag}=${v}`);
  }
  return out;
}

const binaries = {
  [sts.spec.template.spec.containers[0].command[0]]: bins.server,
  [dep.spec.template.spec.containers[0].command[0]]: bins.edge,
};
function newServerPod(i) {
  const pod = new Pod({
    name: `${sts.metadata.name}-${i}`, ip: serverIp(i), namespace: ns,
    podSpec: sts.spec.template.spec, labels: sts.spec.template.metadata.labels,
    binaries, translate, workDir: join(work, "logs"), events,
  });
  pod.kind = "server";
  pod.ordinal = i;
  return pod;
}
function newEdgePod() {
  const n = ++edgeSerial;
  const pod = new Pod({
    name: `${dep.metadata.name}-${n}`, ip: `127.0.20.${n}`, namespace: ns,
    podSpec: dep.spec.template.spec, labels: dep.spec.template.metadata.labels,
    binaries, translate, workDir: join(work, "logs"), events,
  });
  pod.kind = "edge";
  return pod;
}
const live = (kind) => pods.filter((p) => p.kind === kind && !p.terminating && !p.exit);
const ready = (kind) => live(kind).filter((p) => p.ready);

// --- the upstream app ------------------------------------------------------------------
demo = spawn(bins.demo, ["--listen", `127.0.0.1:${ports.demo}`], { stdio: "ignore" });
for (let i = 0; i < 100 && !(await httpProbe("127.0.0.1", ports.demo, "/api/health", 500)).ok; i++) await sleep(100);

console.log(`work dir ${work}`);
const noReplication = process.env.SG_REHEARSAL_SINGLE_NODE ? "SG_REHEARSAL_SINGLE_NODE is set" : "sessiongrid-server lacks the replication flags (issue 7 pending)";
console.log(`replication: ${replication ? "yes" : `no: ${noReplication}`}`);

// --- 1. start ---------------------------------------------------------------------------
// A rollout goes on once the new pod is available: ready for the
// workload's minReadySeconds.
async function startAndWait(pod, what, minReadySeconds = 0) {
  pods.push(pod);
  pod.start();
  let ok = await pod.waitReady(60_000);
  if (ok && minReadySeconds) {
    await sleep(minReadySeconds * 1000);
    ok = pod.ready;
  }
  t.check(ok, `${what}: ${pod.name} became ready (exit ${JSON.stringify(pod.exit)}; log ${pod.workDir}/${pod.name}.log)`);
  return ok;
}
const serverPods = Array.from({ length: serverReplicas }, (_, i) => newServerPod(i));
// podManagementPolicy: Parallel: all at once.
const started = await Promise.all(serverPods.map((p) => startAndWait(p, "start")));
if (dropped.size) console.log(`dropped server flags (unknown to the binary, or single node): ${[...dropped].map((f) => "--" + f).join(" ")}`);
if (!started.every(Boolean)) finish();
console.log(`servers ready: ${serverPods.map((p) => `${p.name}@${p.ip}`).join(", ")}`);
// What the ServiceMonitor scrapes: the metrics container port answers /metrics.
const metricsPort = sts.spec.template.spec.containers[0].ports.find((p) => p.name === "metrics")?.containerPort;
if (metricsPort) {
  for (const p of serverPods) {
    const r = await httpProbe(p.ip, metricsPort, "/metrics", 2000);
    t.check(r.ok, `${p.name}: GET /metrics on the metrics port (${r.detail})`);
  }
}
console.log(`server args: ${serverPods[0].args.join(" ")}`);
const edges0 = Array.from({ length: dep.spec.replicas }, () => newEdgePod());
if (!(await Promise.all(edges0.map((p) => startAndWait(p, "start")))).every(Boolean)) finish();
console.log(`edge args: ${edges0[0].args.join(" ")}`);

// `helm test`: the rendered test Pod's script, its dns:/// target being the
// server pods' addresses, must succeed (with replication, once the members
// have found each other: HEALTHY needs every owner alive).
const testPod = objects.find((o) => o.kind === "Pod" && o.metadata.annotations?.["helm.sh/hook"] === "test");
if (testPod && process.env.SG_CTL_BIN) {
  const script = testPod.spec.containers[0].command.slice(2).join(" ")
    .replace(/\/usr\/local\/bin\/sessiongridctl/g, resolve(process.env.SG_CTL_BIN))
    .replace(/dns:\/\/\/[^ "]+/g, serverPods.map((p) => `${p.ip}:${ports.server}`).join(","));
  let r = null;
  for (let i = 0; i < 20; i++) {
    r = spawnSync("/bin/sh", ["-ec", script], { encoding: "utf8" });
    if (r.status === 0) break;
    await sleep(500);
  }
  t.equal(r.status, 0, `helm test script succeeds (${(r.stdout + r.stderr).trim().split("\n").slice(-3).join(" | ")})`);
}

const edgeSvcPort = find(objects, "Service", dep.metadata.name).spec.ports[0];
const targetPort = dep.spec.template.spec.containers[0].ports.find((p) => p.name === edgeSvcPort.targetPort).containerPort;
const proxy = new ServiceProxy(dep.metadata.name, () => pods.filter((p) => p.kind === "edge"), targetPort);
const lbPort = await proxy.listen();

// --- the edges' own account of their session writes ------------------------------
// In fail-open mode a session write that failed still answers the app's
// 200, so the requests alone cannot see it: every edge's /metrics is read
// every 500 ms (the last reading of each pod stands) and the sums must be 0.
const adminPort = dep.spec.template.spec.containers[0].ports.find((p) => p.name === "admin").containerPort;
const edgeWrites = new Map(); // pod name -> { failures, overwritten, dropped, errors }
function getText(host, port, path, timeoutMs) {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve(res.statusCode === 200 ? Buffer.concat(chunks).toString() : null));
      res.on("error", () => resolve(null));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(null));
  });
}
const sample = (text, name, labels = "") => {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== " " && line[name.length] !== "{")) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
  }
  return sum;
};
async function scrapeEdges() {
  await Promise.all(pods.filter((p) => p.kind === "edge" && p.started && !p.exit).map(async (p) => {
    const text = await getText(p.ip, adminPort, "/metrics", 1000);
    if (!text) return;
    edgeWrites.set(p.name, {
      failures: sample(text, "sg_edge_session_write_failures_total"),
      overwritten: sample(text, "sg_edge_session_write_conflicts_total", 'resolution="overwritten"'),
      dropped: sample(text, "sg_edge_session_write_conflicts_total", 'resolution="dropped"'),
      errors: sample(text, "sg_edge_session_calls_total", 'result="error"'),
      slow: sample(text, "sg_edge_session_call_duration_seconds_count") - sample(text, "sg_edge_session_call_duration_seconds_bucket", 'le="0.1"'),
      errorsBy: Object.fromEntries([...text.matchAll(/^sg_edge_session_calls_total\{method="([a-z_]+)",result="error"\} (\d+)/gm)].filter((m) => m[2] !== "0").map((m) => [m[1], Number(m[2])])),
    });
  }));
}
let scraping = true;
const scraper = (async () => {
  while (scraping) {
    await scrapeEdges();
    await sleep(500);
  }
})();
const edgeTotals = () => {
  const t = { failures: 0, overwritten: 0, dropped: 0, errors: 0, slow: 0 };
  for (const v of edgeWrites.values()) for (const k of Object.keys(t)) t[k] += v[k];
  return t;
};

// --- load ---------------------------------------------------------------------------------
const BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const stats = { requests: 0, failed: 0, lost: 0, regressions: 0, bypassed: 0, retried: 0, relogins: 0, logouts: 0, failures: [], regressionLog: [] };
// How late this script's own timers fire: a stall here is the machine (two
// cores, other work), and explains a session call missing its deadline.
const loopLag = { max: 0, episodes: [] };
{
  let last = now();
  setInterval(() => {
    const lag = now() - last - 50;
    last = now();
    if (lag > loopLag.max) loopLag.max = lag;
    if (lag > 200) loopLag.episodes.push(`${new Date().toISOString()} ${lag} ms`);
  }, 50).unref();
}
// Half the users keep their connections alive, as browsers do; like a
// browser, such a user retries a GET once when a reused connection turns out
// to have been closed by the server (RFC 9112 9.3.1); nothing else is retried.
function request(method, path, { cookie, body, ua = BROWSER, agent = false } = {}) {
  const once = () => new Promise((resolve) => {
    const headers = { "User-Agent": ua, Accept: "application/json" };
    if (cookie) headers.Cookie = cookie;
    if (body) {
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = Buffer.byteLength(body);
    }
    const req = http.request({ host: "127.0.0.1", port: lbPort, method, path, headers, agent, timeout: 5000 }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on("error", (e) => resolve({ status: 0, error: e.code || e.message }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => resolve({ status: 0, error: e.code || e.message, reused: req.reusedSocket }));
    req.end(body);
  });
  return once().then((r) => {
    if (r.status === 0 && r.reused && method === "GET" && ["ECONNRESET", "EPIPE"].includes(r.error)) {
      stats.retried++;
      return once();
    }
    return r;
  });
}
// `unavailable`: the edge could not reach the session service for this
// request (X-Session-Status: unavailable), as opposed to a session that is
// gone or an HTTP failure.
function fail(what, r, { unavailable = false, kind = null } = {}) {
  stats.failed++;
  kind ??= `${r.status}${r.error ? ` ${r.error}` : ""}${unavailable ? " session service unavailable" : ""}`;
  stats.failures.push({ at: now(), kind, read: what.startsWith("whoami") && unavailable, text: `${new Date().toISOString()} ${what}: status ${r.status} ${r.error ?? ""} ${(r.body ?? "").slice(0, 120)}${unavailable ? " [session service unavailable]" : ""}` });
}
const sidOf = (r) => (r.headers?.["set-cookie"] ?? []).map((c) => c.split(";")[0]).find((c) => c.startsWith("connect.sid="));

const users = [];
async function login(name) {
  const r = await request("POST", "/api/auth/login", { body: JSON.stringify({ username: name, password: "pw" }) });
  stats.requests++;
  const sid = sidOf(r);
  if (r.status !== 200 || !sid) {
    fail(`login ${name}`, r);
    return null;
  }
  return { name, cookie: sid, counter: 0, offset: 0 };
}
for (let i = 0; i < USERS; i++) {
  const u = await login(`user${i}`);
  if (u && i % 2) u.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  if (u) u.offset = i * 7;
  t.check(u, `login user${i}`);
  if (u) users.push(u);
}

let loadOn = true;
async function userLoop(u) {
  let i = 0;
  while (loadOn) {
    const who = await request("GET", "/api/user/whoami", { cookie: u.cookie, agent: u.agent });
    stats.requests++;
    let j = null;
    try {
      j = JSON.parse(who.body);
    } catch {}
    if (who.status !== 200) fail(`whoami ${u.name}`, who);
    else if (j?.sessionStatus === "unavailable") {
      fail(`whoami ${u.name}: session service unavailable`, who, { unavailable: true });
    } else if (!j?.loggedIn || j.user !== u.name) {
      stats.lost++;
      fail(`whoami ${u.name}: not logged in (sessionStatus ${j?.sessionStatus})`, who, { kind: "200 session lost" });
    }
    const c = await request("POST", "/api/user/counter", { cookie: u.cookie, agent: u.agent });
    stats.requests++;
    if (c.status !== 200) fail(`counter ${u.name}`, c, { unavailable: c.status === 503 && /sessions are unavailable/.test(c.body ?? "") });
    else {
      const v = JSON.parse(c.body).counter;
      if (v <= u.counter) {
        stats.regressions++;
        stats.regressionLog.push(`${new Date().toISOString()} ${u.name}: counter ${v} after ${u.counter}`);
      }
      u.counter = v;
    }
    const rotated = sidOf(c) ?? sidOf(who);
    if (rotated) u.cookie = rotated;
    // Now and then a user logs in again (the edge rotates the session id:
    // Regenerate, then the data on the new id; the counter goes on), or
    // logs out and in (Delete, then Create: the counter starts over).
    // Staggered per user, so some happen during every phase.
    const step = i + u.offset;
    if (step % 25 === 24) {
      const r = await request("POST", "/api/auth/login", { cookie: u.cookie, agent: u.agent, body: JSON.stringify({ username: u.name, password: "pw" }) });
      stats.requests++;
      stats.relogins++;
      const sid = sidOf(r);
      if (r.status !== 200) fail(`login again ${u.name}`, r);
      else if (!sid || sid === u.cookie) fail(`login again ${u.name}: no new session id`, r, { kind: "200 login without a new session id" });
      else u.cookie = sid;
    } else if (step % 60 === 59) {
      const out = await request("POST", "/api/auth/logout", { cookie: u.cookie, agent: u.agent, body: "{}" });
      stats.requests++;
      const cleared = (out.headers?.["set-cookie"] ?? []).some((c) => c.startsWith("connect.sid=;") || /connect\.sid=[^;]*;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/i.test(c));
      if (out.status !== 200) fail(`logout ${u.name}`, out);
      else if (!cleared) fail(`logout ${u.name}: cookie not cleared`, out, { kind: "200 logout without clearing the cookie" });
      const again = await login(u.name);
      if (again) {
        stats.logouts++;
        u.cookie = again.cookie;
        u.counter = 0;
      }
    }
    if (i++ % 4 === 0) {
      for (const [path, ua] of [["/assets/main.js", BROWSER], ["/", "Googlebot/2.1 (+http://www.google.com/bot.html)"]]) {
        const b = await request("GET", path, { ua, agent: u.agent });
        stats.requests++;
        stats.bypassed++;
        if (b.status !== 200) fail(`bypass ${path}`, b);
        else if (sidOf(b)) fail(`bypass ${path} got a session cookie`, b, { kind: "200 bypass with a cookie" });
      }
    }
    await sleep(100);
  }
}
const loops = users.map(userLoop);
await sleep(3000);
const mark = (phase) => {
  const e = edgeTotals();
  console.log(`[${phase}] requests ${stats.requests} (logins again ${stats.relogins}, logouts and logins ${stats.logouts}), failed ${stats.failed}, lost sessions ${stats.lost}, counter regressions ${stats.regressions}, GETs retried on a closed keep-alive connection ${stats.retried}; edges: session write failures ${e.failures}, conflicts overwritten ${e.overwritten} dropped ${e.dropped}, session call errors ${e.errors}, calls over 100 ms ${e.slow}`);
};
mark("steady");

// --- termination with the checks ---------------------------------------------------
const terminations = [];
async function terminate(pod, why) {
  const exit = await pod.terminate({ endpointDelayMs: ENDPOINT_DELAY_MS });
  terminations.push({ pod: pod.name, why, exit, killed: pod.killed, ms: pod.terminationMs });
  t.check(!pod.killed, `${why}: ${pod.name} exited within its grace period (${pod.terminationMs} ms, grace ${pod.podSpec.terminationGracePeriodSeconds}s)`);
  t.equal(exit.code, 0, `${why}: ${pod.name} exit code after SIGTERM`);
}
let skipped = 0;
// [start, end] of the phases in which servers are stopped or replaced.
const serverPhases = [];
const serverPhase = async (fn) => {
  const span = [now(), null];
  serverPhases.push(span);
  try {
    await fn();
  } finally {
    span[1] = now();
  }
};

// --- 2. servers: rolling restart -----------------------------------------------
if (replication) await serverPhase(async () => {
  for (let round = 0; round < serverRounds; round++)
  for (let i = serverReplicas - 1; i >= 0; i--) {
    const old = pods.find((p) => p.kind === "server" && p.ordinal === i && !p.exit && !p.terminating);
    t.check(ready("server").length - 1 >= pdbServer.spec.minAvailable,
      `server rolling restart: ${ready("server").length} ready, taking one keeps the PDB's minAvailable ${pdbServer.spec.minAvailable}`);
    await terminate(old, "server rolling restart");
    await startAndWait(newServerPod(i), "server rolling restart", sts.spec.minReadySeconds ?? 0);
    mark(`server ${i} replaced`);
  }
});
else {
  skipped++;
  console.log(`SKIP server rolling restart: one node without replication (${noReplication}); its restart is an outage by design`);
}

// --- 3. edges: rolling restart (maxSurge 1, maxUnavailable 0) ----------------------
for (const old of [...live("edge")]) {
  const surge = newEdgePod();
  await startAndWait(surge, "edge rolling restart", dep.spec.minReadySeconds ?? 0);
  t.check(ready("edge").length - 1 >= dep.spec.replicas - (pdbEdge?.spec.maxUnavailable ?? 0),
    `edge rolling restart: ${ready("edge").length} ready before one stops`);
  await terminate(old, "edge rolling restart");
  mark(`edge ${old.name} replaced by ${surge.name}`);
}

// --- 4. node drain: a server and an edge that share a node are evicted
// together (each PDB allows one), then their controllers replace them
// (without replication, the edge alone) ---------------------------------------
{
  const server = replication ? live("server").sort((a, b) => a.ordinal - b.ordinal)[0] : null;
  const edge = live("edge")[0];
  const drains = [];
  if (server) {
    t.check(ready("server").length - 1 >= pdbServer.spec.minAvailable, `node drain: the server PDB allows evicting ${server.name}`);
    drains.push(terminate(server, "node drain").then(() => startAndWait(newServerPod(server.ordinal), "node drain")));
  } else {
    console.log(`node drain: the edge only (${noReplication})`);
  }
  t.check(ready("edge").length - 1 >= dep.spec.replicas - (pdbEdge?.spec.maxUnavailable ?? 0), `node drain: the edge PDB allows evicting ${edge.name}`);
  drains.push(terminate(edge, "node drain").then(() => startAndWait(newEdgePod(), "node drain")));
  await (server ? serverPhase(() => Promise.all(drains)) : Promise.all(drains));
  mark("node drained");
}

// --- 5. servers: scale down by one ------------------------------------------------
if (replication && serverReplicas > 1) {
  const last = live("server").sort((a, b) => b.ordinal - a.ordinal)[0];
  await serverPhase(async () => {
    await terminate(last, "scale-down");
    await sleep(3000);
  });
  mark("scaled down");
} else {
  skipped++;
  console.log(`SKIP StatefulSet scale-down: needs replication (${noReplication})`);
}

// --- 6. stop the load; every session is still there ----------------------------
loadOn = false;
await Promise.all(loops);
scraping = false;
await scraper;
await scrapeEdges();
for (const u of users) u.agent?.destroy();
for (const u of users) {
  const r = await request("GET", "/api/user/whoami", { cookie: u.cookie });
  let j = null;
  try {
    j = JSON.parse(r.body);
  } catch {}
  t.check(r.status === 200 && j?.loggedIn && j.user === u.name, `after everything: ${u.name}'s session is there (${r.status} ${r.body?.slice(0, 100)})`);
}
mark("end");
finish();

function finish() {
  t.check(stats.requests > 0 || t.failures.length, "some load ran");
  // Strict: no failed request of any kind, in any phase. Each is printed,
  // and counted by what the client saw (HTTP status, connection error, or
  // a 200 that ran without its session because the edge could not reach
  // the session service).
  const byKind = {};
  for (const f of stats.failures) byKind[f.kind] = (byKind[f.kind] ?? 0) + 1;
  const inServerPhase = (f) => serverPhases.some(([a, b]) => f.at >= a && f.at <= (b ?? Infinity));
  // Strict by default. What was the known gap (issue 8: now and then one
  // read without its session while a server was replaced) was gRPC
  // answering CANCELLED to calls that reached a server as its shutdown
  // began (grpc/grpc#41785), which the client did not retry; the edge now
  // sends them again (edge/grpc_backend.cc), and the same drop had also
  // lost writes. SG_REHEARSAL_STRICT=0 still tolerates up to
  // KNOWN_GAP_READS such reads during server replacement (e.g. on a
  // machine that stalls past the edge's session deadline).
  const KNOWN_GAP_READS = 2;
  const knownGap = stats.failures.filter((f) => f.read && inServerPhase(f)).length;
  const tolerated = process.env.SG_REHEARSAL_STRICT === "0" ? Math.min(knownGap, KNOWN_GAP_READS) : 0;
  if (tolerated) {
    console.log(`TOLERATED: ${tolerated} read(s) ran without the session service while a server was replaced (SG_REHEARSAL_STRICT=0 tolerates up to ${KNOWN_GAP_READS})`);
  }
  t.equal(stats.failed - tolerated, 0, `failed requests (by kind ${JSON.stringify(byKind)}; ${stats.failures.filter(inServerPhase).length} while a server was stopped or replaced; ${tolerated} tolerated by SG_REHEARSAL_STRICT=0)`);
  t.equal(stats.lost, 0, "lost sessions");
  // One user's requests are sequential, and with the chart's quorums
  // (R + W > N) each reads what the last one stored: the counter the app
  // answers must go up by one each time. A repeat is a lost write (in
  // fail-open mode a failed session write still answers 200) or a stale
  // read the edge's compare-and-set retry stored over the newer value.
  const rf = Number(sts.spec.template.spec.containers[0].args.find((a) => a.startsWith("--replication-factor="))?.split("=")[1] ?? 1);
  const rq = Number(sts.spec.template.spec.containers[0].args.find((a) => a.startsWith("--read-quorum="))?.split("=")[1] ?? 1);
  const wq = Number(sts.spec.template.spec.containers[0].args.find((a) => a.startsWith("--write-quorum="))?.split("=")[1] ?? 1);
  if (!replication || rq + wq > rf) {
    t.equal(stats.regressions, 0, `counter answers not above the user's previous one (R=${rq} W=${wq} N=${rf})`);
  } else if (stats.regressions) {
    console.log(`note: ${stats.regressions} counter answers were not above the previous one (R + W <= N: a read may miss the last write; not asserted)`);
  }
  const e = typeof edgeTotals === "function" ? edgeTotals() : { failures: 0 };
  t.equal(e.failures, 0, "session writes the edges could not make (sg_edge_session_write_failures_total)");
  for (const p of pods) t.equal(p.livenessFailures, 0, `${p.name}: liveness/startup probe failures`);
  t.equal(proxy?.refused ?? 0, 0, "connections with no ready edge");
  for (const f of stats.failures.slice(0, 30)) console.log(`  failure: ${f.text}`);
  for (const [pod, v] of edgeWrites) if (v.errors) console.log(`  ${pod}: session call errors by method ${JSON.stringify(v.errorsBy)}`);
  for (const r of stats.regressionLog.slice(0, 30)) console.log(`  regression: ${r}`);
  const sessionTimeout = dep.spec.template.spec.containers[0].args.find((a) => a.startsWith("--session-timeout="))?.split("=")[1];
  console.log(`event loop of this script: longest stall ${loopLag.max} ms, ${loopLag.episodes.length} over 200 ms${loopLag.episodes.length ? ` (${loopLag.episodes.slice(0, 10).join(", ")}): the machine was busy then; a session call in flight could miss the edge's ${sessionTimeout} deadline` : ""}`);
  for (const x of terminations) console.log(`terminated ${x.pod} (${x.why}): exit ${x.exit.code ?? x.exit.signal} in ${x.ms} ms${x.killed ? " SIGKILL" : ""}`);
  if (t.failures.length || process.env.SG_REHEARSAL_VERBOSE) {
    console.log("--- events ---");
    for (const e of events) console.log(e);
  }
  proxy?.close();
  cleanup();
  if (!t.failures.length && !process.env.SG_REHEARSAL_KEEP) rmSync(work, { recursive: true, force: true });
  if (skipped) console.log(`deploy.rehearsal: ${skipped} phases skipped`);
  t.done();
}
