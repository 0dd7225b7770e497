#!/usr/bin/env bash
# Runs every benchmark side by side with the peer tools and prints the
# tables of docs/benchmarks.md. As root; builds what it needs (pinned, cached).
#   hack/bench/run.sh [step|hash|sbom|attest]...   (default: all)
set -euo pipefail
cd "$(dirname "$0")/../.."
. hack/lib.sh
install_deps
install_bench_tools
build_accord
store=${ACCORD_STORE:-$PWD/.cache/store}
bin/accord images build --store "$store" >/dev/null
which=${*:-step hash sbom attest}
work=$(mktemp -d /tmp/accord-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

for b in $which; do
  case $b in
  step)
    echo "## Per-step overhead"
    ACCORD_STORE=$store hack/bench/step-overhead.sh 30 5
    ;;
  hash)
    echo "## Hashing a large tree"
    tc=$(go env GOMODCACHE)/golang.org/toolchain@v0.0.1-go1.26.8.linux-amd64
    go mod download golang.org/toolchain@v0.0.1-go1.26.8.linux-amd64
    go run ./hack/bench hash "$tc"
    ;;
  sbom)
    echo "## SBOM of a Go binary"
    CGO_ENABLED=0 go build -C examples/hello -trimpath -o "$work/hello" .
    go run ./hack/bench sbom "$work/hello" bin/accord "$ACCORD_COSIGN"
    ;;
  attest)
    echo "## Whole run, attestation on vs off"
    ( umask 077; ACCORD_PASSWORD= bin/accord keys generate "$work/bench" >/dev/null )
    args=(run --source examples/hello -p name=hello -p image=accord.dev/examples/hello --store "$store" -o json)
    declare -a off on
    for r in 1 2 3; do
      t0=$(date +%s%N); bin/accord "${args[@]}" >/dev/null 2>&1; t1=$(date +%s%N)
      ACCORD_PASSWORD= bin/accord "${args[@]}" --key "$work/bench.key" >/dev/null 2>&1; t2=$(date +%s%N)
      off+=("$(( (t1 - t0) / 1000000 ))"); on+=("$(( (t2 - t1) / 1000000 ))")
    done
    mo=$(printf '%s\n' "${off[@]}" | sort -n | sed -n 2p); mn=$(printf '%s\n' "${on[@]}" | sort -n | sed -n 2p)
    echo "off: ${off[*]} ms; on: ${on[*]} ms; medians $mo / $mn ms; ratio on/off $(echo "scale=3; $mn / $mo" | bc)"
    ;;
  esac
done
