// The checks a schema cannot make, run on any rendered set of objects (the
// chart at some values, or deploy/k8s): schema validation with
// kubernetes-models, then probes, drain sizing, security settings, selectors,
// ports, PDB arithmetic, checksums and NetworkPolicy rules.
import {
  find,
  flagMap,
  key,
  portOf,
  seconds,
  selects,
  sha256,
  workloads,
} from "./lib.mjs";

const modelCache = new Map();
async function modelFor(apiVersion, kind) {
  const id = `${apiVersion}/${kind}`;
  if (!modelCache.has(id)) {
    const pkg = apiVersion.startsWith("monitoring.coreos.com/")
      ? "@kubernetes-models/prometheus-operator"
      : "kubernetes-models";
    let cls = null;
    try {
      cls = (await import(`${pkg}/${apiVersion}/${kind}`))[kind] ?? null;
    } catch {
      cls = null;
    }
    modelCache.set(id, cls);
  }
  return modelCache.get(id);
}

// Every object must be a known kind and pass its OpenAPI schema.
export async function validateModels(objects, t, where) {
  for (const o of objects) {
    const cls = await modelFor(o.apiVersion, o.kind);
    if (!t.check(cls, `${where}: ${key(o)}: no kubernetes-models schema for ${o.apiVersion} ${o.kind}`)) continue;
    let error = null;
    try {
      new cls(structuredClone(o)).validate();
    } catch (e) {
      error = e.message;
    }
    t.check(error === null, `${where}: ${key(o)} fails its schema: ${error}`);
  }
}

const containerPort = (c, nameOrNumber) =>
  typeof nameOrNumber === "number"
    ? (c.ports ?? []).find((p) => p.containerPort === nameOrNumber)
    : (c.ports ?? []).find((p) => p.name === nameOrNumber);

function preStopSeconds(c) {
  const cmd = c.lifecycle?.preStop?.exec?.command;
  if (Array.isArray(cmd) && /(^|\/)sleep$/.test(cmd[0]) && cmd.length === 2) return Number(cmd[1]);
  if (c.lifecycle?.preStop?.sleep) return Number(c.lifecycle.preStop.sleep.seconds);
  return NaN;
}

// Kubernetes expands $(VAR) in args only for variables defined in env.
function checkEnvExpansion(c, t, where) {
  const defined = new Set((c.env ?? []).map((e) => e.name));
  for (const a of c.args ?? []) {
    for (const m of a.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
      t.check(defined.has(m[1]), `${where}: arg ${a} uses $(${m[1]}) but env does not define it`);
    }
  }
  for (const name of ["POD_NAME", "POD_NAMESPACE", "SESSIONGRID_NODE_ID"]) {
    const e = (c.env ?? []).find((x) => x.name === name);
    if (e) {
      const want = name === "POD_NAMESPACE" ? "metadata.namespace" : "metadata.name";
      t.equal(e.valueFrom?.fieldRef?.fieldPath, want, `${where}: env ${name} fieldRef`);
    }
  }
}

function checkHardening(w, t) {
  const where = key(w);
  const pod = w.spec.template.spec;
  t.equal(pod.automountServiceAccountToken, false, `${where}: automountServiceAccountToken`);
  t.equal(pod.securityContext?.runAsNonRoot, true, `${where}: pod runAsNonRoot`);
  t.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault", `${where}: pod seccompProfile`);
  for (const c of pod.containers) {
    const sc = c.securityContext ?? {};
    const cw = `${where} container ${c.name}`;
    t.equal(sc.runAsNonRoot, true, `${cw}: runAsNonRoot`);
    t.equal(sc.readOnlyRootFilesystem, true, `${cw}: readOnlyRootFilesystem`);
    t.equal(sc.allowPrivilegeEscalation, false, `${cw}: allowPrivilegeEscalation`);
    t.check(sc.privileged !== true, `${cw}: privileged`);
    t.check((sc.capabilities?.drop ?? []).includes("ALL"), `${cw}: capabilities.drop must include ALL`);
    t.check(!(sc.capabilities?.add ?? []).length, `${cw}: no capabilities added`);
    t.equal(sc.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type, "RuntimeDefault", `${cw}: seccompProfile`);
    t.check(c.resources?.limits?.memory, `${cw}: memory limit`);
    t.check(c.resources?.requests?.cpu, `${cw}: cpu request`);
    for (const p of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      t.check(c[p], `${cw}: ${p} missing`);
    }
    t.check(Number.isFinite(preStopSeconds(c)), `${cw}: preStop sleep missing`);
    // A read-only root needs every written path mounted.
    t.check((c.volumeMounts ?? []).some((m) => m.mountPath === "/tmp"), `${cw}: /tmp mounted`);
  }
}

