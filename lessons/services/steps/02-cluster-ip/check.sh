#!/usr/bin/env bash
# services / cluster-ip: the Pods behind a Service of drydock/web have answered requests.
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
while IFS=$'\t' read -r name _ ip _ _ selector _; do
    n=$(requests "$selector" | grep -c .)
    if [ "$n" -gt 0 ]; then
        echo "The Pods behind Service $name have answered $n request(s): $ip is one address for all of them. Next: the Service's name."
        echo "Service $name 背后的 Pod 已经响应了 $n 个请求：$ip 这一个地址代表了它们全体。下一步：Service 的名字。"
        exit 0
    fi
done <<<"$services"
IFS=$'\t' read -r name _ ip _ <<<"$(head -n 1 <<<"$services")"
echo "Nobody has called Service $name yet. Run: curl -s http://$ip"
echo "还没有人访问过 Service $name。请运行：curl -s http://$ip"
exit 1
