#!/usr/bin/env bash
# Run every lesson step's check before and after the step's commands, in a real instance.
#
# Usage: lessons/tools/verify-checks.sh [--reset] TARGET [LESSON...]
#   TARGET   a running instance container (ID or name) with a nested dockerd: commands and
#            checks run in it with `docker exec`, as root in /root, like the agent does;
#            or `host` for a rough run on this machine (it writes /root/Dockerfile and
#            creates containers and images on the host's dockerd).
#   LESSON   lesson ids, in order (default: whalesay, dockerfile, then any other lesson
#            of template "docker").
#   --reset  first remove what the lessons create (containers of docker/whalesay and
#            smartwhale, those images, /root/Dockerfile), so the target is like a fresh
#            session. Without it the "fresh" phase is skipped.
#
# Per lesson: (1) with --reset, every check must FAIL on the fresh target; (2) step by step,
# the step's `sh run` blocks from en.md run in order, then its check must PASS. Editor
# commands (`vi FILE`, `vim FILE`, `nano FILE`) are replaced by writing the step's
# ```dockerfile block to FILE. Exit status 0 when everything held.
set -euo pipefail

lessons_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
reset=0
if [ "${1:-}" = --reset ]; then reset=1; shift; fi
[ $# -ge 1 ] || { sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 2; }
target=$1; shift

# in_target SCRIPT: run SCRIPT with bash -c as root in /root on the target.
in_target() {
    if [ "$target" = host ]; then
        (cd /root && timeout 300 bash -c "$1" </dev/null)
    else
        docker exec -w /root "$target" timeout 300 bash -c "$1" </dev/null
    fi
}
# run_check FILE: like the agent: bash -c with the file's text, 10 s timeout.
run_check() {
    local text
    text=$(cat "$1")
    if [ "$target" = host ]; then
        (cd /root && timeout 10 bash -c "$text" </dev/null)
    else
        docker exec -w /root "$target" timeout 10 bash -c "$text" </dev/null
    fi
}
# blocks INFO FILE: print the fenced blocks with info string INFO, separated by NUL.
blocks() {
    awk -v info="$1" '
        !inb && $0 == "```" info { inb = 1; buf = ""; next }
        inb && $0 == "```" { inb = 0; printf "%s%c", buf, 0; next }
        inb { buf = (buf == "" ? $0 : buf "\n" $0) }
    ' "$2"
}

if [ $# -eq 0 ]; then
    # The course order first (lesson 2 builds on lesson 1's image), then any other.
    for l in whalesay dockerfile; do [ -f "$lessons_dir/$l/lesson.toml" ] && set -- "$@" "$l"; done
    for m in "$lessons_dir"/*/lesson.toml; do
        l=$(basename "$(dirname "$m")")
        case " $* " in *" $l "*) continue ;; esac
        grep -qE '^template *= *"docker"' "$m" && set -- "$@" "$l"
    done
fi

failures=0
ok() { printf '  ok    %s\n' "$*"; }
bad() { printf '  FAIL  %s\n' "$*"; failures=$((failures + 1)); }
# shellcheck disable=SC2001 # one sed per line is clearer than a parameter expansion here
show() { sed 's/^/          | /' <<<"$1"; }

if [ "$reset" = 1 ]; then
    echo "== resetting $target"
    # shellcheck disable=SC2016 # expands in the target
    in_target '
        for img in smartwhale docker/whalesay; do
            ids=$(docker ps -aq --filter ancestor=$img 2>/dev/null || true)
            [ -z "$ids" ] || docker rm -f $ids >/dev/null
        done
        docker rmi -f smartwhale:latest docker/whalesay:latest >/dev/null 2>&1 || true
        rm -f /root/Dockerfile' || true
fi

# step_dirs LESSON: the lesson's step folders, in order, into the array `steps`.
step_dirs() {
    steps=()
    local s
    for s in "$lessons_dir/$1"/steps/[0-9][0-9]-*/; do steps+=("${s%/}"); done
}

if [ "$reset" = 1 ]; then
    echo "== fresh target: every check must fail"
    for lesson in "$@"; do
        step_dirs "$lesson"
        for s in "${steps[@]}"; do
            [ -f "$s/check.sh" ] || continue
            if out=$(run_check "$s/check.sh" 2>&1); then
                bad "$lesson/$(basename "$s"): passed on a fresh target"; show "$out"
            else
                ok "$lesson/$(basename "$s"): fails when fresh"
            fi
        done
    done
fi

for lesson in "$@"; do
    dir="$lessons_dir/$lesson"
    [ -f "$dir/lesson.toml" ] || { bad "$lesson: no lesson.toml"; continue; }
    echo "== lesson $lesson, step by step"
    step_dirs "$lesson"
    for s in "${steps[@]}"; do
        name=$(basename "$s")
        dockerfile=$(blocks dockerfile "$s/en.md" | tr '\0' '\n')
        while IFS= read -r -d '' cmd; do
            if [[ $cmd =~ ^(vi|vim|nano)\ +([^ ]+)$ ]]; then
                file=${BASH_REMATCH[2]}
                [ -n "$dockerfile" ] || { bad "$name: '$cmd' but no dockerfile block"; continue; }
                echo "  \$ $cmd   (writing the step's dockerfile block to $file instead)"
                in_target "cat > $file <<'DRYDOCK_EOF'
$dockerfile
DRYDOCK_EOF"
                continue
            fi
            echo "  \$ $cmd"
            if ! out=$(in_target "$cmd" 2>&1); then
                bad "$name: command failed: $cmd"; show "$(tail -n 15 <<<"$out")"
            fi
        done < <(blocks 'sh run' "$s/en.md")
        if [ -f "$s/check.sh" ]; then
            if out=$(run_check "$s/check.sh" 2>&1); then
                ok "$name: passes after its commands"; show "$out"
            else
                bad "$name: check fails after its commands"; show "$out"
            fi
        fi
    done
done

if [ "$failures" -eq 0 ]; then echo "all checks behaved"; else echo "$failures problem(s)"; exit 1; fi
