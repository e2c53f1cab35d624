#!/bin/sh
# drydock/web: the answer to every request for /. One line for curl and wget (which image
# version, which pod, its IP), a small page for browsers; one log line per request on
# stderr, so `kubectl logs` shows who asked (the lessons' checks read these lines).
version=$(cat /etc/web-version)
host=$(hostname)
ip=$(hostname -i 2>/dev/null | cut -d' ' -f1)
from=${REMOTE_ADDR#[}
from=${from%]}
from=${from#::ffff:}
line="Hello from web v$version on pod $host ($ip)"
echo "web v$version: $REQUEST_METHOD ${REQUEST_URI:-/} from $from" >&2
case "${HTTP_ACCEPT:-}" in
    *text/html*)
        case "$version" in 1) colour='#1d63ed' ;; *) colour='#17803d' ;; esac
        printf 'Content-Type: text/html; charset=utf-8\r\n\r\n'
        printf '<!doctype html><title>web v%s</title>' "$version"
        printf '<body style="font:20px sans-serif;margin:3em;color:%s">' "$colour"
        printf '<h1>web v%s</h1><p>%s</p></body>\n' "$version" "$line"
        ;;
    *)
        printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
        echo "$line"
        ;;
esac
