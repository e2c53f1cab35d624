#!/usr/bin/env bash
# dockerfile / run: at least two containers of smartwhale ran its default command and the
# whale told a fortune.
if ! docker info >/dev/null 2>&1; then
    echo "The Docker engine is not answering yet. Wait a few seconds and press Check again."
    echo "Docker 引擎还没有响应，请等几秒钟再检查。"
    exit 1
fi
if ! docker image inspect smartwhale:latest >/dev/null 2>&1; then
    echo "There is no smartwhale image yet: build it first with docker build -t smartwhale ."
    echo "还没有 smartwhale 镜像：请先运行 docker build -t smartwhale . 构建它。"
    exit 1
fi
told=0
quotes=""
for id in $(docker ps -a --filter ancestor=smartwhale --format '{{.ID}}'); do
    # Only containers that ran the image's own command (docker run smartwhale, no command).
    path=$(docker inspect -f '{{.Path}} {{join .Args " "}}' "$id" 2>/dev/null)
    grep -q 'fortune' <<<"$path" || continue
    logs=$(docker logs "$id" 2>&1 | head -c 20000)
    grep -qE '^ _+$' <<<"$logs" || continue
    told=$((told + 1))
    quotes+=$(sed -n 2p <<<"$logs")$'\n'
done
distinct=$(printf '%s' "$quotes" | sort -u | grep -c .)
if [ "$told" -ge 2 ]; then
    echo "Your whale has told $told fortunes ($distinct different quotes): one new container for each docker run."
    echo "你的鲸鱼已经讲了 $told 句格言（其中 $distinct 句不同）：每次 docker run 都是一个新容器。"
    exit 0
fi
echo "So far $told container(s) of smartwhale told a fortune. Run it (again): docker run smartwhale"
echo "目前 smartwhale 讲过 $told 次格言。请再运行：docker run smartwhale"
exit 1
