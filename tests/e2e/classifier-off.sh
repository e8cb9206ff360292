#!/usr/bin/env bash
# Proves the bypass suites can fail: runs them against the seed's broken
# app (sessiongrid-demo-app --session-on-every-request) behind an edge whose
# classifier is switched off (--classifier-mode=shadow: decisions counted,
# nothing bypassed) and passes only if exactly the bypass tests fail — the
# ones that, with the classifier on, pass against the same app (ctest
# e2e.seed_suite.broken_app, e2e.sessions.broken_app).
#
# Usage: tests/e2e/classifier-off.sh BUILD_DIR
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
OUT=$(mktemp -d "${TMPDIR:-/tmp}/sg-e2e-off.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

set +e
E2E_EDGE_FLAGS=--classifier-mode=shadow \
  E2E_DEMO_FLAGS=--session-on-every-request \
  "$HERE/run.sh" "$1" session-bypass edge-sessions \
  --json --outputFile="$OUT/results.json" >"$OUT/run.log" 2>&1
rc=$?
set -e
if [ ! -s "$OUT/results.json" ]; then
  cat "$OUT/run.log" >&2
  echo "classifier-off: jest wrote no results (exit $rc)" >&2
  exit 1
fi

node - "$OUT/results.json" <<'JS'
const fs = require('fs');
const results = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
// Every test that checks the classifier's effect; with it off they must fail.
const expected = [
  'Session Bypass E2E Tests Static Asset Requests should not set session cookie for JS files',
  'Session Bypass E2E Tests Static Asset Requests should not set session cookie for CSS files',
  'Session Bypass E2E Tests Static Asset Requests should not set session cookie for images',
  'Session Bypass E2E Tests Internal Request Detection should skip session for axios requests',
  'Session Bypass E2E Tests Internal Request Detection should skip session for curl requests',
  'Session Bypass E2E Tests Internal Request Detection should skip session for empty User-Agent',
  'Session Bypass E2E Tests Bot Detection should skip session for Googlebot',
  'Session Bypass E2E Tests Bot Detection should skip session for Bingbot',
  'Session Bypass E2E Tests Bot Detection should skip session for Slackbot',
  'Session Bypass E2E Tests Bot Detection should skip session for facebookexternalhit',
  'Session Bypass E2E Tests Memory Stability should not accumulate sessions over time',
  'sessions through the edge bots, probes and scripts get no cookie and cost no session call',
  "sessions through the edge the app's own leaked session cookie is stripped from bypassed responses",
  'sessions through the edge skip ratio >= 95% for a realistic production mix',
];
const failed = [];
const passed = [];
for (const file of results.testResults) {
  for (const t of file.assertionResults) {
    const name = [...t.ancestorTitles, t.title].join(' ');
    (t.status === 'failed' ? failed : passed).push(name);
  }
}
const missing = expected.filter((n) => !failed.includes(n));
const extra = failed.filter((n) => !expected.includes(n));
console.log(`classifier off: ${failed.length} failed, ${passed.length} passed`);
for (const n of missing) console.log(`  passed with the classifier off: ${n}`);
for (const n of extra) console.log(`  failed for another reason: ${n}`);
process.exit(missing.length === 0 && extra.length === 0 ? 0 : 1);
JS
