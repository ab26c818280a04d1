#!/usr/bin/env bash
# Regenerates the example packages, fails if that changed the committed code (the generator
# and the committed output disagree, or the output is not deterministic), then tests them.
set -euo pipefail
cd "$(dirname "$0")"
go generate ./...
if ! git diff --exit-code -- .; then
  echo "examples: go generate changed the generated code; commit the regenerated files" >&2
  exit 1
fi
untracked=$(git ls-files --others --exclude-standard -- '*.go')
if [ -n "$untracked" ]; then
  echo "examples: go generate produced files that are not committed:" >&2
  echo "$untracked" >&2
  exit 1
fi
go vet ./...
go test ./...
