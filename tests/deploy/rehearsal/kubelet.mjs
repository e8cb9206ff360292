// A small stand-in for the kubelet and kube-proxy, enough to rehearse what
// Kubernetes does to the rendered pods, with real processes on loopback:
// each pod gets its own 127.x address; its container's command, args and
// env run as a process (the kubelet's $(VAR) expansion, fieldRef env);
// startup/readiness/liveness probes run as the kubelet runs them (native
// gRPC health over HTTP/2, HTTP GET) with their periods and thresholds; a
// termination is endpoint removal + preStop + SIGTERM + grace + SIGKILL.
import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { dirname, join } from "node:path";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const now = () => Date.now();

// The kubelet's native gRPC probe: grpc.health.v1.Health/Check on a fresh
// HTTP/2 connection; success only for SERVING.
export function grpcHealth(addr, timeoutMs, service = "") {
  return new Promise((resolve) => {
    let done = false;
    let client;
    const finish = (ok, detail) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        client.destroy();
      } catch {}
      resolve({ ok, detail });
    };
    const timer = setTimeout(() => finish(false, "timeout"), timeoutMs);
    client = http2.connect(`http://${addr}`);
    client.on("error", (e) => finish(false, e.code || e.message));
    const svc = Buffer.from(service);
    const msg = svc.length ? Buffer.concat([Buffer.from([0x0a, svc.length]), svc]) : Buffer.alloc(0);
    const req = client.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks = [];
    let status = null;
    req.on("response", (h) => {
      if (h["grpc-status"] !== undefined) status = h["grpc-status"];
    });
    req.on("trailers", (h) => {
      status = h["grpc-status"];
    });
    req.on("data", (c) => chunks.push(c));
    req.on("error", (e) => finish(false, e.code || e.message));
    req.on("end", () => {
      const body = Buffer.concat(chunks).subarray(5);
      if (status !== "0") return finish(false, `grpc-status ${status}`);
      const serving = body.length >= 2 && body[0] === 0x08 ? body[1] : 0;
      finish(serving === 1, ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"][serving] ?? String(serving));
    });
    req.end(Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]));
  });
}

// The kubelet's HTTP probe: GET, success for 200-399.
export function httpProbe(host, port, path, timeoutMs) {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on("end", () => resolve({ ok: res.statusCode >= 200 && res.statusCode < 400, detail: String(res.statusCode) }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => resolve({ ok: false, detail: e.code || e.message }));
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "0.0.0.0", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const expandVars = (s, env) => s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v) => (v in env ? env[v] : m));

export class Pod {
  // spec: the rendered pod template spec; container: the one to run;
  // translate(args, pod) maps cluster names and paths to loopback ones.
  constructor({ name, ip, namespace, podSpec, labels, binaries, translate, workDir, events }) {
    Object.assign(this, { name, ip, namespace, podSpec, labels, binaries, translate, workDir, events });
    this.container = podSpec.containers[0];
    this.ready = false;
    this.started = false;
    this.terminating = false;
    this.inEndpoints = false;
    this.exit = null;
    this.killed = false;
    this.livenessFailures = 0;
    this.timers = [];
    this.probeLog = [];
  }

  log(msg) {
    this.events.push(`${new Date().toISOString()} ${this.name}: ${msg}`);
  }

  env() {
    const env = { PATH: process.env.PATH };
    for (const e of this.container.env ?? []) {
      if (e.value !== undefined) env[e.name] = expandVars(String(e.value), env);
      const fp = e.valueFrom?.fieldRef?.fieldPath;
      if (fp === "metadata.name") env[e.name] = this.name;
      else if (fp === "metadata.namespace") env[e.name] = this.namespace;
      else if (fp === "status.podIP") env[e.name] = this.ip;
    }
    return env;
  }

  argv() {
    const env = this.env();
    const command = this.container.command.map((c) => expandVars(c, env));
    const args = (this.container.args ?? []).map((a) => expandVars(a, env));
    const bin = this.binaries[command[0]];
    if (!bin) throw new Error(`${this.name}: no local binary for ${command[0]}`);
    return { bin, args: this.translate(args, this), env };
  }

  start() {
    const { bin, args, env } = this.argv();
    mkdirSync(this.workDir, { recursive: true });
    const logPath = join(this.workDir, `${this.name}.log`);
    const out = createWriteStream(logPath, { flags: "a" });
    this.args = args;
    this.log(`start ${bin} ${args.join(" ")}`);
    this.startedAt = now();
    this.proc = spawn(bin, args, { env, cwd: this.workDir, stdio: ["ignore", "pipe", "pipe"] });
    this.proc.stdout.pipe(out);
    this.proc.stderr.pipe(out);
    this.exited = new Promise((resolve) => {
      this.proc.on("error", (e) => {
        this.log(`cannot start: ${e.message}`);
        this.exit = { code: null, signal: null, error: e.message, at: now() };
        resolve(this.exit);
      });
      this.proc.on("exit", (code, signal) => {
        this.exit = { code, signal, at: now() };
        this.ready = false;
        this.log(`exited code=${code} signal=${signal}`);
        resolve(this.exit);
      });
    });
    this.runProbes();
    return this;
  }

  probe(p) {
    const timeout = (p.timeoutSeconds ?? 1) * 1000;
    if (p.grpc) return grpcHealth(`${this.ip}:${p.grpc.port}`, timeout, p.grpc.service ?? "");
    if (p.httpGet) {
      const port = typeof p.httpGet.port === "number"
        ? p.httpGet.port
        : this.container.ports.find((x) => x.name === p.httpGet.port).containerPort;
      return httpProbe(this.ip, port, p.httpGet.path, timeout);
    }
    return Promise.resolve({ ok: false, detail: "unsupported probe" });
  }

