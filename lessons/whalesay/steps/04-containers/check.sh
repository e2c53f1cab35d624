#!/usr/bin/env bash
# whalesay / containers: at least two containers made from the one docker/whalesay image.
if ! docker info >/dev/null 2>&1; then
    echo "The Docker engine is not answering yet. Wait a few seconds and press Check again."
    echo "Docker 引擎还没有响应，请等几秒钟再检查。"
    exit 1
fi
# `ancestor` also matches images built FROM docker/whalesay (smartwhale): keep only
# containers started from docker/whalesay itself (by name or by image ID).
mapfile -t rows < <(docker ps -a --filter ancestor=docker/whalesay --format '{{.Image}}|{{.Names}} ({{.Status}})' \
    | awk -F'|' '$1 ~ /^((docker\.io\/)?docker\/whalesay(:latest)?|(sha256:)?[0-9a-f]+)$/ {print $2}')
n=${#rows[@]}
if [ "$n" -ge 2 ]; then
    echo "Two containers or more from one image: ${rows[*]:0:3}. You know images and containers now!"
    echo "同一个镜像有了 $n 个容器。你已经明白镜像和容器的区别了！"
    exit 0
fi
if [ "$n" -eq 1 ]; then
    echo "One whalesay container so far (${rows[0]}). Start another: docker run docker/whalesay cowsay \"Images are templates, containers are instances\""
    echo "目前只有一个 whalesay 容器。再启动一个：docker run docker/whalesay cowsay \"Images are templates, containers are instances\""
    exit 1
fi
echo "No whalesay containers yet. Run: docker run docker/whalesay cowsay boo, then one more with your own words."
echo "还没有 whalesay 容器。请运行：docker run docker/whalesay cowsay boo，再用你自己的话运行一次。"
exit 1
