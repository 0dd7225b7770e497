#!/usr/bin/env bash
# Per-step overhead of accord vs the bare OCI runtime, on the same bundle.
#
# accord: one task of N trivial steps (/bin/true), whole `accord run` wall
# time (catalog load, rootfs check, bundle + config.json, log capture,
# result reading included) divided by N.
# bare:   `runc run` (and crun, the way accord invokes it) of a bundle that
# accord itself wrote (--keep), N times in a row.
# Rounds alternate the three so machine noise hits all alike; medians.
#
# Usage: hack/bench/step-overhead.sh [N] [ROUNDS]   (as root; needs bin/accord)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-30}
ROUNDS=${2:-5}
[ -x bin/accord ] || { echo "build bin/accord first (hack/demo.sh does)" >&2; exit 2; }
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
} > "$work/bench.yaml"

# A kept bundle for the bare runs.
bin/accord run --pipeline "$work/bench.yaml" --store "$store" --workdir "$work/keep" --keep -o json >/dev/null
bundle=$(ls -d "$work"/keep/bundles/*-t-0 | head -1)

now() { date +%s%N; }
ms_per_step() { echo "scale=2; ($2 - $1) / 1000000 / $N" | bc; }

declare -a A R C
for r in $(seq 1 "$ROUNDS"); do
  t0=$(now)
  bin/accord run --pipeline "$work/bench.yaml" --store "$store" --workdir "$work/acc" -o json >/dev/null
  t1=$(now); A+=("$(ms_per_step "$t0" "$t1")")

  t0=$(now)
  for i in $(seq 1 "$N"); do runc --root "$work/rs" run --bundle "$bundle" "b-$r-$i" >/dev/null; done
  t1=$(now); R+=("$(ms_per_step "$t0" "$t1")")

  t0=$(now)
  for i in $(seq 1 "$N"); do
    unshare --mount --propagation private sh -c 'mount -t cgroup2 none /sys/fs/cgroup; exec "$@"' crun \
      crun --cgroup-manager=disabled --root "$work/cs" run --bundle "$bundle" "c-$r-$i" >/dev/null
  done
  t1=$(now); C+=("$(ms_per_step "$t0" "$t1")")
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ma=$(median "${A[@]}"); mr=$(median "${R[@]}"); mc=$(median "${C[@]}")
echo "steps per run: $N, rounds: $ROUNDS"
echo "accord (runc): ${A[*]} ms/step -> median $ma"
echo "bare runc:     ${R[*]} ms/step -> median $mr"
echo "bare crun:     ${C[*]} ms/step -> median $mc"
echo "ratio accord/runc: $(echo "scale=3; $ma / $mr" | bc)"
echo "ratio accord/crun: $(echo "scale=3; $ma / $mc" | bc)"