  // One probe loop: calls onResult(ok) each period; stops when stop() is true.
  loop(p, name, onResult, stop) {
    const period = (p.periodSeconds ?? 10) * 1000;
    const tick = async () => {
      if (stop() || this.exit) return;
      const r = await this.probe(p);
      if (stop() || this.exit) return;
      this.probeLog.push([now(), name, r.ok, r.detail]);
      onResult(r.ok, r.detail);
      const t = setTimeout(tick, period);
      this.timers.push(t);
    };
    const t = setTimeout(tick, (p.initialDelaySeconds ?? 0) * 1000);
    this.timers.push(t);
  }

  runProbes() {
    const c = this.container;
    const startReadinessAndLiveness = () => {
      let fails = 0;
      let oks = 0;
      this.loop(c.readinessProbe, "readiness", (ok, detail) => {
        if (ok) {
          fails = 0;
          oks++;
          if (!this.ready && oks >= (c.readinessProbe.successThreshold ?? 1)) {
            this.ready = true;
            this.log("ready");
            if (!this.terminating) this.inEndpoints = true;
          }
        } else {
          oks = 0;
          fails++;
          if (this.ready && fails >= (c.readinessProbe.failureThreshold ?? 3)) {
            this.ready = false;
            this.inEndpoints = false;
            this.log(`not ready (${detail})`);
          }
        }
      }, () => false);
      let lfails = 0;
      // The kubelet stops liveness probes once a pod is terminating.
      this.loop(c.livenessProbe, "liveness", (ok, detail) => {
        lfails = ok ? 0 : lfails + 1;
        if (lfails >= (c.livenessProbe.failureThreshold ?? 3)) {
          this.livenessFailures++;
          this.log(`LIVENESS FAILED (${detail}): the kubelet would restart this container`);
          lfails = 0;
        }
      }, () => this.terminating);
    };
    if (c.startupProbe) {
      let fails = 0;
      this.loop(c.startupProbe, "startup", (ok, detail) => {
        if (ok) {
          this.started = true;
          this.log(`started after ${now() - this.startedAt} ms`);
          startReadinessAndLiveness();
        } else if (++fails >= (c.startupProbe.failureThreshold ?? 3)) {
          this.livenessFailures++;
          this.log(`STARTUP PROBE FAILED ${fails} times (${detail})`);
          fails = 0;
        }
      }, () => this.started || this.terminating);
    } else {
      this.started = true;
      startReadinessAndLiveness();
    }
  }

  async waitReady(timeoutMs) {
    const deadline = now() + timeoutMs;
    while (now() < deadline) {
      if (this.ready) return true;
      if (this.exit) return false;
      await sleep(50);
    }
    return false;
  }

  // What the kubelet and the endpoints controller do on a pod deletion
  // (a rolling update, an eviction, a scale-down).
  async terminate({ endpointDelayMs }) {
    this.terminating = true;
    const t0 = now();
    const grace = (this.podSpec.terminationGracePeriodSeconds ?? 30) * 1000;
    this.log(`terminating (grace ${grace / 1000}s)`);
    // Endpoint removal reaches kube-proxy and DNS a little later.
    setTimeout(() => {
      this.inEndpoints = false;
      this.log("removed from endpoints");
    }, endpointDelayMs);
    const pre = this.container.lifecycle?.preStop;
    if (pre?.exec) {
      const [cmd, ...args] = pre.exec.command;
      this.log(`preStop ${pre.exec.command.join(" ")}`);
      const hook = spawn(cmd, args, { stdio: "ignore" });
      await Promise.race([new Promise((r) => hook.on("exit", r)), sleep(grace)]);
      hook.kill("SIGKILL");
    } else if (pre?.sleep) {
      await sleep(pre.sleep.seconds * 1000);
    }
    if (!this.exit) {
      this.log("SIGTERM");
      this.sigtermAt = now();
      this.proc.kill("SIGTERM");
    }
    const left = Math.max(0, grace - (now() - t0));
    const exited = await Promise.race([this.exited, sleep(left).then(() => null)]);
    if (!exited) {
      this.killed = true;
      this.log("grace period over: SIGKILL");
      this.proc.kill("SIGKILL");
      await this.exited;
    }
    for (const t of this.timers) clearTimeout(t);
    this.terminationMs = now() - t0;
    return this.exit;
  }

  hardStop() {
    for (const t of this.timers) clearTimeout(t);
    if (this.proc && !this.exit) this.proc.kill("SIGKILL");
  }
}

// kube-proxy for one Service: new TCP connections go round-robin to the pods
// currently in the endpoints; connections already open stay where they are.
export class ServiceProxy {
  constructor(name, podsFn, targetPort) {
    this.name = name;
    this.podsFn = podsFn;
    this.targetPort = targetPort;
    this.next = 0;
    this.refused = 0;
  }

  listen() {
    this.server = net.createServer((client) => {
      const eps = this.podsFn().filter((p) => p.inEndpoints);
      if (!eps.length) {
        this.refused++;
        client.destroy();
        return;
      }
      const pod = eps[this.next++ % eps.length];
      const up = net.connect({ host: pod.ip, port: this.targetPort });
      client.pipe(up);
      up.pipe(client);
      const close = () => {
        client.destroy();
        up.destroy();
      };
      client.on("error", close);
      up.on("error", close);
      client.on("close", close);
      up.on("close", close);
    });
    return new Promise((resolve) => this.server.listen(0, "127.0.0.1", () => resolve(this.server.address().port)));
  }

  close() {
    this.server?.close();
  }
}

export function writeFile(path, content, mode) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content, { mode });
}
