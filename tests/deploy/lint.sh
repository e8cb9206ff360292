#!/usr/bin/env bash
# helm lint --strict at the defaults and at every values file in values/:
# no error and no warning. Then the chart's copy of the classifier rules must
# be byte-identical to edge/rules/default.yaml (the chart can only read files
# inside itself), and the dashboard must be valid JSON.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
helm="${SG_HELM:-$root/tools/helm/bin/helm/helm}"
chart="$root/deploy/helm/sessiongrid"
[ -x "$helm" ] || { echo "helm not found at $helm: run scripts/setup" >&2; exit 1; }

passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL deploy.lint: $*"; }

lint() {
  local out
  if out="$("$helm" lint --strict "$chart" "$@" 2>&1)" && ! grep -q '\[WARNING\]\|\[ERROR\]' <<<"$out"; then
    ok
  else
    bad "helm lint --strict $*:"; echo "$out"
  fi
}
lint
for f in "$here"/values/*.yaml; do lint -f "$f"; done

# A bad value must make lint fail too (the schema is applied by lint).
if "$helm" lint --strict "$chart" --set server.replicas=two >/dev/null 2>&1; then
  bad "helm lint accepted server.replicas=two"
else ok; fi

# The packaged chart (what `helm package` ships, after .helmignore) renders
# the same as the directory: files/ (rules, dashboard) made it in.
pkg="$(mktemp -d)"
trap 'rm -rf "$pkg"' EXIT
if "$helm" package "$chart" -d "$pkg" >/dev/null &&
   cmp -s <("$helm" template sessiongrid "$pkg"/sessiongrid-*.tgz --set edge.cookie.secrets[0]=k0123456789abcdef --set metrics.grafanaDashboard.enabled=true) \
          <("$helm" template sessiongrid "$chart" --set edge.cookie.secrets[0]=k0123456789abcdef --set metrics.grafanaDashboard.enabled=true); then
  ok
else
  bad "the packaged chart renders differently from deploy/helm/sessiongrid"
fi

if cmp -s "$chart/files/rules/default.yaml" "$root/edge/rules/default.yaml"; then ok; else
  bad "deploy/helm/sessiongrid/files/rules/default.yaml differs from edge/rules/default.yaml (copy it: cp edge/rules/default.yaml deploy/helm/sessiongrid/files/rules/default.yaml)"
  diff "$root/edge/rules/default.yaml" "$chart/files/rules/default.yaml" | head -20 || true
fi

if node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$chart/files/dashboards/sessiongrid.json"; then ok; else
  bad "files/dashboards/sessiongrid.json is not JSON"; fi

echo "deploy.lint: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
