#!/usr/bin/env bash
# Runs every benchmark side by side with the peer tools and prints the
# tables of docs/benchmarks.md. As root; builds what it needs (pinned, cached).
#   hack/bench/run.sh [step|hash|sbom|attest|verify|serve|runsc]...   (default: all)
set -euo pipefail
cd "$(dirname "$0")/../.."
. hack/lib.sh
install_deps
install_bench_tools
build_accord
store=${ACCORD_STORE:-$PWD/.cache/store}
bin/accord images build --store "$store" >/dev/null
which=${*:-step hash sbom attest verify serve runsc}
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
  verify)
    echo "## Full verify vs cosign verify-attestation (same image, same registry)"
    port=$(( 20000 + RANDOM % 20000 ))
    mkdir -p "$work/reg"
    printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' "$work/reg" "$port" > "$work/reg.yml"
    "$ACCORD_REGISTRY_BIN" serve "$work/reg.yml" >/dev/null 2>&1 & regpid=$!
    trap 'kill $regpid 2>/dev/null; rm -rf "$work"' EXIT
    for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
    repo=127.0.0.1:$port/accord
    export ACCORD_PASSWORD=""
    bin/accord images build --store "$repo" >/dev/null
    bin/accord builders init "$work/b" --validators 2 >/dev/null
    bin/accord keys generate "$work/owner" >/dev/null
    bin/accord run --source examples/hello --source-date-epoch 1700000000 -p name=hello -p image=accord.dev/examples/hello \
      --store "$repo" --builders 3 --builders-file "$work/b/builders.yaml" -o json > "$work/c.json" 2>/dev/null
    digest=$(jq -r '.builders[0].artifacts[] | select(.kind == "image") | .digest' "$work/c.json")
    bin/accord layout --key "$work/owner.key" --functionary "$work/b/primary.pub" --functionary "$work/b/validator-1.pub" --functionary "$work/b/validator-2.pub" --out "$work/root.layout" >/dev/null
    cat > "$work/policy.yaml" <<POLICY
apiVersion: accord.dev/v1alpha1
kind: Policy
builders:
  - {id: https://accord.dev/builders/primary, key: b/primary.pub}
  - {id: https://accord.dev/builders/validator-1, key: b/validator-1.pub}
  - {id: https://accord.dev/builders/validator-2, key: b/validator-2.pub}
threshold: 2
pipelines: [$(jq -r '.builders[0].pipeline.digest' "$work/c.json")]
sbom: required
layout: {file: root.layout, ownerKey: owner.pub}
POLICY
    av=(bin/accord verify "accord.dev/examples/hello@$digest" --store "$repo" --policy "$work/policy.yaml" -o json)
    cv=("$ACCORD_COSIGN" verify-attestation --key "$work/b/primary.pub" --type slsaprovenance1 --insecure-ignore-tlog=true --allow-insecure-registry "$repo@$digest")
    "${av[@]}" > "$work/v.json" || { cat "$work/v.json"; exit 1; }
    SIGSTORE_NO_CACHE=1 TUF_ROOT=$work/tuf "${cv[@]}" >/dev/null 2>&1 || { echo "cosign verify-attestation failed" >&2; exit 1; }
    # ACCORD_BENCH_BASELINE=BIN adds another accord binary (say, one built
    # from main) to the same rounds; ACCORD_BENCH_ROUNDS (odd) sets them.
    rounds=${ACCORD_BENCH_ROUNDS:-11}
    base=${ACCORD_BENCH_BASELINE:-}
    declare -a ta tc tb
    for r in $(seq "$rounds"); do
      if [ -n "$base" ]; then
        t0=$(date +%s%N); "$base" "${av[@]:1}" >/dev/null; t1=$(date +%s%N)
        tb+=("$(( (t1 - t0) / 1000000 ))")
      fi
      t0=$(date +%s%N); "${av[@]}" >/dev/null; t1=$(date +%s%N)
      TUF_ROOT=$work/tuf "${cv[@]}" >/dev/null 2>&1; t2=$(date +%s%N)
      ta+=("$(( (t1 - t0) / 1000000 ))"); tc+=("$(( (t2 - t1) / 1000000 ))")
    done
    mid=$(( (rounds + 1) / 2 ))
    ma=$(printf '%s\n' "${ta[@]}" | sort -n | sed -n ${mid}p); mc=$(printf '%s\n' "${tc[@]}" | sort -n | sed -n ${mid}p)
    echo "checks: $(jq -r '[.checks[].name] | join(", ")' "$work/v.json")"
    echo "accord verify: ${ta[*]} ms; cosign verify-attestation: ${tc[*]} ms"
    echo "medians: accord $ma ms, cosign $mc ms; ratio accord/cosign $(echo "scale=3; $ma / $mc" | bc)"
    if [ -n "$base" ]; then
      mb=$(printf '%s\n' "${tb[@]}" | sort -n | sed -n ${mid}p)
      echo "baseline $base: ${tb[*]} ms; median $mb ms, ratio baseline/cosign $(echo "scale=3; $mb / $mc" | bc)"
    fi
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    /usr/bin/time -f "accord verify max RSS %M KB" "${av[@]}" >/dev/null
    TUF_ROOT=$work/tuf /usr/bin/time -f "cosign verify-attestation max RSS %M KB" "${cv[@]}" 2>&1 >/dev/null | tail -1
    ;;
  serve)
    echo "## Webhook intake: verified, durably queued deliveries per second"
    hack/bench/serve.sh
    ;;
  runsc)
    echo "## gVisor (runsc, platform ptrace) vs runc"
    ACCORD_STORE=$store hack/bench/runsc.sh "${ACCORD_BENCH_ROUNDS:-3}"
    ;;
  esac
done