function podLabels(w) {
  return w.spec.template.metadata?.labels ?? {};
}

function checkServer(objects, sts, t) {
  const where = key(sts);
  const c = sts.spec.template.spec.containers.find((x) => x.name === "server");
  if (!t.check(c, `${where}: container "server"`)) return;
  const f = flagMap(c.args);
  checkEnvExpansion(c, t, where);
  const port = portOf(f.get("listen"));
  const peerPort = portOf(f.get("peer-listen"));
  t.equal(containerPort(c, "grpc")?.containerPort, port, `${where}: grpc containerPort = --listen port`);
  t.equal(containerPort(c, "peer")?.containerPort, peerPort, `${where}: peer containerPort = --peer-listen port`);
  if (f.has("tls-cert")) {
    // The kubelet's gRPC probes speak no TLS: HTTP on the metrics port,
    // whose /readyz answers as gRPC health does.
    const metricsPort = portOf(f.get("metrics-listen") ?? "");
    t.equal(containerPort(c, "metrics")?.containerPort, metricsPort, `${where}: TLS: a metrics containerPort = --metrics-listen port`);
    for (const [p, path] of [["startupProbe", "/readyz"], ["readinessProbe", "/readyz"], ["livenessProbe", "/healthz"]]) {
      t.check(c[p]?.httpGet?.port === "metrics" && c[p]?.httpGet?.path === path, `${where}: TLS: ${p} is GET ${path} on the metrics port`);
    }
  } else {
    for (const p of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      t.equal(c[p]?.grpc?.port, port, `${where}: ${p} is a native grpc probe on the client port`);
    }
    // Readiness follows whether the node can coordinate; liveness must not,
    // or a node that lost its peers would be restarted for it.
    t.equal(c.readinessProbe?.grpc?.service ?? "", "", `${where}: readiness asks the overall health`);
    t.equal(c.livenessProbe?.grpc?.service, "sessiongrid.v1.AdminService", `${where}: liveness asks the admin service`);
  }
  // Every file flag points into a mounted volume.
  for (const [flag, value] of f) {
    if (!/-(file|cert|key|ca)$/.test(flag) || !value) continue;
    t.check((c.volumeMounts ?? []).some((m) => value.startsWith(m.mountPath + "/")), `${where}: --${flag}=${value} is inside a mounted volume`);
  }
  t.equal(sts.spec.podManagementPolicy, "Parallel", `${where}: podManagementPolicy`);
  t.equal(f.get("memory-limit"), "auto", `${where}: --memory-limit=auto`);
  t.equal(f.get("node-id"), "$(POD_NAME)", `${where}: --node-id is the pod name`);
  const drain = seconds(f.get("drain-timeout"));
  const pre = preStopSeconds(c);
  const grace = sts.spec.template.spec.terminationGracePeriodSeconds;
  t.check(Number.isFinite(drain), `${where}: --drain-timeout in seconds (${f.get("drain-timeout")})`);
  t.check(grace > pre + drain, `${where}: terminationGracePeriodSeconds ${grace} must exceed preStop ${pre} + drain ${drain}`);

  // The governing Service: headless, lists not-ready pods, and is what
  // --peer-dns and --advertise-address name.
  const peers = find(objects, "Service", sts.spec.serviceName);
  if (t.check(peers, `${where}: serviceName ${sts.spec.serviceName} has no Service`)) {
    t.equal(peers.spec.clusterIP, "None", `${key(peers)}: headless`);
    t.equal(peers.spec.publishNotReadyAddresses, true, `${key(peers)}: publishNotReadyAddresses`);
    t.check(selects(peers.spec.selector, podLabels(sts)), `${key(peers)}: selects the server pods`);
    t.check(peers.spec.ports.some((p) => p.port === peerPort), `${key(peers)}: has the peer port`);
    const dns = f.get("peer-dns") ?? "";
    t.check(
      new RegExp(`^${peers.metadata.name}\\.\\$\\(POD_NAMESPACE\\)\\.svc\\.[a-z0-9.-]+:${peerPort}$`).test(dns),
      `${where}: --peer-dns=${dns} names ${peers.metadata.name} on port ${peerPort}`,
    );
    const adv = f.get("advertise-address") ?? "";
    t.check(
      new RegExp(`^\\$\\(POD_NAME\\)\\.${peers.metadata.name}\\.\\$\\(POD_NAMESPACE\\)\\.svc\\.[a-z0-9.-]+:${port}$`).test(adv),
      `${where}: --advertise-address=${adv} is the pod's stable DNS name on the client port`,
    );
  }
  const rf = Number(f.get("replication-factor"));
  const w = Number(f.get("write-quorum"));
  const r = Number(f.get("read-quorum"));
  t.check(w >= 1 && w <= rf && r >= 1 && r <= rf, `${where}: quorums within the factor (N=${rf} W=${w} R=${r})`);
  t.check(sts.spec.replicas >= rf, `${where}: replicas ${sts.spec.replicas} >= replication factor ${rf}`);

  const pdb = objects.find((o) => o.kind === "PodDisruptionBudget" && selects(o.spec.selector?.matchLabels, podLabels(sts)));
  if (pdb) {
    const want = sts.spec.replicas - rf + w;
    t.equal(pdb.spec.minAvailable, want, `${key(pdb)}: minAvailable = replicas - factor + writeQuorum`);
    t.check(pdb.spec.minAvailable >= w, `${key(pdb)}: minAvailable >= writeQuorum ${w}`);
    t.check(pdb.spec.minAvailable < sts.spec.replicas, `${key(pdb)}: lets one server be evicted`);
  }
  const claims = sts.spec.volumeClaimTemplates ?? [];
  const dataMount = (c.volumeMounts ?? []).find((m) => m.mountPath === f.get("data-dir"));
  t.check(dataMount, `${where}: --data-dir ${f.get("data-dir")} is mounted`);
  if (dataMount) {
    const fromClaim = claims.some((v) => v.metadata.name === dataMount.name);
    const fromVolume = (sts.spec.template.spec.volumes ?? []).some((v) => v.name === dataMount.name);
    t.check(fromClaim !== fromVolume, `${where}: data volume comes from exactly one of a PVC template or a pod volume`);
  }
  const aff = sts.spec.template.spec.affinity?.podAntiAffinity;
  for (const term of [
    ...(aff?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((x) => x.podAffinityTerm),
    ...(aff?.requiredDuringSchedulingIgnoredDuringExecution ?? []),
  ]) {
    t.check(selects(term.labelSelector?.matchLabels, podLabels(sts)), `${where}: anti-affinity term selects its own pods`);
  }
  for (const tsc of sts.spec.template.spec.topologySpreadConstraints ?? []) {
    t.check(selects(tsc.labelSelector?.matchLabels, podLabels(sts)), `${where}: topology spread selects its own pods`);
  }
  if (f.get("metrics-listen")) {
    t.equal(containerPort(c, "metrics")?.containerPort, portOf(f.get("metrics-listen")), `${where}: metrics port = --metrics-listen`);
  }
  return { port, peerPort, rf, w, r };
}

function checkEdge(objects, dep, t) {
  const where = key(dep);
  const c = dep.spec.template.spec.containers.find((x) => x.name === "edge");
  if (!t.check(c, `${where}: container "edge"`)) return;
  const f = flagMap(c.args);
  checkEnvExpansion(c, t, where);
  const adminPort = portOf(f.get("admin-listen"));
  t.equal(containerPort(c, "http")?.containerPort, portOf(f.get("listen")), `${where}: http containerPort = --listen port`);
  t.equal(containerPort(c, "admin")?.containerPort, adminPort, `${where}: admin containerPort = --admin-listen port`);
  const paths = { startupProbe: "/healthz", readinessProbe: "/readyz", livenessProbe: "/healthz" };
  for (const [p, path] of Object.entries(paths)) {
    const g = c[p]?.httpGet;
    t.equal(g?.path, path, `${where}: ${p} path`);
    const probePort = typeof g?.port === "number" ? g.port : containerPort(c, g?.port)?.containerPort;
    t.equal(probePort, adminPort, `${where}: ${p} on the admin port`);
  }
  const delay = seconds(f.get("drain-delay"));
  const drain = seconds(f.get("drain-timeout"));
  const pre = preStopSeconds(c);
  const grace = dep.spec.template.spec.terminationGracePeriodSeconds;
  t.check(Number.isFinite(delay) && Number.isFinite(drain), `${where}: --drain-delay/--drain-timeout in seconds`);
  t.check(grace > pre + delay + drain, `${where}: terminationGracePeriodSeconds ${grace} must exceed preStop ${pre} + drain delay ${delay} + drain timeout ${drain}`);
  t.equal(dep.spec.template.spec.readinessGates, undefined, `${where}: no readiness gates`);

  // --session-service: dns:/// of a Service that selects the server pods on
  // its client port.
  const ss = f.get("session-service") ?? "";
  const m = /^dns:\/\/\/([a-z0-9-]+)\.\$\(POD_NAMESPACE\)\.svc\.[a-z0-9.-]+:(\d+)$/.exec(ss);
  if (t.check(m, `${where}: --session-service=${ss} is dns:///<service>.$(POD_NAMESPACE).svc.<domain>:<port>`)) {
    const svc = find(objects, "Service", m[1]);
    const sts = objects.find((o) => o.kind === "StatefulSet");
    if (t.check(svc && sts, `${where}: --session-service names Service ${m[1]}`)) {
      t.check(selects(svc.spec.selector, podLabels(sts)), `${key(svc)}: selects the server pods`);
      const sp = svc.spec.ports.find((p) => p.port === Number(m[2]));
      const serverC = sts.spec.template.spec.containers[0];
      t.check(sp && containerPort(serverC, sp.targetPort)?.containerPort === portOf(flagMap(serverC.args).get("listen")),
        `${key(svc)}: port ${m[2]} reaches the servers' --listen port`);
      t.check(svc.spec.clusterIP === "None" || svc.spec.clusterIP === undefined, `${key(svc)}: clusterIP None or unset`);
      t.equal(svc.spec.publishNotReadyAddresses, undefined, `${key(svc)}: clients only see ready servers`);
    }
  }

  // Mounted rules and cookie keys are the files the flags name.
  const vols = new Map((dep.spec.template.spec.volumes ?? []).map((v) => [v.name, v]));
  const mounts = c.volumeMounts ?? [];
  const fileFrom = (flag) => {
    const p = f.get(flag);
    const mount = mounts.find((mm) => p?.startsWith(mm.mountPath + "/"));
    return mount ? { mount, vol: vols.get(mount.name), file: p.slice(mount.mountPath.length + 1) } : null;
  };
  const rules = fileFrom("rules");
  const cookie = fileFrom("cookie-secret-file");
  t.check(rules?.vol?.configMap?.items?.some((i) => i.path === rules.file), `${where}: --rules file comes from a ConfigMap`);
  t.check(cookie?.vol?.secret?.items?.some((i) => i.path === cookie.file), `${where}: --cookie-secret-file comes from a Secret`);
  // Key files: readable by the owner and the fsGroup only (a YAML 1.1/1.2
  // slip such as an unquoted 0440 read as decimal 440 = 0670 is caught).
  const mode = cookie?.vol?.secret?.defaultMode;
  t.check(mode !== undefined && (mode & ~0o440) === 0, `${where}: cookie Secret defaultMode ${mode} (0${mode?.toString(8)}) must allow at most 0440`);

  const ann = dep.spec.template.metadata?.annotations ?? {};
  const cm = rules?.vol?.configMap && find(objects, "ConfigMap", rules.vol.configMap.name);
  if (cm) {
    t.equal(ann["checksum/rules"], sha256(cm.data["rules.yaml"]), `${where}: checksum/rules = sha256 of the rules ConfigMap`);
  }
  const secret = cookie?.vol?.secret && find(objects, "Secret", cookie.vol.secret.secretName);
  if (secret) {
    const keys = Buffer.from(secret.data.keys, "base64").toString("utf8");
    t.equal(ann["checksum/cookie-secret"], sha256(keys), `${where}: checksum/cookie-secret = sha256 of the keys`);
    t.check(keys.split("\n").every((k) => k.length >= 16), `${where}: every cookie key has 16+ characters`);
  }
  const hpa = objects.find((o) => o.kind === "HorizontalPodAutoscaler");
  if (hpa) {
    t.equal(hpa.spec.scaleTargetRef, { apiVersion: "apps/v1", kind: "Deployment", name: dep.metadata.name }, `${key(hpa)}: target`);
    t.equal(dep.spec.replicas, undefined, `${where}: no replicas while the HPA owns them`);
  }
  const pdb = objects.find((o) => o.kind === "PodDisruptionBudget" && selects(o.spec.selector?.matchLabels, podLabels(dep)));
  if (pdb && !hpa) {
    t.check(pdb.spec.maxUnavailable < dep.spec.replicas || pdb.spec.minAvailable < dep.spec.replicas,
      `${key(pdb)}: lets an edge be evicted while never emptying the Deployment`);
  }
  return { adminPort, port: portOf(f.get("listen")) };
}

function checkSelectors(objects, t) {
  const pods = workloads(objects).map((w) => ({ w, labels: podLabels(w) }));
  for (const w of workloads(objects)) {
    t.check(selects(w.spec.selector.matchLabels, podLabels(w)), `${key(w)}: selector matches its own pod template`);
  }
  for (const o of objects) {
    let sel = null;
    if (o.kind === "Service") sel = o.spec.selector;
    if (o.kind === "PodDisruptionBudget") sel = o.spec.selector?.matchLabels;
    if (o.kind === "NetworkPolicy") sel = o.spec.podSelector?.matchLabels;
    if (!sel) continue;
    const matched = pods.filter((p) => selects(sel, p.labels));
    t.equal(matched.length, 1, `${key(o)}: selector ${JSON.stringify(sel)} matches exactly one workload's pods`);
    if (o.kind === "Service" && matched.length === 1) {
      const c = matched[0].w.spec.template.spec.containers[0];
      for (const p of o.spec.ports) {
        t.check(containerPort(c, p.targetPort ?? p.port), `${key(o)}: port ${p.name} targets container port ${p.targetPort}`);
      }
    }
  }
  for (const sm of objects.filter((o) => o.kind === "ServiceMonitor")) {
    const svcs = objects.filter((o) => o.kind === "Service" && selects(sm.spec.selector.matchLabels, o.metadata.labels));
    t.equal(svcs.length, 1, `${key(sm)}: selects exactly one Service`);
    for (const ep of sm.spec.endpoints) {
      t.check(svcs[0]?.spec.ports.some((p) => p.name === ep.port), `${key(sm)}: endpoint port ${ep.port} is on the Service`);
    }
  }
}

function ruleFor(np, port) {
  return (np.spec.ingress ?? []).filter((r) => (r.ports ?? []).some((p) => p.port === port));
}

function checkNetworkPolicies(objects, t, server, edge) {
  const sts = objects.find((o) => o.kind === "StatefulSet");
  const dep = objects.find((o) => o.kind === "Deployment");
  const nps = objects.filter((o) => o.kind === "NetworkPolicy");
  if (!nps.length) return;
  const serverNp = nps.find((n) => selects(n.spec.podSelector.matchLabels, podLabels(sts)));
  const edgeNp = nps.find((n) => selects(n.spec.podSelector.matchLabels, podLabels(dep)));
  if (t.check(serverNp, "a NetworkPolicy selects the server pods")) {
    const where = key(serverNp);
    t.equal(serverNp.spec.policyTypes, ["Ingress"], `${where}: policyTypes`);
    const peer = ruleFor(serverNp, server.peerPort);
    t.equal(peer.length, 1, `${where}: one rule opens the peer port`);
    const peerFrom = peer[0]?.from ?? [];
    t.check(peerFrom.length === 1 && selects(peerFrom[0].podSelector?.matchLabels, podLabels(sts)) && !peerFrom[0].namespaceSelector,
      `${where}: peer port ${server.peerPort} only from server pods (got ${JSON.stringify(peerFrom)})`);
    t.equal((peer[0]?.ports ?? []).map((p) => p.port), [server.peerPort], `${where}: the peer rule opens nothing else`);
    const client = ruleFor(serverNp, server.port);
    t.equal(client.length, 1, `${where}: one rule opens the client port`);
    const from = client[0]?.from ?? [];
    t.check(from.length > 0, `${where}: client port is not open to everyone`);
    t.check(from.some((x) => selects(x.podSelector?.matchLabels, podLabels(dep))), `${where}: client port open to the edges`);
    t.check(from.every((x) => x.podSelector && !x.namespaceSelector && !x.ipBlock), `${where}: client port only from pods of this namespace`);
    t.check(!from.some((x) => selects(x.podSelector?.matchLabels, podLabels(sts))), `${where}: servers do not need the client port of their peers`);
    for (const r of serverNp.spec.ingress) {
      for (const p of r.ports ?? []) {
        t.check([server.port, server.peerPort, server.metricsPort].includes(p.port), `${where}: opens only known ports (${p.port})`);
      }
    }
    if (server.metricsPort) {
      const mr = ruleFor(serverNp, server.metricsPort);
      // No rule at all (networkPolicy.metricsNamespace ""): the port is closed.
      t.check(mr.length <= 1 && mr.every((r) => r.from?.length > 0 && r.from.every((x) => x.namespaceSelector && !x.podSelector)),
        `${where}: metrics port only from a namespace selector`);
    }
  }
  if (t.check(edgeNp, "a NetworkPolicy selects the edge pods")) {
    const where = key(edgeNp);
    t.equal(ruleFor(edgeNp, edge.port).length, 1, `${where}: the HTTP port is open`);
    for (const r of ruleFor(edgeNp, edge.adminPort)) {
      t.check(r.from?.length && r.from.every((x) => x.namespaceSelector), `${where}: admin port only from a namespace selector`);
    }
  }
}

function checkPrometheusRule(objects, t) {
  const pr = objects.find((o) => o.kind === "PrometheusRule");
  if (!pr) return;
  const rules = pr.spec.groups.flatMap((g) => g.rules);
  const exprOf = (alert, severity) =>
    rules.find((r) => r.alert === alert && r.labels?.severity === severity)?.expr?.replace(/\s+/g, " ").trim() ?? "";
  return { rules, exprOf };
}

// A null in a rendered manifest is a template slip (an empty block such as
// `annotations:` with nothing under it).
function nullPaths(node, path, out) {
  if (node === null) out.push(path);
  else if (Array.isArray(node)) node.forEach((v, i) => nullPaths(v, `${path}[${i}]`, out));
  else if (typeof node === "object") for (const [k, v] of Object.entries(node)) nullPaths(v, `${path}.${k}`, out);
  return out;
}

// Runs everything; returns facts for callers that check values further.
export async function checkObjects(objects, t, where) {
  await validateModels(objects, t, where);
  for (const o of objects) {
    const nulls = nullPaths(o, key(o), []);
    t.check(!nulls.length, `${where}: null values in ${nulls.join(", ")}`);
  }
  const sts = objects.filter((o) => o.kind === "StatefulSet");
  const deps = objects.filter((o) => o.kind === "Deployment");
  t.equal(sts.length, 1, `${where}: one StatefulSet`);
  t.equal(deps.length, 1, `${where}: one Deployment`);
  const names = objects.map(key);
  t.equal(names.length, new Set(names).size, `${where}: object names are unique per kind`);
  for (const w of workloads(objects)) checkHardening(w, t);
  const server = sts[0] ? checkServer(objects, sts[0], t) : null;
  const edge = deps[0] ? checkEdge(objects, deps[0], t) : null;
  checkSelectors(objects, t);
  if (server && edge) {
    const c = sts[0].spec.template.spec.containers[0];
    const mp = portOf(flagMap(c.args).get("metrics-listen"));
    server.metricsPort = Number.isFinite(mp) ? mp : undefined;
    checkNetworkPolicies(objects, t, server, edge);
  }
  const sa = objects.find((o) => o.kind === "ServiceAccount");
  if (sa) t.equal(sa.automountServiceAccountToken, false, `${key(sa)}: automountServiceAccountToken`);
  return { server, edge, prom: checkPrometheusRule(objects, t) };
}
