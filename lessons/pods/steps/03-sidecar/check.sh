#!/usr/bin/env bash
# pods / sidecar: a Ready Pod with a drydock/web container and a drydock/tls-sidecar
# container that mount the same volume, and the web container has served a request that came
# over localhost (from the sidecar).
if ! kubectl get --raw /readyz >/dev/null 2>&1; then
    echo "Kubernetes is not answering yet. Wait a few seconds and press Check again."
    echo "Kubernetes 还没有响应，请等几秒钟再检查。"
    exit 1
fi
pods=$(kubectl get pods -o json 2>/dev/null) || pods='{"items":[]}'
# name <TAB> ready <TAB> web container <TAB> shared volume (or empty) <TAB> IP
rows=$(jq -r '
    def img(re): .image | test(re);
    .items[]
    | select(any(.spec.containers[]; img("^(docker\\.io/)?drydock/web:"))
             and any(.spec.containers[]; img("^(docker\\.io/)?drydock/tls-sidecar:")))
    | . as $pod
    | (first(.spec.containers[] | select(img("^(docker\\.io/)?drydock/web:"))) ) as $web
    | (first(.spec.containers[] | select(img("^(docker\\.io/)?drydock/tls-sidecar:"))) ) as $tls
    | ([$web.volumeMounts[]?.name] - ([$web.volumeMounts[]?.name] - [$tls.volumeMounts[]?.name])) as $shared
    | [.metadata.name,
       (any(.status.conditions[]?; .type == "Ready" and .status == "True") | tostring),
       $web.name, ($shared[0] // "-"), (.status.podIP // "-")]
    | @tsv' <<<"$pods")
if [ -z "$rows" ]; then
    echo "No Pod has both a drydock/web and a drydock/tls-sidecar container yet. Create web-tls with the kubectl apply command of this step."
    echo "还没有同时包含 drydock/web 和 drydock/tls-sidecar 两个容器的 Pod。请用本步骤的 kubectl apply 命令创建 web-tls。"
    exit 1
fi
hint=""
while IFS=$'\t' read -r name ready web shared ip; do
    if [ "$ready" != true ]; then
        hint="Pod $name is not Ready yet (both containers must run): kubectl get pod $name; kubectl describe pod $name"
        continue
    fi
    if [ "$shared" = - ]; then
        hint="Pod $name has both containers but they share no volume: mount one volume in both (see the YAML of this step)."
        continue
    fi
    if kubectl logs "$name" -c "$web" 2>/dev/null | grep -qE '^web v[0-9]+: GET .* from 127\.0\.0\.1$'; then
        echo "Pod $name: two containers, one volume ($shared) and one localhost. HTTPS went to the sidecar, which passed it to the web server over localhost. Next: delete a Pod."
        echo "Pod $name：两个容器共享一个数据卷（$shared）和同一个 localhost。HTTPS 请求先到边车容器，再经 localhost 转给 Web 服务器。下一步：删除 Pod。"
        exit 0
    fi
    hint="Pod $name runs, but its web container has seen no request from localhost yet. Go through the sidecar: curl -sk https://$ip"
done <<<"$rows"
echo "$hint"
echo "差一点：$hint"
exit 1
