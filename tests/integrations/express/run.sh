#!/usr/bin/env bash
# Runs the sessiongrid-express Jest suites (integrations/express/test)
# against the real binaries. The suites start what they need themselves
# (sessiongrid-server, sessiongrid-edge, express apps) on free loopback
# ports in temp dirs, and stop it all; this script only finds the binaries
# and installs the package's npm dependencies (npm ci from its lock file)
# when node_modules is missing or older than the lock file.
#
# Usage: tests/integrations/express/run.sh BUILD_DIR [jest args...]
#   e.g. tests/integrations/express/run.sh build edge
# SG_SERVER_BIN and SG_EDGE_BIN override BUILD_DIR's binaries.
# Exits with Jest's exit code.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PKG=$(cd "$HERE/../../../integrations/express" && pwd)
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [jest args...]" >&2
  exit 2
fi
BUILD_DIR=$(cd "$1" && pwd)
shift

SG_SERVER_BIN=${SG_SERVER_BIN:-$BUILD_DIR/server/sessiongrid-server}
SG_EDGE_BIN=${SG_EDGE_BIN:-$BUILD_DIR/edge/sessiongrid-edge}
for var in SG_SERVER_BIN SG_EDGE_BIN; do
  if [ ! -x "${!var}" ]; then
    echo "express: missing binary ${!var} (build it first: scripts/build)" >&2
    exit 1
  fi
  printf -v "$var" '%s' "$(readlink -f "${!var}")"
  export "${var?}"
done
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "express: $tool not found (scripts/setup installs it)" >&2
    exit 1
  fi
done

# One npm ci at a time (ctest runs the express tests in parallel).
exec 9>"${TMPDIR:-/tmp}/sessiongrid-express-npm-ci.lock"
flock 9
if [ ! -f "$PKG/node_modules/.package-lock.json" ] ||
   [ "$PKG/package-lock.json" -nt "$PKG/node_modules/.package-lock.json" ]; then
  (cd "$PKG" && npm ci --no-audit --no-fund --loglevel=error)
fi
flock -u 9

cd "$PKG"
exec npx --no -- jest --ci "$@"
