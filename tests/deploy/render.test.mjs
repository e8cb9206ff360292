// Renders the chart with real Helm at its defaults and at every value file in
// values/, validates every object against the Kubernetes schemas
// (kubernetes-models) and runs the checks the schemas cannot make
// (checks.mjs), plus what each value set must change. Ends with a self-test:
// broken copies of the default render must be caught.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parser as promql } from "@prometheus-io/lezer-promql";
import { checkObjects } from "./checks.mjs";
import { chartDir, find, flagMap, helmBin, key, parseYamlDocs, readText, render, root, tally, valuesDir } from "./lib.mjs";

const t = tally("deploy.render");

const stsOf = (objs) => objs.find((o) => o.kind === "StatefulSet");
const depOf = (objs) => objs.find((o) => o.kind === "Deployment");
const serverArgs = (objs) => stsOf(objs).spec.template.spec.containers[0].args;
const edgeArgs = (objs) => depOf(objs).spec.template.spec.containers[0].args;
const kinds = (objs) => objs.map(key).sort();

// --- defaults -------------------------------------------------------------
const defaults = render();
await checkObjects(defaults, t, "defaults");
t.equal(kinds(defaults), [
  "ConfigMap/sessiongrid-edge-rules",
  "Deployment/sessiongrid-edge",
  "NetworkPolicy/sessiongrid-edge",
  "NetworkPolicy/sessiongrid-server",
  "Pod/sessiongrid-test-health",
  "PodDisruptionBudget/sessiongrid-edge",
  "PodDisruptionBudget/sessiongrid-server",
  "Secret/sessiongrid-edge-cookie",
  "Service/sessiongrid-edge",
  "Service/sessiongrid-edge-admin",
  "Service/sessiongrid-server",
  "Service/sessiongrid-server-peers",
  "ServiceAccount/sessiongrid",
  "StatefulSet/sessiongrid-server",
], "defaults: the objects rendered");
// The flags and values the issue asks for, exactly.
t.equal(serverArgs(defaults), [
  "--listen=0.0.0.0:7400",
  "--data-dir=/var/lib/sessiongrid",
  "--node-id=$(POD_NAME)",
  "--drain-timeout=20s",
  "--memory-limit=auto",
  "--peer-listen=0.0.0.0:7401",
  "--peer-dns=sessiongrid-server-peers.$(POD_NAMESPACE).svc.cluster.local:7401",
  "--advertise-address=$(POD_NAME).sessiongrid-server-peers.$(POD_NAMESPACE).svc.cluster.local:7400",
  "--replication-factor=3",
  "--write-quorum=2",
  "--read-quorum=2",
  "--hint-window=3h",
  "--anti-entropy-interval=60s",
  "--metrics-listen=0.0.0.0:9400",
], "defaults: server args");
{
  // Read-your-writes at the defaults: a user's next request must see what
  // the last one stored, also while a node restarts (the rehearsal asserts
  // it with every user's counter).
  const f = flagMap(serverArgs(defaults));
  const [n, w, r] = ["replication-factor", "write-quorum", "read-quorum"].map((k) => Number(f.get(k)));
  t.check(r + w > n, `defaults: R + W > N (R=${r} W=${w} N=${n})`);
}
{
  const f = flagMap(edgeArgs(defaults));
  t.equal(f.get("session-service"), "dns:///sessiongrid-server.$(POD_NAMESPACE).svc.cluster.local:7400", "defaults: --session-service");
  t.equal(f.get("drain-delay"), "5s", "defaults: edge --drain-delay");
  t.equal(f.get("drain-timeout"), "30s", "defaults: edge --drain-timeout");
  t.equal(f.get("listen"), "0.0.0.0:8080", "defaults: edge --listen");
  t.equal(f.get("admin-listen"), "0.0.0.0:9090", "defaults: edge --admin-listen");
  t.check(!f.has("trusted-proxies"), "defaults: no --trusted-proxies");
  t.check(!f.has("cookie-secure") && !f.has("cookie-insecure"), "defaults: the cookie's Secure follows --production");
  t.equal(f.get("max-connections"), "20000", "defaults: edge --max-connections");
  t.equal(f.get("header-timeout"), "10s", "defaults: edge --header-timeout");
  t.equal(f.get("anon-session-rate"), "20", "defaults: edge --anon-session-rate");
}
{
  // edge.cookie.secure=false in production must mean what it says: the
  // edge makes a production cookie Secure unless --cookie-insecure.
  const insecure = flagMap(edgeArgs(render(["--set", "edge.production=true", "--set", "edge.cookie.secure=false"])));
  t.equal(insecure.get("cookie-insecure"), "true", "production + cookie.secure=false: --cookie-insecure");
  const prod = flagMap(edgeArgs(render(["--set", "edge.production=true"])));
  t.check(prod.get("production") === "true" && !prod.has("cookie-secure") && !prod.has("cookie-insecure"),
    "production alone: Secure by the edge's own rule");
  const prefixed = flagMap(edgeArgs(render(["--set", "edge.cookie.hostPrefix=true", "--set", "edge.cookie.secure=true"])));
  t.equal(prefixed.get("cookie-host-prefix"), "true", "cookie.hostPrefix: --cookie-host-prefix");
}
t.equal(find(defaults, "PodDisruptionBudget", "sessiongrid-server").spec.minAvailable, 2, "defaults: server PDB minAvailable = write quorum");
t.equal(find(defaults, "PodDisruptionBudget", "sessiongrid-edge").spec.maxUnavailable, 1, "defaults: edge PDB");
t.equal(find(defaults, "ConfigMap", "sessiongrid-edge-rules").data["rules.yaml"], readText(join(root, "edge/rules/default.yaml")),
  "defaults: rules ConfigMap = edge/rules/default.yaml");
