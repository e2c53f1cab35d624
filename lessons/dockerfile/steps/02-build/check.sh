#!/usr/bin/env bash
# dockerfile / build: the image smartwhale:latest exists and is the book's image (its
# default command pipes fortune into cowsay).
if ! docker info >/dev/null 2>&1; then
    echo "The Docker engine is not answering yet. Wait a few seconds and press Check again."
    echo "Docker 引擎还没有响应，请等几秒钟再检查。"
    exit 1
fi
if ! docker image inspect smartwhale:latest >/dev/null 2>&1; then
    if [ ! -f /root/Dockerfile ]; then
        echo "There is no /root/Dockerfile yet: write it first (previous step), then: docker build -t smartwhale ."
        echo "还没有 /root/Dockerfile：请先完成上一步写好它，再运行 docker build -t smartwhale ."
    else
        echo "No image called smartwhale yet. In your home folder run: docker build -t smartwhale .   (note the dot at the end)"
        echo "If the build failed, the step it stopped at shows the line to fix in your Dockerfile."
        echo "还没有名为 smartwhale 的镜像。请在主目录运行：docker build -t smartwhale .（注意最后的点）"
    fi
    exit 1
fi
cmd=$(docker image inspect -f '{{json .Config.Cmd}}' smartwhale:latest)
if ! grep -q 'fortune' <<<"$cmd" || ! grep -q 'cowsay' <<<"$cmd"; then
    echo "smartwhale exists, but its command is $cmd instead of /usr/games/fortune -a | cowsay."
    echo "Check the CMD line of your Dockerfile, then build again: docker build -t smartwhale ."
    echo "smartwhale 镜像已存在，但它的默认命令不是 /usr/games/fortune -a | cowsay。请检查 CMD 行后重新构建。"
    exit 1
fi
if ! docker history --no-trunc --format '{{.CreatedBy}}' smartwhale:latest | grep -q 'fortunes'; then
    echo "smartwhale was built without installing fortunes. Check the RUN lines of your Dockerfile and build again."
    echo "smartwhale 构建时没有安装 fortunes。请检查 Dockerfile 中的 RUN 行后重新构建。"
    exit 1
fi
size=$(docker images --format '{{.Size}}' smartwhale:latest | head -n 1)
echo "You built your own image: smartwhale:latest (${size:-?}). Next: run it!"
echo "你构建出了自己的镜像 smartwhale:latest！下一步：运行它。"
exit 0
