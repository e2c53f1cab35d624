#!/usr/bin/env bash
# services / load-balancing: at least two different Pods behind one Service of drydock/web
# have answered requests.
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
while IFS=$'\t' read -r name _ _ _ _ selector ready; do
    pods=$(requests "$selector" | cut -f1 | sort -u)
    n=$(grep -c . <<<"$pods")
    if [ "$n" -ge 2 ]; then
        echo "Service $name spread the requests over $n Pods: $(paste -sd' ' <<<"$pods"). Next: open it in your browser."
        echo "Service $name 把请求分摊到了 $n 个 Pod 上：$(paste -sd' ' <<<"$pods")。下一步：在浏览器里打开它。"
        exit 0
    fi
    if [ "$ready" -lt 2 ]; then
        echo "Service $name has only $ready ready Pod: there is nothing to spread over. Scale: kubectl scale deployment web --replicas=3"
        echo "Service $name 只有 $ready 个就绪的 Pod，无从分摊。请扩容：kubectl scale deployment web --replicas=3"
        exit 1
    fi
done <<<"$services"
name=$(head -n 1 <<<"$services" | cut -f1)
echo "Only one Pod of Service $name has answered so far. Send more requests: kubectl exec client -- sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://$name; done'"
echo "到目前为止 Service $name 只有一个 Pod 应答过。多发几个请求：kubectl exec client -- sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://$name; done'"
exit 1
