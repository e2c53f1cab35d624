#!/usr/bin/env bash
# dockerfile / layers: smartwhale has the layers its Dockerfile makes (update, install
# fortunes, CMD); the feedback shows their sizes.
if ! docker info >/dev/null 2>&1; then
    echo "The Docker engine is not answering yet. Wait a few seconds and press Check again."
    echo "Docker 引擎还没有响应，请等几秒钟再检查。"
    exit 1
fi
if ! hist=$(docker history --no-trunc --format '{{.Size}}|{{.CreatedBy}}' smartwhale:latest 2>/dev/null); then
    echo "There is no smartwhale image to look at. Build it first: docker build -t smartwhale ."
    echo "没有 smartwhale 镜像可看。请先构建：docker build -t smartwhale ."
    exit 1
fi
update=$(grep -m1 -E '\|.*apt(-get)?.*update' <<<"$hist" | cut -d'|' -f1)
install=$(grep -m1 -E '\|.*install.*fortunes' <<<"$hist" | cut -d'|' -f1)
if [ -z "$update" ] || [ -z "$install" ]; then
    echo "smartwhale lacks the layers of the book's Dockerfile (RUN apt-get -y -qq update, RUN apt-get install -qq -y fortunes)."
    echo "Fix the Dockerfile and build again: docker build -t smartwhale ."
    echo "smartwhale 缺少书中 Dockerfile 的层，请修改 Dockerfile 后重新构建。"
    exit 1
fi
n=$(grep -c . <<<"$hist")
echo "smartwhale has $n layers. Yours: apt-get update $update, install fortunes $install, CMD 0B. Lesson complete — well done!"
echo "smartwhale 一共有 $n 层。你构建的层：apt-get update $update，安装 fortunes $install，CMD 0B。本课完成，干得好！"
exit 0
