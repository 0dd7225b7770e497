#!/usr/bin/env bash
# Sets up this machine and runs all of accord's tests: unit and integration
# tests as root (real runc and crun, real git, in-process and Debian
# registries), the end-to-end determinism test, interop with the real cosign
# and in-toto-golang CLIs, then the sandbox and engine tests again as an
# unprivileged user (rootless runc in a user namespace), then short fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

install_deps
ensure_test_user
# The real cosign and in-toto-golang CLIs, policy-controller's
# policy-tester and the Kyverno CLI (pinned, cached by version) and Debian's
# docker-registry, for the interop and admission tests (ACCORD_COSIGN,
# ACCORD_INTOTO, ACCORD_POLICY_TESTER, ACCORD_KYVERNO, ACCORD_REGISTRY_BIN).
install_interop_tools

log "go vet"
go vet ./...

log "go test (root)"
# The status page's test drives the real headless Chromium: here it must
# not skip.
export ACCORD_REQUIRE_CHROMIUM=1
go test -count=1 -timeout 30m ./...

log "go test (rootless, as $ACCORD_TEST_USER)"
tbin=$(mktemp -d /tmp/accord-rootless-tests.XXXXXX)
trap 'rm -rf "$tbin"' EXIT
chmod 0755 "$tbin"
for pkg in ./internal/sandbox ./internal/engine/local; do
  name=$(basename "$pkg")
  go test -c -o "$tbin/$name.test" "$pkg"
  chmod 0755 "$tbin/$name.test"
done
for t in "$tbin"/*.test; do
  echo "--- $(basename "$t") as $ACCORD_TEST_USER"
  run_as_test_user "$t" -test.count=1 -test.timeout=15m
done

log "fuzzing (short)"
# Budgets are execution counts, not durations: with go1.26 a duration races
# the fuzzing coordinator's own deadline ("context deadline exceeded" with
# no failing input, go.dev/issue/75804, fixed in Go 1.27).
go test -run='^$' -fuzz=FuzzParse -fuzztime=20000x ./pipelines
go test -run='^$' -fuzz=FuzzParseStatement -fuzztime=30000x ./attest
go test -run='^$' -fuzz=FuzzParseEnvelope -fuzztime=30000x ./attest
go test -run='^$' -fuzz=FuzzReadLinksBundle -fuzztime=30000x ./attest
go test -run='^$' -fuzz=FuzzParseJSON -fuzztime=100000x ./sbom
go test -run='^$' -fuzz=FuzzParsePolicy -fuzztime=30000x ./verify
go test -run='^$' -fuzz=FuzzParse -fuzztime=50000x ./internal/builders
go test -run='^$' -fuzz=FuzzFromFile -fuzztime=100000x ./internal/divergence
go test -run='^$' -fuzz=FuzzSourceURI -fuzztime=100000x ./internal/source
go test -run='^$' -fuzz=FuzzDecide -fuzztime=100000x ./internal/consensus
go test -run='^$' -fuzz='^FuzzHandler$' -fuzztime=30000x ./internal/trigger
go test -run='^$' -fuzz='^FuzzDecide$' -fuzztime=30000x ./internal/trigger
go test -run='^$' -fuzz='^FuzzJSONObject$' -fuzztime=100000x ./internal/trigger
go test -run='^$' -fuzz='^FuzzBody$' -fuzztime=30000x ./internal/queue
go test -run='^$' -fuzz='^FuzzPending$' -fuzztime=30000x ./internal/queue
go test -run='^$' -fuzz='^FuzzParseGUID$' -fuzztime=50000x ./internal/queue
go test -run='^$' -fuzz='^FuzzParse$' -fuzztime=20000x ./internal/serve/config
go test -run='^$' -fuzz='^FuzzMarkdown$' -fuzztime=50000x ./internal/ghapi
go test -run='^$' -fuzz='^FuzzEscape$' -fuzztime=20000x ./internal/serve/web
go test -run='^$' -fuzz='^FuzzParseMirror$' -fuzztime=30000x ./internal/pull
