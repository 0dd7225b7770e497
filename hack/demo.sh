#!/usr/bin/env bash
# Sets up this machine and runs accord's main job end to end:
#   1. builds accord and the catalog's Go builder image from pinned inputs;
#   2. runs the go-image pipeline hermetically on examples/hello (runc) with
#      the primary builder's key: signed in-toto links, SLSA provenance,
#      SPDX SBOM and cosign signature stored beside the artifacts;
#   3. rebuilds independently: a validator with its own key and identity on
#      another runtime (crun) and workspace path, and an unprivileged user
#      (rootless runc) with its own store and its own builder image built
#      from the same pinned inputs;
#   4. checks that every build produced bit-identical artifacts;
#   5. verifies the image and the binary against a policy: signatures,
#      provenance subject, SBOM, the catalog's in-toto layout, and 2 distinct
#      trusted builders agreeing.
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

log "keys: primary builder, validator, catalog owner (cosign format)"
export ACCORD_PASSWORD=""
for k in primary validator owner; do bin/accord keys generate "$work/$k" >/dev/null; done

log "build 1: primary (runc, root), signed"
bin/accord run "${run_args[@]}" --store "$store" --runtime runc --workdir "$work/a" \
  --key "$work/primary.key" --builder-id https://accord.dev/builders/primary > "$work/1.json"

log "build 2: validator rebuild (crun, root, another workspace path), signed with its own key"
bin/accord run "${run_args[@]}" --store "$store" --runtime crun --workdir "$work/b/deeper" \
  --key "$work/validator.key" --builder-id https://accord.dev/builders/validator > "$work/2.json"

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

log "verifying against a policy: 2 distinct trusted builders, SBOM, in-toto layout"
bin/accord layout --key "$work/owner.key" --functionary "$work/primary.pub" --functionary "$work/validator.pub" --out "$work/root.layout" >/dev/null
cat > "$work/policy.yaml" <<POLICY
apiVersion: accord.dev/v1alpha1
kind: Policy
builders:
  - {id: https://accord.dev/builders/primary, key: primary.pub}
  - {id: https://accord.dev/builders/validator, key: validator.pub}
threshold: 2
pipelines: [$(jq -r .pipeline.digest "$work/1.json")]
sbom: required
layout: {file: root.layout, ownerKey: owner.pub}
POLICY
for name in $(jq -r '.artifacts[].name' "$work/1.json"); do
  bin/accord verify "$name" --store "$store" --policy "$work/policy.yaml"
done
bin/accord export accord.dev/examples/hello --store "$store" --dir "$work/release" --pub "$work/primary.pub" --layout "$work/root.layout" >/dev/null
echo "release bundle:"; ls "$work/release"
