#!/usr/bin/env bash
# Build the images of Drydock's Kubernetes lessons from Debian packages and push them to the
# local registry mirror, so that k3s inside an instance (whose containerd mirrors docker.io
# to it, /etc/rancher/k3s/registries.yaml) pulls `drydock/web:1` from it:
#
#   drydock/web:1, drydock/web:2   ./Dockerfile (VERSION=1, 2): busybox httpd saying which
#                                  version and which pod answered
#   drydock/tls-sidecar:1          ./sidecar/Dockerfile: TLS offload sidecar (socat, openssl)
#
# Usage: sandbox/images/web/build.sh REGISTRY        e.g. 127.0.0.1:5000
# Environment:
#   WEB_BASE        base image (default drydock/debian:bookworm; it must exist locally —
#                   this script never pulls it, there is no Docker Hub here)
#   WEB_NO_PUSH=1   build and tag only
#
# Idempotent and cached like ../whalesay/build.sh.
set -euo pipefail

# The images made here, one `IMAGE=` line each (`drydock lessons lint` reads these lines).
images=()
IMAGE=drydock/web:1 && images+=("$IMAGE")
IMAGE=drydock/web:2 && images+=("$IMAGE")
IMAGE=drydock/tls-sidecar:1 && images+=("$IMAGE")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly here images
base=${WEB_BASE:-drydock/debian:bookworm}

log() { printf '==> web: %s\n' "$*" >&2; }
die() { printf 'error: web: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 REGISTRY (host:port of the local registry, e.g. 127.0.0.1:5000)"
registry=${1%/}
[[ $registry =~ ^[A-Za-z0-9.-]+(:[0-9]+)?$ ]] \
    || die "REGISTRY must be host:port (e.g. 127.0.0.1:5000), got '$1'"

docker info >/dev/null 2>&1 || die "cannot reach dockerd (is it running? are you root?)"
docker image inspect "$base" >/dev/null 2>&1 \
    || die "base image $base is missing: build it first (sandbox/build --only debian)"

# The classic builder when BuildKit's buildx plugin is missing (as sandbox/build does).
build() {
    if docker buildx version >/dev/null 2>&1; then
        docker build -q "$@" >/dev/null
    else
        DOCKER_BUILDKIT=0 docker build -q "$@" >/dev/null 2> >(grep -v -e DEPRECATED \
            -e 'legacy builder' -e 'BuildKit is currently disabled' -e 'environment-variable' \
            -e 'Install the buildx' -e 'https://docs.docker.com/go/buildx' -e '^ *$' >&2)
    fi
}

for version in 1 2; do
    log "building drydock/web:$version from $base"
    build --build-arg "BASE=$base" --build-arg "VERSION=$version" -t "drydock/web:$version" "$here" \
        || die "docker build of drydock/web:$version failed (the build needs the Debian mirror)"
done
log "building drydock/tls-sidecar:1 from $base"
build --build-arg "BASE=$base" -t drydock/tls-sidecar:1 "$here/sidecar" \
    || die "docker build of drydock/tls-sidecar:1 failed (the build needs the Debian mirror)"

# Smoke test: web:1 and web:2 answer with their version; the sidecar offloads TLS for the
# web server over the shared localhost (one network namespace, as in a pod).
net=""
smoke_cleanup() {
    docker rm -f drydock-web-smoke drydock-web-smoke-tls >/dev/null 2>&1 || true
}
trap smoke_cleanup EXIT
for version in 1 2; do
    smoke_cleanup
    docker run -d --name drydock-web-smoke "drydock/web:$version" >/dev/null
    out=""
    for _ in $(seq 50); do
        out=$(docker exec drydock-web-smoke wget -qO- http://localhost/ 2>/dev/null) && break
        sleep 0.1
    done
    grep -q "^Hello from web v$version on pod " <<<"$out" \
        || die "drydock/web:$version did not answer as expected: '$out'"
    docker logs drydock-web-smoke 2>&1 | grep -q "web v$version: GET / from 127.0.0.1" \
        || die "drydock/web:$version logged no request line: $(docker logs drydock-web-smoke 2>&1)"
done
net=container:drydock-web-smoke
docker run -d --name drydock-web-smoke-tls --network "$net" drydock/tls-sidecar:1 >/dev/null
out=""
for _ in $(seq 50); do
    out=$(docker exec drydock-web-smoke-tls sh -c \
        'printf "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n" | openssl s_client -quiet -connect localhost:443 2>/dev/null' \
        2>/dev/null | tail -n 1) && [ -n "$out" ] && break
    sleep 0.2
done
grep -q '^Hello from web v2 on pod ' <<<"$out" \
    || die "drydock/tls-sidecar:1 did not forward TLS to the web server: '$out' $(docker logs drydock-web-smoke-tls 2>&1)"
smoke_cleanup
trap - EXIT

if [ "${WEB_NO_PUSH:-}" = 1 ]; then
    log "built ${images[*]} (WEB_NO_PUSH=1: not pushed)"
    exit 0
fi

for image in "${images[@]}"; do
    target="$registry/$image"
    docker tag "$image" "$target"
    docker push "$target" >/dev/null || die "docker push $target failed (is a registry listening on $registry?)"
    log "pushed $target ($(docker image inspect -f '{{.Id}}' "$image" | cut -c1-19), $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1/1e6}'))"
done