t.equal(stsOf(defaults).spec.template.spec.terminationGracePeriodSeconds, 35, "defaults: server grace = 5 + 20 + 10");
t.equal(depOf(defaults).spec.template.spec.terminationGracePeriodSeconds, 42, "defaults: edge grace = 2 + 5 + 30 + 5");
t.equal(stsOf(defaults).spec.volumeClaimTemplates?.[0]?.spec?.resources?.requests?.storage, "10Gi", "defaults: a 10Gi PVC per pod");
t.check(stsOf(defaults).spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution, "defaults: soft anti-affinity");
t.equal(stsOf(defaults).spec.template.spec.topologySpreadConstraints?.[0]?.whenUnsatisfiable, "ScheduleAnyway", "defaults: soft topology spread");
{
  // The generated key is random per render but stable per release (lookup).
  const a = find(defaults, "Secret", "sessiongrid-edge-cookie").data.keys;
  const b = find(render(), "Secret", "sessiongrid-edge-cookie").data.keys;
  t.check(a !== b && Buffer.from(a, "base64").length === 48, "defaults: a random 48-character key per fresh install");
}

{
  // `helm test`: a hardened one-shot Pod that reaches the client Service
  // through the NetworkPolicy (it carries the allow label).
  const pod = find(defaults, "Pod", "sessiongrid-test-health");
  t.equal(pod.metadata.annotations["helm.sh/hook"], "test", "helm test: hook annotation");
  t.equal(pod.metadata.labels["sessiongrid.io/client"], "true", "helm test: the client allow label");
  t.check(pod.spec.containers[0].command[2].includes("dns:///sessiongrid-server.default.svc.cluster.local:7400"), "helm test: calls the client Service");
  const sc = pod.spec.containers[0].securityContext;
  t.check(sc.readOnlyRootFilesystem && sc.allowPrivilegeEscalation === false && sc.capabilities.drop.includes("ALL") && pod.spec.automountServiceAccountToken === false,
    "helm test: hardened like the workloads");
  t.check(!find(render(["--set", "helmTest.enabled=false"]), "Pod"), "helm test: helmTest.enabled=false drops it");
}

