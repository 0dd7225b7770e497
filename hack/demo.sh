#!/usr/bin/env bash
# Sets up this machine and runs accord's main job end to end:
#   1. builds accord and the catalog's Go builder image from pinned inputs;
#   2. writes a builders file: a primary (runc) and two validators (crun)
#      that differ from it in workspace path, hostname, uid/gid, umask,
#      timezone, CPU count and environment order, each with its own key;
#   3. builds examples/hello from git (exact commit) with all three: each
#      step hermetic and linked in-toto, each builder signing its own SLSA
#      provenance and SPDX SBOM; their digests agree (consensus), so the
#      artifacts are marked released;
#   4. an independent validator rebuilds the image from its stored provenance
#      alone (source URI + commit, pipeline digest, params) and agrees;
#   5. an unprivileged user rebuilds with rootless runc, its own store and its
#      own builder image built from the same pinned inputs: same digests;
#   6. verifies the image and the binary against a policy: signatures,
#      provenance subject, allowed source/ref and pipeline, the catalog's
#      in-toto layout, the SBOM, and 2 distinct trusted builders agreeing;
#   7. writes a release bundle;
#   8. with a registry store (Debian's docker-registry on 127.0.0.1), the
#      image goes where its name says: IMAGE_URL=127.0.0.1:PORT/team/hello:v1
#      is pushed to team/hello with its signature and attestations beside
#      it, the run prints its pullable reference, the real cosign CLI and
#      accord verify accept it by that reference, and a name in a registry
#      the store may not push to is refused before anything runs.
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
export ACCORD_PASSWORD=""

log "accord doctor"
bin/accord doctor || true

log "building the Go builder image from pinned inputs"
bin/accord images build --store "$store"

log "the source: examples/hello committed to a git repository"
repo=$work/hello.git
git init -q -b main "$work/hello-work"
cp -r examples/hello/. "$work/hello-work/"
git -C "$work/hello-work" add -A
GIT_AUTHOR_DATE=@1700000000 GIT_COMMITTER_DATE=@1700000000 \
  git -C "$work/hello-work" -c user.name=demo -c user.email=demo@accord.invalid commit -q -m "hello"
git clone -q --bare "$work/hello-work" "$repo"
chmod -R a+rX "$repo"
run_args=(--source "file://$repo" --revision main -p name=hello -p image=accord.dev/examples/hello)

log "builders: a primary and two deliberately different validators, one key each"
bin/accord builders init "$work/builders" --validators 2
bin/accord builders check "$work/builders/builders.yaml"
bin/accord keys generate "$work/owner" >/dev/null

log "build + consensus: primary and 2 validators build the same commit"
bin/accord run "${run_args[@]}" --store "$store" --builders 3 --builders-file "$work/builders/builders.yaml" -o json > "$work/consensus.json"
jq -r '.artifacts[] | .name as $n | .digests | to_entries[] | "\($n)  \(.key)  \(.value)"' "$work/consensus.json"
jq -e '.consensus' "$work/consensus.json" >/dev/null || { echo "no consensus" >&2; exit 1; }
echo "consensus: $(jq -r '.agreeing | join(", ")' "$work/consensus.json") produced bit-identical artifacts; released"
image=$(jq -r '.builders[0].artifacts[] | select(.kind == "image") | "\(.name)@\(.digest)"' "$work/consensus.json")

