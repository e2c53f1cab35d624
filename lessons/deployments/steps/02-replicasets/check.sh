#!/usr/bin/env bash
# deployments / replicasets: a Deployment of drydock/web owns a ReplicaSet, which owns that
# many ready Pods.
if ! kubectl get --raw /readyz >/dev/null 2>&1; then
    echo "Kubernetes is not answering yet. Wait a few seconds and press Check again."
    echo "Kubernetes 还没有响应，请等几秒钟再检查。"
    exit 1
fi
all=$(kubectl get deployments,replicasets,pods -o json 2>/dev/null) || all='{"items":[]}'
# deployment <TAB> replicaset <TAB> its replicas <TAB> ready Pods it owns
rows=$(jq -r '
    [.items[] | select(.kind == "Deployment")
        | select(any(.spec.template.spec.containers[]; .image | test("^(docker\\.io/)?drydock/web:")))] as $deps
    | [.items[] | select(.kind == "ReplicaSet")] as $rss
    | [.items[] | select(.kind == "Pod")] as $pods
    | $deps[] as $d
    | $rss[] | select(any(.metadata.ownerReferences[]?; .kind == "Deployment" and .name == $d.metadata.name))
    | select((.spec.replicas // 0) > 0)
    | . as $rs
    | [$d.metadata.name, $rs.metadata.name, ($rs.spec.replicas // 0),
       ([$pods[] | select(any(.metadata.ownerReferences[]?; .kind == "ReplicaSet" and .name == $rs.metadata.name))
                 | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length)]
    | @tsv' <<<"$all")
if [ -z "$rows" ]; then
    echo "No Deployment of drydock/web with a ReplicaSet yet. Create it first: kubectl create deployment web --image=drydock/web:1 --replicas=3"
    echo "还没有带 ReplicaSet 的 drydock/web Deployment。请先创建：kubectl create deployment web --image=drydock/web:1 --replicas=3"
    exit 1
fi
while IFS=$'\t' read -r dep rs want ready; do
    if [ "$ready" -ge "$want" ]; then
        echo "Deployment $dep -> ReplicaSet $rs -> $ready Pods named $rs-...: each layer owns the next. Next: delete a Pod."
        echo "Deployment $dep -> ReplicaSet $rs -> $ready 个名为 $rs-... 的 Pod：每一层拥有下一层。下一步：删除一个 Pod。"
        exit 0
    fi
done <<<"$rows"
IFS=$'\t' read -r dep rs want ready <<<"$(head -n 1 <<<"$rows")"
echo "ReplicaSet $rs of Deployment $dep has $ready of $want Pods ready. Wait a moment and press Check again (kubectl get replicasets)."
echo "Deployment $dep 的 ReplicaSet $rs 目前 $want 个 Pod 中有 $ready 个就绪。稍等再检查（kubectl get replicasets）。"
exit 1
