// deploy/k8s must be the chart's default render, modulo what only Helm adds:
// its two labels (helm.sh/chart, app.kubernetes.io/managed-by), its hooks
// (the `helm test` Pod) and the generated cookie Secret with its checksum
// annotation (a signing key is never committed; deploy/k8s/kustomization.yaml
// says how to create it).
//
//   node tests/deploy/k8s-sync.mjs          # test: kubectl kustomize == chart
//   node tests/deploy/k8s-sync.mjs --write  # regenerate deploy/k8s/*.yaml
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { relative } from "node:path";
import { join } from "node:path";
import { stringify } from "yaml";
import { checkObjects } from "./checks.mjs";
import { k8sDir, key, kustomize, parseYamlDocs, render, tally } from "./lib.mjs";

const HELM_LABELS = ["helm.sh/chart", "app.kubernetes.io/managed-by"];
const COOKIE_SECRET = "sessiongrid-edge-cookie";

function stripHelm(node) {
  if (Array.isArray(node)) return node.map(stripHelm);
  if (node && typeof node === "object") {
    const out = {};
    for (const [k, v] of Object.entries(node)) {
      if (k === "labels" && v && typeof v === "object") {
        out[k] = Object.fromEntries(Object.entries(v).filter(([lk]) => !HELM_LABELS.includes(lk)));
      } else {
        out[k] = stripHelm(v);
      }
    }
    return out;
  }
  return node;
}

export function chartAsPlain() {
  return render()
    .filter((o) => !(o.kind === "Secret" && o.metadata.name === COOKIE_SECRET))
    // Helm hooks (the `helm test` Pod) exist only for Helm.
    .filter((o) => !o.metadata.annotations?.["helm.sh/hook"])
    .map((o) => {
      const p = stripHelm(o);
      const ann = p.spec?.template?.metadata?.annotations;
      if (ann) delete ann["checksum/cookie-secret"];
      return p;
    });
}

// Sorted keys: equality of content, not of key order.
function canonical(v) {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
  }
  return v;
}

const FILES = {
  "serviceaccount.yaml": (o) => o.kind === "ServiceAccount",
  "server.yaml": (o) => o.metadata.labels?.["app.kubernetes.io/component"] === "server",
  "edge.yaml": (o) => o.metadata.labels?.["app.kubernetes.io/component"] === "edge",
};

function write() {
  const objects = chartAsPlain();
  const placed = new Set();
  for (const [file, pick] of Object.entries(FILES)) {
    const mine = objects.filter((o) => pick(o) && !placed.has(o));
    mine.forEach((o) => placed.add(o));
    const header =
      "# Generated from the Helm chart's defaults (deploy/helm/sessiongrid) by\n" +
      "# `node tests/deploy/k8s-sync.mjs --write`; the deploy.kustomize_equals_chart\n" +
      "# test fails when this file and the chart disagree. Change the chart, then\n" +
      "# regenerate.\n";
    const body = mine.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");
    writeFileSync(join(k8sDir, file), header + body);
    console.log(`wrote deploy/k8s/${file}: ${mine.map(key).join(", ")}`);
  }
  const left = objects.filter((o) => !placed.has(o));
  if (left.length) throw new Error(`objects with no file: ${left.map(key).join(", ")}`);
}

async function test() {
  const t = tally("deploy.kustomize_equals_chart");
  // The plain manifests pass the same checks as the chart.
  await checkObjects(kustomize(), t, "deploy/k8s");
  const chart = new Map(chartAsPlain().map((o) => [key(o), canonical(o)]));
  const plain = new Map(kustomize().map((o) => [key(o), canonical(o)]));
  t.equal([...plain.keys()].sort(), [...chart.keys()].sort(), "the same objects");
  for (const [k, o] of chart) {
    if (!plain.has(k)) continue;
    const a = JSON.stringify(plain.get(k));
    const b = JSON.stringify(o);
    if (!t.check(a === b, `${k} differs from the chart's default render`)) {
      // Show the first differing path.
      const diff = firstDiff(plain.get(k), o, k);
      console.log(`  ${diff}`);
    }
  }
  const kz = readFileSync(join(k8sDir, "kustomization.yaml"), "utf8");
  for (const f of Object.keys(FILES)) t.check(kz.includes(f), `kustomization.yaml lists ${f}`);
  // Namespace independence: an overlay that sets a namespace moves every
  // object and changes no argument (the pods read their namespace).
  const overlay = mkdtempSync(join(tmpdir(), "sg-kustomize-"));
  try {
    writeFileSync(join(overlay, "kustomization.yaml"),
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: shop\nresources:\n  - ${relative(overlay, k8sDir)}\n`);
    const moved = parseYamlDocs(execFileSync("kubectl", ["kustomize", "--load-restrictor", "LoadRestrictionsNone", overlay], { encoding: "utf8" }), "overlay");
    t.check(moved.every((o) => o.metadata.namespace === "shop"), "overlay: every object in namespace shop");
    const args = (objs) => objs.filter((o) => o.spec?.template).map((o) => JSON.stringify(o.spec.template.spec.containers.map((c) => c.args)));
    t.equal(args(moved), args(kustomize()), "overlay: container args unchanged by the namespace");
  } finally {
    rmSync(overlay, { recursive: true, force: true });
  }
  // The documented example overlay (deploy/overlays/example) still applies:
  // its JSON patch tests the --upstream argument it replaces.
  const example = kustomize(join(k8sDir, "../overlays/example"));
  await checkObjects(example, t, "deploy/overlays/example");
  const exArgs = example.find((o) => o.kind === "Deployment").spec.template.spec.containers[0].args;
  t.check(exArgs.includes("--upstream=http://shop-web.shop.svc.cluster.local:3000"), "example overlay: --upstream replaced");
  t.check(example.every((o) => o.metadata.namespace === "shop"), "example overlay: namespace shop");
  // The comparison itself must be able to fail: a changed chart value.
  const changed = new Map(chartAsPlain().map((o) => [key(o), o]));
  changed.get("StatefulSet/sessiongrid-server").spec.replicas = 4;
  t.check(JSON.stringify(canonical(changed.get("StatefulSet/sessiongrid-server"))) !== JSON.stringify(plain.get("StatefulSet/sessiongrid-server")),
    "self-test: a different replica count is seen as a difference");
  t.done();
}

function firstDiff(a, b, path) {
  if (JSON.stringify(a) === JSON.stringify(b)) return null;
  if (a && b && typeof a === "object" && typeof b === "object") {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDiff(a[k], b[k], `${path}.${k}`);
      if (d) return d;
    }
  }
  return `${path}: deploy/k8s has ${JSON.stringify(a)?.slice(0, 200)}, the chart ${JSON.stringify(b)?.slice(0, 200)}`;
}

if (process.argv.includes("--write")) write();
else await test();
