#!/usr/bin/env bash
# deployments / create: a Deployment of drydock/web with at least 3 replicas, all ready.
if ! kubectl get --raw /readyz >/dev/null 2>&1; then
    echo "Kubernetes is not answering yet. Wait a few seconds and press Check again."
    echo "Kubernetes 还没有响应，请等几秒钟再检查。"
    exit 1
fi
deps=$(kubectl get deployments -o json 2>/dev/null) || deps='{"items":[]}'
# name <TAB> wanted replicas <TAB> ready replicas, for Deployments of drydock/web
rows=$(jq -r '.items[]
    | select(any(.spec.template.spec.containers[]; .image | test("^(docker\\.io/)?drydock/web:")))
    | [.metadata.name, (.spec.replicas // 1), (.status.readyReplicas // 0)] | @tsv' <<<"$deps")
if [ -z "$rows" ]; then
    echo "There is no Deployment of drydock/web yet. Run: kubectl create deployment web --image=drydock/web:1 --replicas=3"
    echo "还没有 drydock/web 的 Deployment。请运行：kubectl create deployment web --image=drydock/web:1 --replicas=3"
    exit 1
fi
while IFS=$'\t' read -r name want ready; do
    if [ "$want" -ge 3 ] && [ "$ready" -ge "$want" ]; then
        echo "Deployment $name: $ready of $want Pods ready. Next: who made those Pods?"
        echo "Deployment $name：$want 个 Pod 中已有 $ready 个就绪。下一步：这些 Pod 是谁创建的？"
        exit 0
    fi
done <<<"$rows"
IFS=$'\t' read -r name want ready <<<"$(head -n 1 <<<"$rows")"
if [ "$want" -lt 3 ]; then
    echo "Deployment $name wants $want replica(s); this step asks for 3: kubectl scale deployment $name --replicas=3"
    echo "Deployment $name 只要求 $want 个副本，本步骤需要 3 个：kubectl scale deployment $name --replicas=3"
else
    echo "Deployment $name: $ready of $want Pods ready so far. Wait (kubectl rollout status deployment/$name) and press Check again."
    echo "Deployment $name：目前 $want 个 Pod 中有 $ready 个就绪。请等待（kubectl rollout status deployment/$name）后再检查。"
fi
exit 1