log "independent rebuild from the stored provenance alone (its own key, default validator profile)"
bin/accord keys generate "$work/independent" >/dev/null
(cd "$work" && "$OLDPWD/bin/accord" rebuild "$image" --store "$store" --policy builders/policy.yaml --from https://accord.dev/builders/primary --builder independent --key "$work/independent.key")

log "rootless rebuild as $ACCORD_TEST_USER (own store, own builder image from the same pinned inputs)"
# git refuses repositories owned by someone else: the user gets its own copy.
cp -r "$repo" "$work/hello-user.git" && chown -R "$ACCORD_TEST_USER" "$work/hello-user.git"
run_as_test_user "$PWD/bin/accord" images build --store "$work/user-store" >/dev/null
run_as_test_user "$PWD/bin/accord" run --source "file://$work/hello-user.git" "${run_args[@]:2}" --store "$work/user-store" --runtime runc --workdir "$work/user-work" -o json > "$work/rootless.json"
jq -r '.artifacts[] | "\(.name) \(.digest)"' "$work/rootless.json" | sort > "$work/rootless.digests"
jq -r '.builders[0].artifacts[] | "\(.name) \(.digest)"' "$work/consensus.json" | sort > "$work/primary.digests"
if cmp -s "$work/primary.digests" "$work/rootless.digests"; then
  echo "rootless rebuild agrees: bit-identical artifacts"
else
  echo "rootless rebuild DISAGREES:" >&2; diff "$work/primary.digests" "$work/rootless.digests" >&2; exit 1
fi

log "verify: signatures, subject, source, pipeline, in-toto layout, SBOM, 2 distinct trusted builders"
b=$work/builders
bin/accord layout --key "$work/owner.key" --functionary "$b/primary.pub" --functionary "$b/validator-1.pub" --functionary "$b/validator-2.pub" --out "$work/root.layout" >/dev/null
cat > "$work/policy.yaml" <<POLICY
apiVersion: accord.dev/v1alpha1
kind: Policy
builders:
  - {id: https://accord.dev/builders/primary, key: builders/primary.pub}
  - {id: https://accord.dev/builders/validator-1, key: builders/validator-1.pub}
  - {id: https://accord.dev/builders/validator-2, key: builders/validator-2.pub}
threshold: 2
sources:
  - {uri: "$(jq -r '.builders[0].source.uri' "$work/consensus.json")", refs: [main]}
pipelines: [$(jq -r '.builders[0].pipeline.digest' "$work/consensus.json")]
sbom: required
layout: {file: root.layout, ownerKey: owner.pub}
POLICY
for a in $(jq -r '.builders[0].artifacts[] | "\(.name)@\(.digest)"' "$work/consensus.json"); do
  bin/accord verify "$a" --store "$store" --policy "$work/policy.yaml"
done

log "a signed verification summary (SLSA VSA v1) of the image, for admission to check one document"
bin/accord keys generate "$work/verifier" >/dev/null
image=$(jq -r '.builders[0].artifacts[] | select(.kind == "image") | "\(.name)@\(.digest)"' "$work/consensus.json")
bin/accord verify "$image" --store "$store" --policy "$work/policy.yaml" --vsa-key "$work/verifier.key" \
  --verifier-id https://accord.dev/verifiers/demo -o json | jq -c '{verified, vsa}'
bin/accord export accord.dev/examples/hello --store "$store" --dir "$work/release" --policy "$work/policy.yaml" --pub "$b/primary.pub" --layout "$work/root.layout" >/dev/null
echo "release bundle:"; ls "$work/release"

log "a registry store: the image goes where its name says (IMAGE_URL), its evidence beside it"
ACCORD_COSIGN=${ACCORD_COSIGN:-$(install_go_tool cosign github.com/sigstore/cosign/v2/cmd/cosign "$COSIGN_VERSION")}
port=$(( 20000 + RANDOM % 20000 ))
mkdir -p "$work/reg"
printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' "$work/reg" "$port" > "$work/reg.yml"
docker-registry serve "$work/reg.yml" >/dev/null 2>&1 & regpid=$!
trap 'kill $regpid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
reg=127.0.0.1:$port
bin/accord images build --store "$reg/accord" >/dev/null
bin/accord run --source "file://$repo" --revision main -p name=hello -p image="$reg/team/hello:v1" --store "$reg/accord" \
  --key "$b/primary.key" --builder-id https://accord.dev/builders/primary -o json > "$work/registry.json"
ref=$(jq -r '.artifacts[] | select(.kind == "image") | .reference' "$work/registry.json")
echo "pushed $ref (the store repository $reg/accord holds the binary and the builder image, not the image)"
for args in "verify" "verify-attestation --type slsaprovenance1"; do
  # shellcheck disable=SC2086 # args are two fixed word lists
  COSIGN_PASSWORD= TUF_ROOT=$work/tuf "$ACCORD_COSIGN" $args --key "$b/primary.pub" --insecure-ignore-tlog=true --allow-insecure-registry "$ref" > "$work/cosign.txt" 2>&1 ||
    { cat "$work/cosign.txt" >&2; echo "cosign $args $ref failed" >&2; exit 1; }
done
echo "cosign verify and verify-attestation --type slsaprovenance1 $ref: ok"
cat > "$work/registry-policy.yaml" <<POLICY
apiVersion: accord.dev/v1alpha1
kind: Policy
builders:
  - {id: https://accord.dev/builders/primary, key: builders/primary.pub}
threshold: 1
pipelines: [$(jq -r '.pipeline.digest' "$work/registry.json")]
sbom: required
POLICY
bin/accord verify "$ref" --store "$reg/accord" --policy "$work/registry-policy.yaml"
if bin/accord run --source "file://$repo" --revision main -p name=hello -p image=registry.example/team/hello --store "$reg/accord" 2> "$work/refused.txt"; then
  echo "a name in a registry not allowed was pushed" >&2; exit 1
fi
echo "refused before anything ran: $(head -1 "$work/refused.txt")"
