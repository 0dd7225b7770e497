#!/usr/bin/env bash
# Rebuilds the Go builder image from its pinned inputs and points every
# catalog task at its digest. Run after changing internal/images.
set -euo pipefail
cd "$(dirname "$0")/.."
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
ref=$(go run ./cmd/accord images build --store "$store" | tail -1)
digest=${ref#*@}
sed -i -E "s#(accord\.dev/builders/go@)sha256:[0-9a-f]{64}#\1${digest}#g" pipelines/catalog/*.yaml cmd/accord/testdata/*.yaml
echo "catalog now pins accord.dev/builders/go@${digest}"
