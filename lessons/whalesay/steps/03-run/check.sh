#!/usr/bin/env bash
# whalesay / run: a container made from docker/whalesay ran cowsay and printed a speech bubble
# (best: one that said "boo").
if ! docker info >/dev/null 2>&1; then
    echo "The Docker engine is not answering yet. Wait a few seconds and press Check again."
    echo "Docker 引擎还没有响应，请等几秒钟再检查。"
    exit 1
fi
# `ancestor` also matches images built FROM docker/whalesay (smartwhale): keep only
# containers started from docker/whalesay itself (by name or by image ID).
ids=$(docker ps -a --filter ancestor=docker/whalesay --format '{{.ID}} {{.Image}}' \
    | awk '$2 ~ /^((docker\.io\/)?docker\/whalesay(:latest)?|(sha256:)?[0-9a-f]+)$/ {print $1}')
if [ -z "$ids" ]; then
    if ! docker image inspect docker/whalesay:latest >/dev/null 2>&1; then
        echo "First pull the image: docker pull docker/whalesay"
        echo "请先拉取镜像：docker pull docker/whalesay"
    fi
    echo "No container has been made from docker/whalesay yet. Run: docker run docker/whalesay cowsay boo"
    echo "还没有用 docker/whalesay 创建过容器。请运行：docker run docker/whalesay cowsay boo"
    exit 1
fi
said_boo=""
bubble=""
for id in $ids; do
    logs=$(docker logs "$id" 2>&1 | head -c 20000)
    if grep -q '^< boo >' <<<"$logs"; then said_boo=$id; break; fi
    if grep -qE '^ _+$' <<<"$logs"; then bubble=$id; fi
done
if [ -n "$said_boo" ]; then
    echo "The whale said boo! Container $said_boo ran cowsay and then stopped."
    echo "鲸鱼说了 boo！容器 $said_boo 运行了 cowsay，然后就停止了。"
    exit 0
fi
if [ -n "$bubble" ]; then
    echo "Nice, the whale talked (container $bubble). The book's line is: docker run docker/whalesay cowsay boo"
    echo "不错，鲸鱼说话了（容器 $bubble）。书里的命令是：docker run docker/whalesay cowsay boo"
    exit 0
fi
echo "A whalesay container exists but it did not run cowsay. Run: docker run docker/whalesay cowsay boo"
echo "已经有 whalesay 容器，但它没有运行 cowsay。请运行：docker run docker/whalesay cowsay boo"
exit 1
