#!/usr/bin/env bash
# whalesay / pull: the image docker/whalesay:latest is in the local image store.
if ! docker info >/dev/null 2>&1; then
    echo "The Docker engine is not answering yet. Wait a few seconds and press Check again."
    echo "Docker 引擎还没有响应，请等几秒钟再检查。"
    exit 1
fi
if docker image inspect docker/whalesay:latest >/dev/null 2>&1; then
    size=$(docker images --format '{{.Size}}' docker/whalesay:latest | head -n 1)
    echo "Well done! docker/whalesay:latest is on your machine (${size:-?}). Next: list your images."
    echo "做得好！镜像 docker/whalesay:latest 已经下载到本机。下一步：查看本机的镜像。"
    exit 0
fi
echo "docker/whalesay is not on this machine yet. Run: docker pull docker/whalesay"
echo "本机上还没有 docker/whalesay 镜像。请运行：docker pull docker/whalesay"
exit 1
