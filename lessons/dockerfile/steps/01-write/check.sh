#!/usr/bin/env bash
# dockerfile / write: /root/Dockerfile is the book's four-line Dockerfile (checked by meaning:
# FROM docker/whalesay, apt-get update, apt-get install fortunes, CMD fortune | cowsay).
f=/root/Dockerfile
if [ ! -f "$f" ]; then
    other=""
    for c in /root/dockerfile /root/DockerFile /root/Dockerfile.txt /root/Dockerfile~ /Dockerfile /tmp/Dockerfile /root/*/Dockerfile; do
        [ -f "$c" ] && { other=$c; break; }
    done
    if [ -n "$other" ]; then
        echo "Found $other, but the file must be /root/Dockerfile (capital D, in your home folder)."
        echo "  Fix: mv $other /root/Dockerfile   (or: cd ~ && vi Dockerfile)"
        echo "找到了 $other，但文件应该是 /root/Dockerfile（大写 D，在主目录下）。"
    else
        echo "There is no Dockerfile in your home folder yet. Run: cd ~ && vi Dockerfile, press i, type the four lines, Esc, :wq!"
        echo "主目录下还没有 Dockerfile。请运行 cd ~ && vi Dockerfile，按 i，输入四行，按 Esc，再输入 :wq!"
    fi
    exit 1
fi

# Instructions, one per line: comments and blank lines dropped, continuations joined, CR removed.
mapfile -t ins < <(tr -d '\r' <"$f" | sed -e 's/^[[:space:]]*//' -e '/^#/d' -e '/^$/d' \
    | sed -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta')
if [ ${#ins[@]} -eq 0 ]; then
    echo "Your Dockerfile is empty. In vi, press i before typing, then Esc and :wq! to save."
    echo "Dockerfile 是空的。在 vi 里要先按 i 再输入，然后按 Esc，输入 :wq! 保存。"
    exit 1
fi

ok=1
from_ok=0; update_at=0; install_at=0; install_y=0; cmd_ok=0; n=0; unknown=""
known=" FROM RUN CMD LABEL EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD STOPSIGNAL HEALTHCHECK SHELL MAINTAINER "
for line in "${ins[@]}"; do
    n=$((n + 1))
    word=$(awk '{print toupper($1)}' <<<"$line")
    rest=$(sed -E 's/^[^[:space:]]+[[:space:]]*//' <<<"$line")
    case "$known" in *" $word "*) ;; *) [ -n "$unknown" ] || unknown="\"$line\"" ;; esac
    case "$word" in
        FROM)
            [ "$n" -eq 1 ] && grep -qE '^(docker\.io/)?docker/whalesay(:latest)?([[:space:]]|$)' <<<"$rest" && from_ok=1 ;;
        RUN)
            if grep -qE '\bapt(-get)?\b.*\bupdate\b' <<<"$rest" && [ "$update_at" -eq 0 ]; then update_at=$n; fi
            if grep -qE '\bapt(-get)?\b.*\binstall\b.*\bfortunes?\b' <<<"$rest"; then
                install_at=$n
                grep -qE '(^|[[:space:]])(-[a-z]*y[a-z]*|--yes|--assume-yes|-qq|-[a-z]*qq[a-z]*)([[:space:]]|$)' <<<"$rest" && install_y=1
            fi ;;
        CMD)
            grep -q 'fortune' <<<"$rest" && grep -q '|' <<<"$rest" && grep -q 'cowsay' <<<"$rest" && cmd_ok=1 ;;
    esac
done

report() { if [ "$1" = 1 ]; then echo "  ✔ $2"; else echo "  ✘ $2 — $3"; ok=0; fi; }
echo "Your Dockerfile:"
report "$from_ok" "starts FROM docker/whalesay:latest" "the first line must be: FROM docker/whalesay:latest"
report "$([ "$update_at" -gt 0 ] && echo 1)" "RUN apt-get -y -qq update" "add the line: RUN apt-get -y -qq update"
report "$([ "$install_at" -gt 0 ] && echo 1)" "RUN apt-get install -qq -y fortunes" "add the line: RUN apt-get install -qq -y fortunes"
if [ "$install_at" -gt 0 ]; then
    report "$install_y" "install runs without questions (-y)" "a build cannot answer apt's question: add -y (RUN apt-get install -qq -y fortunes)"
    report "$([ "$update_at" -gt 0 ] && [ "$update_at" -le "$install_at" ] && echo 1)" "update comes before install" "put RUN apt-get -y -qq update before the install line"
fi
report "$cmd_ok" "CMD /usr/games/fortune -a | cowsay" "the last line must be: CMD /usr/games/fortune -a | cowsay"
report "$([ -z "$unknown" ] && echo 1)" "every line is a Dockerfile instruction" "not an instruction, remove it: $unknown"

if [ "$ok" = 1 ]; then
    echo "Your Dockerfile is ready. Next: build it into an image."
    echo "Dockerfile 写好了。下一步：把它构建成镜像。"
    exit 0
fi
first=${ins[0]}
if grep -qiE '^i+(from|run|cmd)' <<<"$first"; then
    echo "Hint: the first line starts with an extra 'i' — in vi you pressed i again after -- INSERT -- appeared. Delete it: vi Dockerfile, move onto the i, press x, then :wq!"
fi
if grep -q ':wq' "$f"; then
    echo "Hint: ':wq!' ended up inside the file — press Esc before typing :wq!. Remove that line: vi Dockerfile, move onto it, press dd, then type :wq!"
fi
echo "Fix the lines marked ✘ (vi Dockerfile, i to edit, Esc, :wq!) and press Check again."
echo "请修改标记为 ✘ 的行（vi Dockerfile，按 i 编辑，按 Esc，输入 :wq! 保存），然后再检查。"
exit 1