{
  // NOTES.txt (Helm prints it after install; `helm template` does not
  // render it): rendered through a copy of the chart that wraps it in a
  // ConfigMap, then checked for the commands a newcomer types next.
  const copy = mkdtempSync(join(tmpdir(), "sg-notes-"));
  try {
    cpSync(chartDir, copy, { recursive: true });
    renameSync(join(copy, "templates/NOTES.txt"), join(copy, "notes.tpl"));
    writeFileSync(join(copy, "templates/zz-notes.yaml"),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n    {{- tpl (.Files.Get "notes.tpl") . | nindent 4 }}\n');
    const r = spawnSync(helmBin, ["template", "sessiongrid", copy, "--namespace", "shop", "--show-only", "templates/zz-notes.yaml"], { encoding: "utf8" });
    const notes = r.status === 0 ? parseYamlDocs(r.stdout, "notes")[0].data.notes : "";
    t.check(r.status === 0, `NOTES.txt renders: ${r.stderr}`);
    for (const line of [
      "kubectl -n shop rollout status statefulset/sessiongrid-server",
      "helm test sessiongrid -n shop",
      "kubectl -n shop port-forward sessiongrid-server-0 7400:7400",
      "grpcurl -plaintext 127.0.0.1:7400 grpc.health.v1.Health/Check",
      "grpcurl -plaintext 127.0.0.1:7400 list",
      "grpcurl -plaintext -d '{}' 127.0.0.1:7400 sessiongrid.v1.AdminService/ClusterStatus",
      "curl -s http://127.0.0.1:9090/readyz",
      "curl -s http://127.0.0.1:8080/api/session-health",
      "dns:///sessiongrid-server.shop.svc.cluster.local:7400",
      "curl -s http://127.0.0.1:9400/metrics",
    ]) {
      t.check(notes.includes(line), `NOTES.txt prints: ${line}`);
    }
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

// --- production.yaml --------------------------------------------------------
const prod = render(["-f", join(valuesDir, "production.yaml")]);
const prodFacts = await checkObjects(prod, t, "production.yaml");
t.equal(find(prod, "PodDisruptionBudget", "sessiongrid-server").spec.minAvailable, 4, "production: PDB minAvailable = 5 - 3 + 2");
t.check(!find(prod, "Secret"), "production: existingSecret, no Secret created");
{
  const dep = depOf(prod);
  t.equal(dep.spec.template.spec.volumes.find((v) => v.name === "cookie").secret.secretName, "shop-session-keys", "production: existingSecret mounted");
  t.check(!("checksum/cookie-secret" in dep.spec.template.metadata.annotations), "production: no checksum of a Secret the chart does not own");
  t.check(find(prod, "HorizontalPodAutoscaler", "sessiongrid-edge"), "production: HPA");
  const f = flagMap(edgeArgs(prod));
  t.equal(f.get("trusted-proxies"), "10.0.0.0/8", "production: --trusted-proxies");
  t.equal(f.get("fail-mode"), "closed", "production: --fail-mode");
  t.equal(f.get("cookie-samesite"), "none", "production: --cookie-samesite");
  t.equal(f.get("production"), "true", "production: --production");
  t.equal(dep.spec.template.spec.terminationGracePeriodSeconds, 47, "production: edge grace = 2 + 10 + 30 + 5");
  t.check(dep.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution, "production: hard edge anti-affinity");
}
{
  const sts = stsOf(prod);
  const f = flagMap(serverArgs(prod));
  t.equal(f.get("metrics-listen"), "0.0.0.0:9400", "production: --metrics-listen");
  t.equal(f.get("default-ttl"), "12h", "production: extraArgs passed");
  t.equal(f.get("hint-window"), "1h30m", "production: --hint-window");
  t.equal(sts.spec.template.spec.terminationGracePeriodSeconds, 60, "production: explicit server grace kept");
  t.equal(sts.spec.volumeClaimTemplates[0].spec.storageClassName, "fast-ssd", "production: storageClass");
  t.check(sts.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution, "production: hard server anti-affinity");
  t.check(find(prod, "Service", "sessiongrid-server-peers").spec.ports.some((p) => p.name === "metrics"), "production: metrics port on the peers Service");
  t.equal(prod.filter((o) => o.kind === "ServiceMonitor").map((o) => o.metadata.labels.release), ["prometheus", "prometheus"], "production: two ServiceMonitors with the selector label");
  const np = find(prod, "NetworkPolicy", "sessiongrid-server");
  const metricsRule = np.spec.ingress.find((r) => r.ports.some((p) => p.port === 9400));
  t.equal(metricsRule?.from, [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "observability" } } }], "production: metrics from the configured namespace");
  const enp = find(prod, "NetworkPolicy", "sessiongrid-edge");
  t.equal(enp.spec.ingress[0].from?.[0]?.namespaceSelector?.matchLabels, { "kubernetes.io/metadata.name": "ingress-nginx" }, "production: edge ingress from the ingress namespace");
}
{
  // The seed's dashboard thresholds (section 6.2) and the cluster alerts.
  const { exprOf, rules } = prodFacts.prom;
  t.check(/< 0\.9$/.test(exprOf("SessionGridSkipRatioLow", "warning")), "alert: skip ratio < 90% warning");
  t.check(/< 0\.8$/.test(exprOf("SessionGridSkipRatioLow", "critical")), "alert: skip ratio < 80% critical");
  t.check(/^histogram_quantile\(0\.99, .*> 1$/.test(exprOf("SessionGridP99High", "warning")), "alert: p99 > 1s warning");
  t.check(/> 3$/.test(exprOf("SessionGridP99High", "critical")), "alert: p99 > 3s critical");
  t.check(/code="5xx".*> 0\.01$/.test(exprOf("SessionGridErrorRateHigh", "warning")), "alert: error rate > 1% warning");
  t.check(/> 0\.05$/.test(exprOf("SessionGridErrorRateHigh", "critical")), "alert: error rate > 5% critical");
  for (const a of ["SessionGridMemoryCritical", "SessionGridRangeBelowWriteQuorum", "SessionGridHintsPilingUp", "SessionGridPeerDead", "SessionGridSessionServiceUnreachable"]) {
    t.check(rules.some((r) => r.alert === a), `alert: ${a}`);
  }
  t.check(rules.every((r) => r.expr.includes('namespace="default"')), "alerts: every expression is scoped to the release namespace");
  t.check(rules.every((r) => ["warning", "critical"].includes(r.labels?.severity)), "alerts: severities");
  const dash = find(prod, "ConfigMap", "sessiongrid-dashboard");
  let dashboard = { panels: [] };
  try {
    dashboard = JSON.parse(dash.data["sessiongrid.json"]);
  } catch (e) {
    t.check(false, `dashboard JSON: ${e.message}`);
  }
  const panels = dashboard.panels.map((p) => p.title);
  for (const title of ["Skip ratio", "Sessions", "memory level", "p99", "Error rate", "Peers"]) {
    t.check(panels.some((p) => p.includes(title)), `dashboard: a "${title}" panel`);
  }
  t.equal(dash.metadata.labels.grafana_dashboard, "1", "dashboard: sidecar label");

  // Every expression parses as PromQL (the Prometheus project's own grammar),
  // and every edge metric it names is one the edge exports.
  const dashExprs = dashboard.panels.flatMap((p) => p.targets.map((x) => x.expr.replaceAll("$namespace", "default")));
  const exprs = [...rules.map((r) => r.expr), ...dashExprs];
  const edgeMetricsSource = readText(join(root, "edge/metrics.cc"));
  const serverMetricsSource = [
    "server/service/server_metrics.cc",
    "server/service/rpc_metrics.cc",
  ].map((p) => readText(join(root, p))).join("\n");
  for (const q of exprs) {
    let errAt = null;
    promql.parse(q).iterate({ enter: (n) => { if (n.type.isError && errAt === null) errAt = n.from; } });
    t.check(errAt === null, `PromQL parse error at ${errAt} in: ${q}`);
    for (const m of q.matchAll(/\bsg_edge_[a-z_]+/g)) {
      const name = m[0].replace(/_(bucket|sum|count)$/, "");
      t.check(edgeMetricsSource.includes(`"${name}"`), `${name} (in ${q.slice(0, 60)}...) is not a metric in edge/metrics.cc`);
    }
    for (const m of q.matchAll(/\bsg_server_[a-z_]+/g)) {
      const name = m[0].replace(/_(bucket|sum|count)$/, "");
      t.check(serverMetricsSource.includes(`"${name}"`), `${name} (in ${q.slice(0, 60)}...) is not a metric in server/service/`);
    }
  }
}

// --- server.metrics.enabled=false ------------------------------------------
{
  const off = render(["--set", "server.metrics.enabled=false"]);
  await checkObjects(off, t, "metrics off");
  const sts = stsOf(off);
  t.equal(flagMap(serverArgs(off)).get("metrics-listen"), "", "metrics off: --metrics-listen= (no listener)");
  t.check(!sts.spec.template.spec.containers[0].ports.some((p) => p.name === "metrics"), "metrics off: no container port");
  t.check(!find(off, "Service", "sessiongrid-server-peers").spec.ports.some((p) => p.name === "metrics"), "metrics off: no Service port");
}

// --- minimal.yaml -----------------------------------------------------------
const minimal = render(["-f", join(valuesDir, "minimal.yaml")]);
await checkObjects(minimal, t, "minimal.yaml");
{
  const sts = stsOf(minimal);
  t.equal(sts.spec.volumeClaimTemplates, undefined, "minimal: no PVC");
  t.equal(sts.spec.template.spec.volumes.find((v) => v.name === "data")?.emptyDir, {}, "minimal: data on emptyDir");
  t.equal(sts.spec.template.spec.affinity, undefined, "minimal: no affinity");
  t.equal(sts.spec.template.spec.topologySpreadConstraints, undefined, "minimal: no topology spread");
  t.equal(sts.spec.template.spec.serviceAccountName, "default", "minimal: the namespace's default ServiceAccount");
  t.check(!minimal.some((o) => ["NetworkPolicy", "PodDisruptionBudget", "ServiceAccount"].includes(o.kind)), "minimal: no policies, PDBs, ServiceAccount");
  t.equal(find(minimal, "Service", "sessiongrid-server").spec.clusterIP, undefined, "minimal: client Service with a virtual IP");
}

// --- custom.yaml ------------------------------------------------------------
const custom = render(["-f", join(valuesDir, "custom.yaml")]);
await checkObjects(custom, t, "custom.yaml");
{
  t.check(find(custom, "StatefulSet", "shop-sessions-server"), "custom: fullnameOverride");
  const f = flagMap(serverArgs(custom));
  t.equal(f.get("listen"), "0.0.0.0:7500", "custom: server port");
  t.equal(f.get("peer-dns"), "shop-sessions-server-peers.$(POD_NAMESPACE).svc.corp.local:7501", "custom: cluster domain and peer port");
  const e = flagMap(edgeArgs(custom));
  t.equal(e.get("session-service"), "dns:///shop-sessions-server.$(POD_NAMESPACE).svc.corp.local:7500", "custom: --session-service follows the names and port");
  t.equal(e.get("cookie-name"), "shop.sid", "custom: cookie name");
  t.equal(e.get("threads"), "2", "custom: edge extraArgs");
  const keys = Buffer.from(find(custom, "Secret", "shop-sessions-edge-cookie").data.keys, "base64").toString();
  t.equal(keys, "new-key-0123456789abcdef\nold-key-0123456789abcdef", "custom: keys one per line, new first");
  t.check(find(custom, "ConfigMap", "shop-sessions-edge-rules").data["rules.yaml"].includes('"/assets/"'), "custom: rules content");
  const ann = (o) => depOf(o).spec.template.metadata.annotations;
  t.check(ann(custom)["checksum/rules"] !== ann(defaults)["checksum/rules"], "custom: other rules, other checksum (the edges roll)");
  const again = render(["-f", join(valuesDir, "custom.yaml")]);
  t.equal(ann(again), ann(custom), "custom: same values, same checksums (no needless roll)");
  const np = find(custom, "NetworkPolicy", "shop-sessions-server");
  const clientRule = np.spec.ingress.find((r) => r.ports.some((p) => p.port === 7500));
  t.check(clientRule.from.some((x) => x.podSelector?.matchLabels?.["shop.example.com/sessions"] === "allowed"), "custom: the allow label");
  t.check(!find(custom, "NetworkPolicy", "shop-sessions-edge").spec.ingress.some((r) => r.ports.some((p) => p.port === 9091)),
    "custom: no metrics namespace, admin port closed");
}

// Any other value files someone adds are checked the same way.
for (const file of readdirSync(valuesDir).filter((f) => f.endsWith(".yaml"))) {
  if (["production.yaml", "minimal.yaml", "custom.yaml"].includes(file)) continue;
  await checkObjects(render(["-f", join(valuesDir, file)]), t, file);
}

// --- self-test: the checks catch broken objects -----------------------------
const breakages = [
  ["readOnlyRootFilesystem", (o) => { stsOf(o).spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem = false; }],
  ["capabilities.drop", (o) => { depOf(o).spec.template.spec.containers[0].securityContext.capabilities.drop = []; }],
  ["automountServiceAccountToken", (o) => { delete depOf(o).spec.template.spec.automountServiceAccountToken; }],
  ["readinessProbe", (o) => { delete stsOf(o).spec.template.spec.containers[0].readinessProbe; }],
  ["grpc probe", (o) => { stsOf(o).spec.template.spec.containers[0].livenessProbe = { tcpSocket: { port: 7400 } }; }],
  ["/readyz", (o) => { depOf(o).spec.template.spec.containers[0].readinessProbe.httpGet.path = "/healthz"; }],
  ["preStop", (o) => { delete depOf(o).spec.template.spec.containers[0].lifecycle; }],
  ["terminationGracePeriodSeconds", (o) => { stsOf(o).spec.template.spec.terminationGracePeriodSeconds = 25; }],
  ["terminationGracePeriodSeconds", (o) => { depOf(o).spec.template.spec.terminationGracePeriodSeconds = 37; }],
  ["minAvailable", (o) => { find(o, "PodDisruptionBudget", "sessiongrid-server").spec.minAvailable = 1; }],
  ["selector", (o) => { find(o, "Service", "sessiongrid-edge").spec.selector["app.kubernetes.io/component"] = "edges"; }],
  ["publishNotReadyAddresses", (o) => { delete find(o, "Service", "sessiongrid-server-peers").spec.publishNotReadyAddresses; }],
  ["peer port", (o) => { find(o, "NetworkPolicy", "sessiongrid-server").spec.ingress[0].from.push({ podSelector: { matchLabels: { any: "pod" } } }); }],
  ["client port", (o) => { delete find(o, "NetworkPolicy", "sessiongrid-server").spec.ingress[1].from; }],
  ["checksum/rules", (o) => { find(o, "ConfigMap", "sessiongrid-edge-rules").data["rules.yaml"] += "# changed\n"; }],
  ["--memory-limit", (o) => { stsOf(o).spec.template.spec.containers[0].args[4] = "--memory-limit=512MiB"; }],
  ["--session-service", (o) => { depOf(o).spec.template.spec.containers[0].args[3] = "--session-service=sessiongrid-server:7400"; }],
  ["$(POD_NAME)", (o) => { stsOf(o).spec.template.spec.containers[0].env.splice(0, 1); }],
  ["fails its schema", (o) => { stsOf(o).spec.replicas = "three"; }],
  ["memory limit", (o) => { delete depOf(o).spec.template.spec.containers[0].resources.limits; }],
  ["defaultMode", (o) => { depOf(o).spec.template.spec.volumes.find((v) => v.secret).secret.defaultMode = 440; }],
];
for (const [expect, breakIt] of breakages) {
  const broken = structuredClone(defaults);
  breakIt(broken);
  const inner = { failures: [] };
  const probe = {
    check(cond, message) { if (!cond) inner.failures.push(message); return !!cond; },
    equal(a, e, message) {
      return probe.check(JSON.stringify(a) === JSON.stringify(e), `${message}: expected ${JSON.stringify(e)}, got ${JSON.stringify(a)}`);
    },
  };
  await checkObjects(broken, probe, "broken");
  t.check(inner.failures.some((m) => m.includes(expect)),
    `self-test: breaking ${expect} must be caught (caught: ${JSON.stringify(inner.failures.slice(0, 3))})`);
}

t.done();
