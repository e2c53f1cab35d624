# shellcheck shell=bash
# Host preparation shared by scripts/up and scripts/test: installs what a fresh Debian 12 /
# Ubuntu 24.04 VM lacks, starts dockerd and the registry mirror when they are not running.
# Everything here is idempotent: a second run on a prepared host takes seconds.

DRYDOCK_STATE_DIR=${DRYDOCK_STATE_DIR:-/var/lib/drydock-host}
REGISTRY_PORT=${DRYDOCK_REGISTRY_PORT:-5000}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts dockerd)"
}

# Debian/Ubuntu packages the project needs on the host.
HOST_PACKAGES=(docker.io mmdebstrap docker-registry debian-archive-keyring
    curl jq ca-certificates git build-essential pkg-config shellcheck uidmap)

ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing packages: ${missing[*]}"
    command -v apt-get >/dev/null || die "apt-get not found: Drydock's scripts support Debian 12 and Ubuntu 24.04"
    apt-get update -q || die "apt-get update failed: check the VM's package mirror"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        || die "apt-get install ${missing[*]} failed"
}

ensure_rust() {
    if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null; then
        log "installing the Rust toolchain with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy -c rustfmt \
            || die "could not install Rust: install rustup (https://rustup.rs) and run again"
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
}

# Node.js and npm for the UI build: Debian's packages unless a node is already installed
# (e.g. from NodeSource, whose nodejs conflicts with Debian's npm package).
ensure_node() {
    command -v node >/dev/null && command -v npm >/dev/null && return 0
    ensure_packages nodejs npm
}

# Builds the UI into frontend/dist, which the server embeds: run before cargo builds it.
build_frontend() {
    log "building the UI (frontend/)"
    (cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent) \
        || die "the UI build failed (cd frontend && npm ci && npm run build)"
}

docker_up() { docker info >/dev/null 2>&1; }

ensure_dockerd() {
    if docker_up; then return 0; fi
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl start docker 2>/dev/null || true
        for _ in $(seq 1 30); do docker_up && return 0; sleep 0.5; done
    fi
    log "starting dockerd (log: /var/log/drydock-dockerd.log)"
    mkdir -p "$DRYDOCK_STATE_DIR"
    nohup dockerd >/var/log/drydock-dockerd.log 2>&1 &
    echo $! >"$DRYDOCK_STATE_DIR/dockerd.pid"
    for _ in $(seq 1 60); do docker_up && return 0; sleep 0.5; done
    tail -n 20 /var/log/drydock-dockerd.log >&2 || true
    die "dockerd did not come up within 30 s (see /var/log/drydock-dockerd.log)"
}

registry_up() { curl -fs -o /dev/null "http://127.0.0.1:${REGISTRY_PORT}/v2/"; }

# The local registry mirror (Debian's docker-registry). It listens on all addresses so every
# instance reaches it through its session network's gateway.
ensure_registry() {
    if registry_up; then return 0; fi
    local dir="$DRYDOCK_STATE_DIR/registry"
    mkdir -p "$dir/data"
    cat >"$dir/config.yml" <<CONF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 0.0.0.0:${REGISTRY_PORT}
CONF
    log "starting the registry mirror on port ${REGISTRY_PORT} (log: /var/log/drydock-registry.log)"
    nohup docker-registry serve "$dir/config.yml" >/var/log/drydock-registry.log 2>&1 &
    echo $! >"$DRYDOCK_STATE_DIR/registry.pid"
    for _ in $(seq 1 40); do registry_up && return 0; sleep 0.25; done
    tail -n 20 /var/log/drydock-registry.log >&2 || true
    die "the registry did not answer on 127.0.0.1:${REGISTRY_PORT} (see /var/log/drydock-registry.log)"
}

# prepare_host: everything scripts/up needs. scripts/test adds its own packages first with
# ensure_packages NAME....
prepare_host() {
    need_root
    ensure_packages "${HOST_PACKAGES[@]}"
    ensure_node
    ensure_rust
    ensure_dockerd
    ensure_registry
}
