# Shared by hack/*.sh. Installs what accord and its tests need, from Debian's
# packages and pinned Go modules only; idempotent.

# Debian packages: OCI runtimes, git, tools for 'accord images build'
# (dpkg-deb), jq for the demo's digest comparison.
ACCORD_APT_PACKAGES=(runc crun git dpkg jq ca-certificates util-linux passwd)

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
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  command -v go >/dev/null || { echo "Go is required (go1.26 or newer)" >&2; exit 2; }
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
