#!/usr/bin/env bash
# Build Drydock's docker/whalesay:latest from Debian packages and push it to the local
# registry mirror, so an instance dockerd started with `--registry-mirror http://HOST:PORT`
# answers `docker pull docker/whalesay` from it.
#
# Usage: sandbox/images/whalesay/build.sh REGISTRY        e.g. 127.0.0.1:5000
#   REGISTRY        host:port of the registry (plain HTTP on loopback is fine: dockerd
#                   treats 127.0.0.0/8 as insecure-allowed)
# Environment:
#   WHALESAY_BASE   base image (default drydock/debian:bookworm; it must exist locally —
#                   this script never pulls it, there is no Docker Hub here)
#   WHALESAY_NO_PUSH=1   build and tag only
#
# Idempotent and cached: a second run with unchanged inputs reuses every layer and the
# push only sends what the registry lacks.
set -euo pipefail

readonly IMAGE=docker/whalesay:latest
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly here
base=${WHALESAY_BASE:-drydock/debian:bookworm}

log() { printf '==> whalesay: %s\n' "$*" >&2; }
die() { printf 'error: whalesay: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 REGISTRY (host:port of the local registry, e.g. 127.0.0.1:5000)"
registry=${1%/}
[[ $registry =~ ^[A-Za-z0-9.-]+(:[0-9]+)?$ ]] \
    || die "REGISTRY must be host:port (e.g. 127.0.0.1:5000), got '$1'"

docker info >/dev/null 2>&1 || die "cannot reach dockerd (is it running? are you root?)"
docker image inspect "$base" >/dev/null 2>&1 \
    || die "base image $base is missing: build it first (sandbox/build), or for a test: mmdebstrap --variant=minbase --include=ca-certificates bookworm - http://deb.debian.org/debian | docker import - $base"

log "building $IMAGE from $base"
docker build --build-arg "BASE=$base" -t "$IMAGE" "$here" \
    || die "docker build of $IMAGE failed (the build needs http://deb.debian.org/debian)"

# Smoke test: the book's first command must show a whale saying boo.
out=$(docker run --rm "$IMAGE" cowsay boo) || die "docker run $IMAGE cowsay boo failed"
grep -q '< boo >' <<<"$out" || die "cowsay boo printed no speech bubble: $out"

if [ "${WHALESAY_NO_PUSH:-}" = 1 ]; then
    log "built $IMAGE (WHALESAY_NO_PUSH=1: not pushed)"
    exit 0
fi

target="$registry/$IMAGE"
log "pushing $target"
docker tag "$IMAGE" "$target"
docker push "$target" >/dev/null || die "docker push $target failed (is a registry listening on $registry?)"
log "pushed $target ($(docker image inspect -f '{{.Id}}' "$IMAGE"))"
