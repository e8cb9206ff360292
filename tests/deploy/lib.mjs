// Shared helpers of the deploy tests: where Helm and the chart are, rendering
// the chart with value files or --set pairs, parsing multi-document YAML, and
// a small pass/fail tally that prints ctest-readable totals.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, "../..");
export const chartDir = join(root, "deploy/helm/sessiongrid");
export const k8sDir = join(root, "deploy/k8s");
export const valuesDir = join(here, "values");
// Where scripts/setup unzips the pinned Helm (tools/helm/package-lock.json).
export const helmBin = process.env.SG_HELM || join(root, "tools/helm/bin/helm/helm");
export const releaseName = "sessiongrid";
export const releaseNamespace = "default";

export function requireHelm() {
  if (!existsSync(helmBin)) {
    console.error(`helm not found at ${helmBin}: run scripts/setup`);
    process.exit(1);
  }
}

// Runs `helm template`; returns {ok, stdout, stderr}. `args` are extra
// arguments such as ["-f", file] or ["--set", "a=b"].
export function helmTemplate(args = [], { namespace = releaseNamespace } = {}) {
  requireHelm();
  const r = spawnSync(
    helmBin,
    ["template", releaseName, chartDir, "--namespace", namespace, ...args],
    { encoding: "utf8", maxBuffer: 64 << 20 },
  );
  return { ok: r.status === 0, stdout: r.stdout, stderr: r.stderr, status: r.status };
}

export function parseYamlDocs(text, origin) {
  const objects = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) {
      throw new Error(`${origin}: YAML error: ${doc.errors[0].message}`);
    }
    const obj = doc.toJS();
    if (obj !== null && obj !== undefined) objects.push(obj);
  }
  return objects;
}

// Renders and parses; throws with Helm's message when rendering fails.
export function render(args = [], opts = {}) {
  const r = helmTemplate(args, opts);
  if (!r.ok) throw new Error(`helm template ${args.join(" ")} failed:\n${r.stderr}`);
  return parseYamlDocs(r.stdout, `helm template ${args.join(" ")}`);
}

export function kustomize(dir = k8sDir) {
  const out = execFileSync("kubectl", ["kustomize", dir], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  return parseYamlDocs(out, `kubectl kustomize ${dir}`);
}

export const sha256 = (s) => createHash("sha256").update(s).digest("hex");
export const readText = (p) => readFileSync(p, "utf8");
export const key = (o) => `${o.kind}/${o.metadata?.name}`;

export function find(objects, kind, name) {
  return objects.find((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
}

// A check tally: `check(cond, message)` records; `done()` prints totals in
// the plain "N passed, N failed" form and exits non-zero on any failure.
export function tally(title) {
  let passed = 0;
  const failures = [];
  const t = {
    check(cond, message) {
      if (cond) passed++;
      else failures.push(message);
      return !!cond;
    },
    equal(actual, expected, message) {
      const a = JSON.stringify(actual);
      const e = JSON.stringify(expected);
      return t.check(a === e, `${message}: expected ${e}, got ${a}`);
    },
    get failures() {
      return failures;
    },
    done() {
      for (const f of failures) console.log(`FAIL ${title}: ${f}`);
      console.log(`${title}: ${passed} passed, ${failures.length} failed`);
      process.exit(failures.length ? 1 : 0);
    },
  };
  return t;
}

// `--name=value` arguments of a container as a map (last one wins, as in the
// binaries' flag parser).
export function flagMap(args = []) {
  const m = new Map();
  for (const a of args) {
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(a);
    if (match) m.set(match[1], match[2] ?? "true");
  }
  return m;
}

export function seconds(duration) {
  const m = /^(\d+)s$/.exec(duration ?? "");
  return m ? Number(m[1]) : NaN;
}

export function portOf(hostPort) {
  const m = /:(\d+)$/.exec(hostPort ?? "");
  return m ? Number(m[1]) : NaN;
}

// Does a label selector (matchLabels map) select these labels?
export function selects(matchLabels, labels) {
  if (!matchLabels || !Object.keys(matchLabels).length) return false;
  return Object.entries(matchLabels).every(([k, v]) => labels?.[k] === v);
}

export function workloads(objects) {
  return objects.filter((o) => o.kind === "StatefulSet" || o.kind === "Deployment");
}
