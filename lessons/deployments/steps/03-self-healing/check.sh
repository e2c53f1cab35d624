#!/usr/bin/env bash
# deployments / self-healing: a Pod of a drydock/web ReplicaSet was deleted (Killing event,
# Pod gone) and the Deployment has all its replicas ready again.
if ! kubectl get --raw /readyz >/dev/null 2>&1; then
    echo "Kubernetes is not answering yet. Wait a few seconds and press Check again."
    echo "Kubernetes 还没有响应，请等几秒钟再检查。"
    exit 1
fi
all=$(kubectl get deployments,replicasets,pods,events -o json 2>/dev/null) || all='{"items":[]}'
# deployment <TAB> wanted <TAB> ready <TAB> deleted Pod (or empty)
rows=$(jq -r '
    [.items[] | select(.kind == "Deployment")
        | select(any(.spec.template.spec.containers[]; .image | test("^(docker\\.io/)?drydock/web:")))] as $deps
    | [.items[] | select(.kind == "ReplicaSet")] as $rss
    | [.items[] | select(.kind == "Pod") | .metadata.name] as $pods
    | [.items[] | select(.kind == "Event" and .reason == "Killing" and .involvedObject.kind == "Pod")
        | .involvedObject.name] as $killed
    | $deps[] as $d
    | [$rss[] | select(any(.metadata.ownerReferences[]?; .kind == "Deployment" and .name == $d.metadata.name))
        | .metadata.name] as $mine
    | [$killed[] | . as $k | select(any($mine[]; . as $rs | $k | startswith($rs + "-"))) | select(any($pods[]; . == $k) | not)] as $gone
    | [$d.metadata.name, ($d.spec.replicas // 1), ($d.status.readyReplicas // 0), ($gone[0] // "")]
    | @tsv' <<<"$all")
if [ -z "$rows" ]; then
    echo "No Deployment of drydock/web yet. Create it first: kubectl create deployment web --image=drydock/web:1 --replicas=3"
    echo "还没有 drydock/web 的 Deployment。请先创建：kubectl create deployment web --image=drydock/web:1 --replicas=3"
    exit 1
fi
while IFS=$'\t' read -r dep want ready gone; do
    [ -n "$gone" ] || continue
    if [ "$ready" -ge "$want" ]; then
        echo "Pod $gone was deleted and Deployment $dep is back to $ready of $want ready Pods: its ReplicaSet made a new one. Next: scale."
        echo "Pod $gone 被删除后，Deployment $dep 又恢复到 $want 个 Pod 中 $ready 个就绪：它的 ReplicaSet 新建了一个。下一步：扩缩容。"
        exit 0
    fi
    echo "Pod $gone was deleted; Deployment $dep has $ready of $want Pods ready so far. Watch the new one start (kubectl get pods) and press Check again."
    echo "Pod $gone 已被删除；Deployment $dep 目前 $want 个 Pod 中有 $ready 个就绪。看着新 Pod 启动（kubectl get pods），然后再检查。"
    exit 1
done <<<"$rows"
dep=$(head -n 1 <<<"$rows" | cut -f1)
echo "No Pod of Deployment $dep has been deleted yet. Delete one: kubectl delete pod \$(kubectl get pods -l app=$dep -o jsonpath='{.items[0].metadata.name}')"
echo "还没有删除过 Deployment $dep 的 Pod。删除一个：kubectl delete pod \$(kubectl get pods -l app=$dep -o jsonpath='{.items[0].metadata.name}')"
exit 1
