#!/usr/bin/env bash
# Runs the test suite repeatedly while busy loops load the CPU, to find tests that pass alone
# but fail on a loaded machine (a race with a timer, a deadline too tight). Called by
# `make test-stress`, which first installs the same tools and servers as `make test`.
#
# Knobs (environment):
#   STRESS_PKGS     packages to test                     (default ./...)
#   STRESS_COUNT    runs of each test (go test -count)   (default 3)
#   STRESS_RUN      only tests matching this -run regexp (default: all)
#   STRESS_SKIP     leave out tests matching this -skip regexp (e.g. one known, tracked failure)
#   STRESS_HEAVY    tests run once, after the repeated pass (default: the kill -9 tests, which
#                   already kill and restart the process six times per run and take minutes)
#   STRESS_HOGS     busy loops beside the tests          (default: one per CPU)
#   STRESS_MINUTES  bound on the whole run; the hogs stop by themselves then too (default 90)
#
# Prints each package's result as it finishes and, at the end, every failing test with its
# package and how many of its runs failed. Exits non-zero if any test or package failed or the
# time bound was hit. The full `go test -json` log stays in bin/test-stress/.
set -euo pipefail
export GOTOOLCHAIN=local
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

pkgs="${STRESS_PKGS:-./...}"
count="${STRESS_COUNT:-3}"
hogs="${STRESS_HOGS:-$(nproc)}"
minutes="${STRESS_MINUTES:-90}"
heavy="${STRESS_HEAVY-Kill9}"
run_args=()
if [[ -n "${STRESS_RUN:-}" ]]; then run_args+=(-run "$STRESS_RUN"); fi
skip="${STRESS_SKIP:-}"
if [[ -n "$heavy" ]]; then skip="${skip:+$skip|}$heavy"; fi
if [[ -n "$skip" ]]; then run_args+=(-skip "$skip"); fi
heavy_args=()
if [[ -n "$heavy" && -z "${STRESS_RUN:-}" ]]; then
  heavy_args=(-run "$heavy")
  if [[ -n "${STRESS_SKIP:-}" ]]; then heavy_args+=(-skip "$STRESS_SKIP"); fi
fi

mkdir -p bin/test-stress
log="bin/test-stress/$(date -u +%Y%m%dT%H%M%SZ).json"
: >"$log" # exists before the progress reader opens it

# The CPU hogs: plain busy loops, each ended by `timeout` at the bound even if this script is
# killed, and stopped by id as soon as the tests finish.
hog_pids=()
stop_hogs() {
  local pid
  for pid in "${hog_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop_hogs EXIT
for ((i = 0; i < hogs; i++)); do
  timeout "${minutes}m" bash -c 'while :; do :; done' &
  hog_pids+=("$!")
done

echo "test-stress: go test -count=$count ${run_args[*]} $pkgs beside $hogs CPU hog(s), bounded at ${minutes}m; log $log"
if ((${#heavy_args[@]})); then echo "test-stress: then once: go test -count=1 ${heavy_args[*]} $pkgs"; fi
start=$SECONDS
status=0
# run_pass COUNT ARGS...: one go test over $pkgs, appended to the log, within what is left of the
# bound. -timeout per test binary a little under that, so a hung package reports its stacks
# before the outer timeout kills everything.
run_pass() {
  local n="$1" left pass_status=0
  shift
  left=$((minutes - (SECONDS - start) / 60))
  if ((left < 1)); then return 124; fi
  local from=$(($(stat -c %s "$log") + 1)) # this pass's lines only
  timeout "${left}m" go test -json -count="$n" -timeout "$((left > 5 ? left - 2 : left))m" \
    "$@" $pkgs >>"$log" 2>&1 &
  local go_pid=$!
  # Live progress: one line per package as it finishes.
  tail -c "+$from" --pid="$go_pid" -f "$log" | awk '
    /"Action":"(pass|fail|skip)"/ && !/"Test":/ {
      match($0, /"Action":"[a-z]+"/); action = substr($0, RSTART + 10, RLENGTH - 11)
      match($0, /"Package":"[^"]+"/); pkg = substr($0, RSTART + 11, RLENGTH - 12)
      el = ""; if (match($0, /"Elapsed":[0-9.]+/)) el = substr($0, RSTART + 10, RLENGTH - 10) "s"
      printf "  %-4s %s %s\n", (action == "pass" ? "ok" : action == "skip" ? "-" : "FAIL"), pkg, el; fflush()
    }' || true
  wait "$go_pid" || pass_status=$?
  return "$pass_status"
}
run_pass "$count" "${run_args[@]}" || status=$?
if ((${#heavy_args[@]})) && [[ $status -ne 124 ]]; then
  echo "test-stress: the heavy tests, once each"
  run_pass 1 "${heavy_args[@]}" || { s=$?; if [[ $status -eq 0 || $s -eq 124 ]]; then status=$s; fi; }
fi
elapsed=$((SECONDS - start))
stop_hogs

# Every failing test, innermost only (a failing subtest also fails its parent), with the
# number of its runs that failed; packages that failed without a failing test (a build error,
# a panic, the timeout) are listed too.
summary="$(awk -v count="$count" '
  /"Action":"fail"/ {
    match($0, /"Package":"[^"]+"/); pkg = substr($0, RSTART + 11, RLENGTH - 12)
    if (match($0, /"Test":"[^"]+"/)) { t = substr($0, RSTART + 8, RLENGTH - 9); fails[pkg "\t" t]++ }
    else pkgfail[pkg] = 1
  }
  END {
    for (k in fails) {
      split(k, p, "\t"); inner = 0
      for (o in fails) { split(o, q, "\t"); if (q[1] == p[1] && index(q[2], p[2] "/") == 1) inner = 1 }
      if (!inner) { printf "FAIL %s %s (failed %d time(s); repeated tests ran %d times, heavy ones once)\n", p[1], p[2], fails[k], count; haspkg[p[1]] = 1 }
    }
    for (pkg in pkgfail) if (!(pkg in haspkg)) printf "FAIL %s (package failed outside any test: build error, panic or timeout; see the log)\n", pkg
  }' "$log" | sort)"

echo "test-stress: finished in $((elapsed / 60))m$((elapsed % 60))s (exit $status)"
if [[ -n "$summary" ]]; then
  echo "$summary"
  echo "test-stress: failures above; each test's output is in $log (grep its name)"
  exit 1
fi
if [[ $status -eq 124 ]]; then
  echo "test-stress: FAIL: the run did not finish within ${minutes}m"
  exit 1
fi
if [[ $status -ne 0 ]]; then
  echo "test-stress: FAIL: go test exited $status without a failing test; see $log"
  exit 1
fi
echo "test-stress: PASS, every test passed $count times under load"
