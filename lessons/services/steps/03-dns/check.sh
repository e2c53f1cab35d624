#!/usr/bin/env bash
# services / dns: a Pod of drydock/web behind a Service answered a request that came from
# another Pod (the client Pod, calling the Service by its name).
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
# requests SELECTOR: one line per request the selected Pods served: pod <TAB> time <TAB> client
requests() {
    kubectl logs -l "$1" --all-containers=true --prefix --timestamps --tail=-1 \
        --max-log-requests=50 2>/dev/null |
        sed -nE 's#^\[pod/([^/]+)/[^]]*\] ([^ ]+) web v[0-9]+: GET .* from ([^ ]+)$#\1\t\2\t\3#p'
}
if [ -z "$services" ]; then
    echo "No Service sends traffic to ready drydock/web Pods yet. Create them: kubectl create deployment web --image=drydock/web:1 --replicas=3, then: kubectl expose deployment web --port=80"
    echo "还没有把流量转发给就绪的 drydock/web Pod 的 Service。请先创建：kubectl create deployment web --image=drydock/web:1 --replicas=3，然后：kubectl expose deployment web --port=80"
    exit 1
fi
pod_ips=$(jq -r '.items[] | select(.kind == "Pod") | .status.podIP // empty' <<<"$all" | sort -u)
while IFS=$'\t' read -r name _ _ _ _ selector _; do
    from_pod=$(requests "$selector" | awk -F'\t' '{ print $3 }' | grep -xFf <(printf '%s\n' "$pod_ips") | head -n 1)
    if [ -n "$from_pod" ]; then
        client=$(jq -r --arg ip "$from_pod" '.items[] | select(.kind == "Pod" and .status.podIP == $ip) | .metadata.name' <<<"$all" | head -n 1)
        echo "Pod ${client:-$from_pod} reached Service $name from inside the cluster: the name $name is all a Pod needs. Next: who answers?"
        echo "Pod ${client:-$from_pod} 在集群内部访问到了 Service $name：Pod 只需要知道名字 $name。下一步：是谁在应答？"
        exit 0
    fi
done <<<"$services"
name=$(head -n 1 <<<"$services" | cut -f1)
echo "No Pod has called Service $name yet. Start a client Pod: kubectl run client --image=drydock/web:1, then: kubectl exec client -- wget -qO- http://$name"
echo "还没有 Pod 访问过 Service $name。先启动一个客户端 Pod：kubectl run client --image=drydock/web:1，然后：kubectl exec client -- wget -qO- http://$name"
exit 1
