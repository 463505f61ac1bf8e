#!/usr/bin/env bash
# Installs the pinned @web5/dwn-server + dwn-sdk-js client used by internal/dwnserver.
#
# node_modules lives in a cache keyed by the sha256 of package-lock.json, so a
# fresh clone on the same machine only needs a symlink (well under a second);
# `npm ci` (minutes: better-sqlite3 compiles) runs only when that cache entry is
# missing or was built for another Node ABI. Safe to run any number of times.
set -euo pipefail

say() { printf 'dwn-server install: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# Checked first, with shell builtins only, so a missing Node is the message you see.
command -v node >/dev/null 2>&1 || die "node is not on PATH; install Node.js 20+ (e.g. apt-get install nodejs npm) and re-run $0"
command -v npm >/dev/null 2>&1 || die "npm is not on PATH; install npm (Node.js 20+) and re-run $0"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
started=$(date +%s.%N)
elapsed() { awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2fs", e - s }'; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js $(node --version) is too old; @web5/dwn-server needs Node.js 20+"
[ -f "$here/package-lock.json" ] || die "$here/package-lock.json is missing; it is committed with package.json, restore it from git"

lock_hash=$(sha256sum "$here/package-lock.json" | cut -c1-16)
# better-sqlite3 and classic-level are native: a cache built for another Node ABI is unusable.
node_abi=$(node -p 'process.versions.modules')
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/dwnsync"
cache="$cache_root/dwn-server-$lock_hash"
stamp="$cache/.installed"
link="$here/node_modules"

mkdir -p "$cache_root"
exec 9>"$cache_root/dwn-server-$lock_hash.lock"
flock 9 # two clones installing at once share one npm ci

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "abi=$node_abi" ] && [ -d "$cache/node_modules/@web5/dwn-server" ]; then
  say "cache hit: $cache (lock $lock_hash, node ABI $node_abi)"
else
  say "cache miss: running npm ci in $cache (lock $lock_hash, node $(node --version), npm $(npm --version 2>/dev/null)); this takes a few minutes"
  for tool in python3 make g++; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing; better-sqlite3 compiles with node-gyp and needs python3, make and g++"
  done
  work="$cache.tmp.$$"
  rm -rf "$work"
  mkdir -p "$work"
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  ci_started=$(date +%s.%N)
  if ! (cd "$work" && npm ci --no-audit --no-fund --loglevel=warn) >"$work.log" 2>&1; then
    tail -n 40 "$work.log" >&2
    die "npm ci failed (full log: $work.log); check that the npm registry is reachable (npm config get registry)"
  fi
  (cd "$work" && node -e 'require("better-sqlite3")(":memory:").close()') ||
    die "better-sqlite3 did not build (see $work.log)"
  say "npm ci took $(awk -v s="$ci_started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1fs", e - s }')"
  echo "abi=$node_abi" >"$work/.installed"
  mv "$work.log" "$work/npm-ci.log" # kept for the curious: what npm built and warned about
  rm -rf "$cache"
  mv "$work" "$cache"
fi

if [ -L "$link" ]; then
  if [ "$(readlink "$link")" != "$cache/node_modules" ]; then
    rm "$link"
    ln -s "$cache/node_modules" "$link"
    say "relinked $link -> $cache/node_modules"
  fi
elif [ -e "$link" ]; then
  # A real directory from a manual `npm install`; the cached copy replaces it.
  say "replacing directory $link with a link to the cache"
  rm -rf "$link"
  ln -s "$cache/node_modules" "$link"
else
  ln -s "$cache/node_modules" "$link"
  say "linked $link -> $cache/node_modules"
fi

say "ready in $(elapsed) (@web5/dwn-server $(node -p 'require(process.argv[1]).version' "$cache/node_modules/@web5/dwn-server/package.json"))"
