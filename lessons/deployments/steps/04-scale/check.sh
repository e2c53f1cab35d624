#!/usr/bin/env bash
# deployments / scale: a Deployment of drydock/web was scaled (its replica count is no longer
# the 3 it was created with, or one ReplicaSet was scaled to two different sizes) and all
# its replicas are ready.
if ! kubectl get --raw /readyz >/dev/null 2>&1; then
    echo "Kubernetes is not answering yet. Wait a few seconds and press Check again."
    echo "Kubernetes 还没有响应，请等几秒钟再检查。"
    exit 1
fi
all=$(kubectl get deployments,events -o json 2>/dev/null) || all='{"items":[]}'
# deployment <TAB> wanted <TAB> ready <TAB> most sizes one ReplicaSet was scaled to
rows=$(jq -r '
    [.items[] | select(.kind == "Event" and .reason == "ScalingReplicaSet" and .involvedObject.kind == "Deployment")] as $ev
    | .items[] | select(.kind == "Deployment")
    | select(any(.spec.template.spec.containers[]; .image | test("^(docker\\.io/)?drydock/web:")))
    | .metadata.name as $n
    | ([$ev[] | select(.involvedObject.name == $n) | .message
        | capture("replica set (?<rs>[^ ]+) .*to (?<to>[0-9]+)") ]
       | group_by(.rs) | map([.[].to] | unique | length) | max // 0) as $sizes
    | [$n, (.spec.replicas // 1), (.status.readyReplicas // 0), $sizes]
    | @tsv' <<<"$all")
if [ -z "$rows" ]; then
    echo "No Deployment of drydock/web yet. Create it first: kubectl create deployment web --image=drydock/web:1 --replicas=3"
    echo "还没有 drydock/web 的 Deployment。请先创建：kubectl create deployment web --image=drydock/web:1 --replicas=3"
    exit 1
fi
while IFS=$'\t' read -r dep want ready sizes; do
    if [ "$want" -ne 3 ] || [ "$sizes" -ge 2 ]; then
        if [ "$ready" -ge "$want" ]; then
            echo "Deployment $dep now runs $ready of $want Pods: you scaled it with one command. Next: a new version."
            echo "Deployment $dep 现在运行着 $want 个 Pod 中的 $ready 个：一条命令就完成了扩缩容。下一步：新版本。"
            exit 0
        fi
        echo "Deployment $dep wants $want Pods, $ready are ready so far. Wait a moment (kubectl get pods) and press Check again."
        echo "Deployment $dep 需要 $want 个 Pod，目前 $ready 个就绪。稍等（kubectl get pods）再检查。"
        exit 1
    fi
done <<<"$rows"
dep=$(head -n 1 <<<"$rows" | cut -f1)
echo "Deployment $dep still has its 3 replicas. Scale it: kubectl scale deployment $dep --replicas=5"
echo "Deployment $dep 仍然是 3 个副本。请扩容：kubectl scale deployment $dep --replicas=5"
exit 1
