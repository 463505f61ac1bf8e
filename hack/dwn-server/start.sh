#!/usr/bin/env bash
# Runs one @web5/dwn-server in the foreground, on 127.0.0.1:PORT, with its state in DATADIR.
#
#   hack/dwn-server/start.sh PORT DATADIR
#
# DATADIR becomes the working directory (the server keeps its DID resolver cache
# in ./RESOLVERCACHE, so two servers must never share one) and holds dwn.sqlite.
# The process is exec'd: SIGTERM to this PID stops the server gracefully (exit 0).
# Extra environment is passed through (e.g. DWN_SERVER_LOG_LEVEL=info to see requests).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage="usage: $0 PORT DATADIR"
port="${1:?$usage}"
datadir="${2:?$usage}"

[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] ||
  { echo "start.sh: PORT must be a number in 1..65535, got '$port'" >&2; exit 2; }
main="$here/node_modules/@web5/dwn-server/dist/esm/src/main.js"
[ -f "$main" ] ||
  { echo "start.sh: @web5/dwn-server is not installed: run hack/dwn-server/install.sh" >&2; exit 2; }

# Probe before starting: a server whose port is taken does not exit on its own
# (loopback.cjs also exits with 98 on EADDRINUSE, which closes the race after this check).
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "start.sh: 127.0.0.1:$port is already in use; pick another port" >&2
  exit 98
fi

mkdir -p "$datadir"
datadir="$(cd "$datadir" && pwd)"
db="sqlite://$datadir/dwn.sqlite"

# Never set DWN_STORAGE: it also turns on tenant registration (every tenant gets 401).
unset DWN_STORAGE DWN_REGISTRATION_STORE_URL
export DS_PORT="$port"
export DWN_BASE_URL="http://127.0.0.1:$port"
export DWN_STORAGE_MESSAGES="$db" DWN_STORAGE_DATA="$db" DWN_STORAGE_EVENTS="$db" DWN_STORAGE_RESUMABLE_TASKS="$db"
export DWN_SERVER_LOG_LEVEL="${DWN_SERVER_LOG_LEVEL:-warn}"
export DWN_SERVER_PACKAGE_JSON="$here/node_modules/@web5/dwn-server/package.json"
# A message travels in the dwn-request header; Node's 16 KiB default would cap it (HTTP 431).
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--max-http-header-size=1048576"

cd "$datadir"
exec node --require "$here/loopback.cjs" "$main"
