#!/usr/bin/env bash
# services / expose: a Service selects ready Pods of drydock/web (it has endpoints).
if ! kubectl get --raw /readyz >/dev/null 2>&1; then
    echo "Kubernetes is not answering yet. Wait a few seconds and press Check again."
    echo "Kubernetes 还没有响应，请等几秒钟再检查。"
    exit 1
fi
all=$(kubectl get services,pods -o json 2>/dev/null) || all='{"items":[]}'
# Services whose selector picks ready drydock/web Pods: name <TAB> type <TAB> cluster IP
# <TAB> node port <TAB> created <TAB> selector <TAB> ready Pods
services=$(jq -r '
    [.items[] | select(.kind == "Pod" and .metadata.deletionTimestamp == null)] as $pods
    | .items[] | select(.kind == "Service" and .spec.selector != null)
    | .spec.selector as $sel
    | [$pods[]
       | select((.metadata.labels // {}) as $l | $sel | to_entries | all(.value == $l[.key]))
       | select(any(.spec.containers[]; .image | test("^(docker\\.io/)?drydock/web:")))
       | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] as $ready
    | select($ready | length > 0)
    | [.metadata.name, .spec.type, (.spec.clusterIP // "-"),
       ([.spec.ports[]?.nodePort // empty][0] // "-"), .metadata.creationTimestamp,
       ($sel | to_entries | map("\(.key)=\(.value)") | join(",")), ($ready | length)]
    | @tsv' <<<"$all")
if [ -z "$services" ]; then
    echo "No Service sends traffic to ready drydock/web Pods yet. Create them: kubectl create deployment web --image=drydock/web:1 --replicas=3, then: kubectl expose deployment web --port=80"
    echo "还没有把流量转发给就绪的 drydock/web Pod 的 Service。请先创建：kubectl create deployment web --image=drydock/web:1 --replicas=3，然后：kubectl expose deployment web --port=80"
    exit 1
fi
IFS=$'\t' read -r name type ip _ _ selector ready <<<"$(head -n 1 <<<"$services")"
echo "Service $name ($type, cluster IP $ip) sends traffic to the $ready ready Pod(s) with $selector. Next: call it."
echo "Service $name（$type，集群 IP $ip）把流量转发给带有 $selector 标签的 $ready 个就绪 Pod。下一步：访问它。"
exit 0
