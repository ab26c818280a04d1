#!/usr/bin/env bash
# A smoke run of every `go test -fuzz` target: each fuzzes from its committed corpus for
# RFC_FUZZ_SMOKE_TIME (default 2s), and a crash fails the run. With -v, or
# RFC_FUZZ_SMOKE_REPORT=1, it prints each target's executions per second.
# The differential fuzzer's smoke run is a plain test (codegen/cuda TestDifferentialFuzz),
# which `go test ./...` runs; docs/FUZZING.md has the long runs.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${RFC_FUZZ_SMOKE_TIME:-2s}
# Every target of the module: a new Fuzz function is found here without editing the list.
targets=$(grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "./$(dirname "${f#./}") $name"
  done
done | sort)
start=$SECONDS
# Go 1.26's fuzz coordinator can report a bare "context deadline exceeded" when -fuzztime ends
# while a worker is mid-call (go.dev/issue/75804, fixed in Go 1.27): no input fails, none is
# written. Such a run is retried (twice at most); anything else that fails, fails.
fuzz_once() {
  go test "$1" -run '^$' -fuzz "^${2}\$" -fuzztime "$fuzztime" 2>&1 </dev/null
}
is_deadline_race() {
  grep -q 'context deadline exceeded' <<< "$1" &&
    ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' <<< "$1"
}
while read -r pkg name; do
  tries=0
  until out=$(fuzz_once "$pkg" "$name"); do
    tries=$((tries + 1))
    if is_deadline_race "$out" && [ "$tries" -lt 3 ]; then
      echo "fuzz smoke: $pkg $name hit Go's fuzztime deadline race (go.dev/issue/75804), again"
      continue
    fi
    echo "$out"
    echo "fuzz smoke: $pkg $name failed"
    exit 1
  done
  if [ "${RFC_FUZZ_SMOKE_REPORT:-}" != "" ] || [ "${1:-}" = "-v" ]; then
    # The last progress line: elapsed time and executions.
    line=$(echo "$out" | grep -E 'fuzz: elapsed: [0-9]+s, execs' | tail -1 || true)
    execs=$(echo "$line" | sed -E 's/.*execs: ([0-9]+).*/\1/')
    secs=$(echo "$line" | sed -E 's/.*elapsed: ([0-9]+)s.*/\1/')
    echo "$pkg $name: ${execs:-?} execs in ${secs:-?}s ($(( ${execs:-0} / (${secs:-0} > 0 ? ${secs:-1} : 1) ))/s)"
  fi
done <<< "$targets"
echo "fuzz smoke: $(echo "$targets" | wc -l) targets in $((SECONDS - start))s"
