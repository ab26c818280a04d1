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
while read -r pkg name; do
  out=$(go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" 2>&1 </dev/null) || {
    echo "$out"
    echo "fuzz smoke: $pkg $name failed"
    exit 1
  }
  if [ "${RFC_FUZZ_SMOKE_REPORT:-}" != "" ] || [ "${1:-}" = "-v" ]; then
    # The last progress line: elapsed time and executions.
    line=$(echo "$out" | grep -E 'fuzz: elapsed: [0-9]+s, execs' | tail -1 || true)
    execs=$(echo "$line" | sed -E 's/.*execs: ([0-9]+).*/\1/')
    secs=$(echo "$line" | sed -E 's/.*elapsed: ([0-9]+)s.*/\1/')
    echo "$pkg $name: ${execs:-?} execs in ${secs:-?}s ($(( ${execs:-0} / (${secs:-0} > 0 ? ${secs:-1} : 1) ))/s)"
  fi
done <<< "$targets"
echo "fuzz smoke: $(echo "$targets" | wc -l) targets in $((SECONDS - start))s"
