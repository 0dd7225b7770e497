#!/usr/bin/env bash
# Sets up this machine and runs accord's main job end to end:
#   1. builds accord and the catalog's Go builder image from pinned inputs;
#   2. runs the go-image pipeline hermetically on examples/hello (runc);
#   3. rebuilds independently: another runtime (crun) and workspace path,
#      and as an unprivileged user (rootless runc) with its own store and its
#      own builder image built from the same pinned inputs;
#   4. checks that every build produced bit-identical artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

install_deps
ensure_test_user
build_accord

work=$(mktemp -d /tmp/accord-demo.XXXXXX)
chmod 1777 "$work"
trap 'rm -rf "$work"' EXIT
store=${ACCORD_STORE:-$PWD/.cache/store}
src=$work/src
cp -r examples/hello "$src"
chmod -R a+rX "$src"
run_args=(--source "$src" --source-date-epoch 1700000000 -p name=hello -p image=accord.dev/examples/hello -o json)

log "accord doctor"
bin/accord doctor || true

log "building the Go builder image from pinned inputs"
bin/accord images build --store "$store"

log "build 1: primary (runc, root)"
bin/accord run "${run_args[@]}" --store "$store" --runtime runc --workdir "$work/a" > "$work/1.json"

log "build 2: independent rebuild (crun, root, another workspace path)"
bin/accord run "${run_args[@]}" --store "$store" --runtime crun --workdir "$work/b/deeper" > "$work/2.json"

log "build 3: independent rebuild as $ACCORD_TEST_USER (rootless runc, own store, own builder image)"
run_as_test_user "$PWD/bin/accord" images build --store "$work/user-store"
run_as_test_user "$PWD/bin/accord" run "${run_args[@]}" --store "$work/user-store" --runtime runc --workdir "$work/user-work" > "$work/3.json"

log "comparing artifact digests"
for i in 1 2 3; do
  jq -r '.artifacts[] | "\(.kind) \(.name) \(.digest)"' "$work/$i.json" | sort > "$work/$i.digests"
done
cat "$work/1.digests"
if cmp -s "$work/1.digests" "$work/2.digests" && cmp -s "$work/1.digests" "$work/3.digests"; then
  echo "3 of 3 builds agree: bit-identical artifacts (runc root, crun root, runc rootless)"
else
  echo "builds DISAGREE:" >&2
  diff "$work/1.digests" "$work/2.digests" >&2 || true
  diff "$work/1.digests" "$work/3.digests" >&2 || true
  exit 1
fi
