#!/usr/bin/env bash
# whalesay / images: docker/whalesay:latest shows up in `docker images`.
if ! docker info >/dev/null 2>&1; then
    echo "The Docker engine is not answering yet. Wait a few seconds and press Check again."
    echo "Docker 引擎还没有响应，请等几秒钟再检查。"
    exit 1
fi
line=$(docker images --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' \
    | grep -E '^(docker\.io/)?docker/whalesay:latest ' | head -n 1)
if [ -n "$line" ]; then
    read -r _ id size <<<"$line"
    echo "Right: docker/whalesay:latest is in your list, image ID $id, $size. Next: run it."
    echo "没错：docker/whalesay:latest 在你的镜像列表里（镜像 ID $id，大小 $size）。下一步：运行它。"
    exit 0
fi
echo "docker images does not list docker/whalesay:latest yet. Pull it first: docker pull docker/whalesay"
echo "镜像列表里还没有 docker/whalesay:latest。请先拉取：docker pull docker/whalesay"
exit 1
