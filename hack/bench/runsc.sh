#!/usr/bin/env bash
# What gVisor (runsc, platform ptrace) costs against runc, on the same
# builds, rounds alternating so machine noise hits both alike; medians.
#
# 1. Per step: one task of N trivial steps (/bin/true), whole `accord run`
#    wall time divided by N.
# 2. The example build (examples/hello: fetch, go mod download, go build,
#    image), whole `accord run` wall time and each task's seconds. Every
#    round checks that runsc's artifact digests equal runc's.
#
# Usage: hack/bench/runsc.sh [ROUNDS] [N]   (as root; needs bin/accord)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
N=${2:-20}
[ -x bin/accord ] || { echo "build bin/accord first (hack/demo.sh does)" >&2; exit 2; }
command -v runsc >/dev/null || { echo "runsc is not installed: apt-get install runsc" >&2; exit 2; }
work=$(mktemp -d /tmp/accord-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
store=${ACCORD_STORE:-$PWD/.cache/store}
img=$(bin/accord images build --store "$store" | tail -1)

{
  echo "apiVersion: tekton.dev/v1"
  echo "kind: Pipeline"
  echo "metadata: {name: bench}"
  echo "spec:"
  echo "  tasks:"
  echo "    - name: t"
  echo "      taskSpec:"
  echo "        steps:"
  for i in $(seq 1 "$N"); do echo "          - {name: s$i, image: \"$img\", command: [/bin/true]}"; done
} > "$work/steps.yaml"

now() { date +%s%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { echo "scale=2; $1 / $2" | bc; }

example=(run --source examples/hello --source-date-epoch 1700000000 -p name=hello -p image=accord.dev/examples/hello --store "$store" -o json)
# Warm the rootfs cache and the Go module download once, outside the rounds.
bin/accord "${example[@]}" --runtime runc >/dev/null

declare -A step whole task
for r in $(seq 1 "$ROUNDS"); do
  for rt in runc runsc; do
    t0=$(now)
    bin/accord run --pipeline "$work/steps.yaml" --store "$store" --runtime "$rt" -o json >/dev/null
    t1=$(now)
    step[$rt]+="$(echo "scale=1; ($t1 - $t0) / 1000000 / $N" | bc) "
    t0=$(now)
    bin/accord "${example[@]}" --runtime "$rt" > "$work/$rt.json"
    t1=$(now)
    whole[$rt]+="$(( (t1 - t0) / 1000000 )) "
    for t in fetch deps build image; do
      task[$rt.$t]+="$(jq -r --arg t "$t" '.tasks[] | select(.name == $t) | .seconds' "$work/$rt.json") "
    done
  done
  a=$(jq -c '[.artifacts[] | {name, digest}]' "$work/runc.json"); b=$(jq -c '[.artifacts[] | {name, digest}]' "$work/runsc.json")
  [ "$a" = "$b" ] || { echo "round $r: runsc's artifacts differ from runc's: $a vs $b" >&2; exit 1; }
done

echo "rounds: $ROUNDS; artifacts identical under runc and runsc in every round: $(jq -r '[.artifacts[].digest] | join(" ")' "$work/runc.json")"
echo
echo "| | runc | runsc | runsc/runc |"
echo "|---|---|---|---|"
# shellcheck disable=SC2086
{
  mr=$(median ${step[runc]}); ms=$(median ${step[runsc]})
  echo "| trivial step, ms/step ($N steps) | $mr | $ms | $(ratio "$ms" "$mr")x |"
  mr=$(median ${whole[runc]}); ms=$(median ${whole[runsc]})
  echo "| examples/hello, whole run, ms | $mr | $ms | $(ratio "$ms" "$mr")x |"
  for t in fetch deps build image; do
    mr=$(median ${task[runc.$t]}); ms=$(median ${task[runsc.$t]})
    echo "| task $t, s | $mr | $ms | $(ratio "$ms" "$mr")x |"
  done
}
echo
echo "raw: step runc ${step[runc]}/ runsc ${step[runsc]}; whole runc ${whole[runc]}/ runsc ${whole[runsc]}"
for t in fetch deps build image; do echo "raw: $t runc ${task[runc.$t]}/ runsc ${task[runsc.$t]}"; done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
