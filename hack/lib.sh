# Shared by hack/*.sh. Installs what accord and its tests need, from Debian's
# packages and pinned Go modules only; idempotent.

# Debian packages: OCI runtimes, git, tools for 'accord images build'
# (dpkg-deb), jq for the demo's digest comparison, util-linux for taskset
# (CPU-count variation), diffoscope-minimal for divergence reports, chromium
# for the status page's headless-browser test.
ACCORD_APT_PACKAGES=(runc crun runsc git dpkg jq ca-certificates util-linux passwd docker-registry diffoscope-minimal chromium)

# The unprivileged user the rootless runs and tests use.
ACCORD_TEST_USER=accordtest

log() { printf '\n==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_deps() {
  local missing=()
  for p in "${ACCORD_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  command -v go >/dev/null || { echo "Go is required (go1.26 or newer)" >&2; exit 2; }
}

# chromium_path: prints the path of the Chromium that the status page's
# browser test drives (ACCORD_CHROMIUM wins), or fails when there is none.
chromium_path() {
  if [ -n "${ACCORD_CHROMIUM:-}" ]; then
    command -v "$ACCORD_CHROMIUM" && return 0
    echo "ACCORD_CHROMIUM=$ACCORD_CHROMIUM is not an executable: fix or unset it" >&2
    return 1
  fi
  command -v chromium || command -v chromium-browser && return 0
  echo "chromium not found: run install_deps (Debian package chromium) or set ACCORD_CHROMIUM" >&2
  return 1
}

ensure_test_user() {
  if ! id "$ACCORD_TEST_USER" >/dev/null 2>&1; then
    log "creating unprivileged user $ACCORD_TEST_USER for rootless runs"
    as_root useradd --create-home --shell /bin/sh "$ACCORD_TEST_USER"
  fi
}

# run_as_test_user CMD...: run a command as the unprivileged user, in /tmp.
run_as_test_user() {
  local cmd
  cmd=$(printf '%q ' "$@")
  as_root su "$ACCORD_TEST_USER" -s /bin/sh -c "cd /tmp && $cmd"
}

build_accord() {
  mkdir -p bin
  log "building bin/accord"
  CGO_ENABLED=0 go build -trimpath -o bin/accord ./cmd/accord
  chmod 0755 bin bin/accord
}

# Pinned Go tools the interop tests use, built once and cached by version
# (cosign takes ~11 minutes to build cold).
ACCORD_TOOLS_CACHE=${ACCORD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/accord/tools}
COSIGN_VERSION=v2.6.5
INTOTO_VERSION=v0.11.0

# install_go_tool BIN MODULE VERSION: prints the cached binary's path.
install_go_tool() {
  local bin=$1 module=$2 version=$3
  local dir="$ACCORD_TOOLS_CACHE/$bin-$version"
  if [ ! -x "$dir/$bin" ]; then
    log "building $module@$version (cached in $dir)"
    mkdir -p "$dir"
    GOBIN="$dir" CGO_ENABLED=0 GOFLAGS=-trimpath go install "$module@$version" >&2
  fi
  echo "$dir/$bin"
}

# install_go_module_tool BIN MODULE VERSION PKG: like install_go_tool, for a
# module whose go.mod has replace directives (go install MODULE@VERSION
# refuses those): PKG (./cmd/x) is built inside a copy of the module, as its
# main module, from its own go.mod and go.sum.
install_go_module_tool() {
  local bin=$1 module=$2 version=$3 pkg=$4
  local dir="$ACCORD_TOOLS_CACHE/$bin-$version"
  if [ ! -x "$dir/$bin" ]; then
    log "building $module@$version $pkg (cached in $dir)"
    local src tmp
    src=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$src" ] || { echo "cannot download $module@$version" >&2; return 1; }
    tmp=$(mktemp -d)
    cp -r "$src/." "$tmp/" && chmod -R u+w "$tmp"
    mkdir -p "$dir"
    (cd "$tmp" && CGO_ENABLED=0 GOFLAGS="-trimpath -mod=readonly" go build -o "$dir/$bin.tmp" "$pkg" >&2) &&
      mv "$dir/$bin.tmp" "$dir/$bin"
    local rc=$?
    rm -rf "$tmp"
    [ "$rc" = 0 ] || return "$rc"
  fi
  echo "$dir/$bin"
}

# sigstore policy-controller's offline admission tester, for the admission
# examples' tests (its go.mod has replace directives; about 12 minutes to
# build cold on 2 shared cores).
POLICY_CONTROLLER_VERSION=v0.13.1
# The Kyverno CLI (kyverno apply), for the same tests: about 26 minutes to
# build cold on 2 shared cores, then cached.
KYVERNO_VERSION=v1.19.1

install_interop_tools() {
  export ACCORD_COSIGN; ACCORD_COSIGN=$(install_go_tool cosign github.com/sigstore/cosign/v2/cmd/cosign "$COSIGN_VERSION")
  export ACCORD_INTOTO; ACCORD_INTOTO=$(install_go_tool in-toto-golang github.com/in-toto/in-toto-golang "$INTOTO_VERSION")
  export ACCORD_POLICY_TESTER; ACCORD_POLICY_TESTER=$(install_go_module_tool policy-tester github.com/sigstore/policy-controller "$POLICY_CONTROLLER_VERSION" ./cmd/tester)
  export ACCORD_KYVERNO; ACCORD_KYVERNO=$(install_go_module_tool kyverno github.com/kyverno/kyverno "$KYVERNO_VERSION" ./cmd/cli/kubectl-kyverno)
  command -v docker-registry >/dev/null || { as_root apt-get install -y -qq docker-registry >/dev/null; }
  export ACCORD_REGISTRY_BIN; ACCORD_REGISTRY_BIN=$(command -v docker-registry)
}

SYFT_VERSION=v1.54.1
install_bench_tools() {
  local p
  for p in bc time curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
  done
  export ACCORD_SYFT; ACCORD_SYFT=$(install_go_tool syft github.com/anchore/syft/cmd/syft "$SYFT_VERSION")
  install_interop_tools
}
