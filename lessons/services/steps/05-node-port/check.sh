#!/usr/bin/env bash
# services / node-port: a NodePort Service selects ready drydock/web Pods, and since it
# was created they answered a request from outside the Pod network (browser, node).
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
nodeport=""
while IFS=$'\t' read -r name type _ port created selector _; do
    [ "$type" = NodePort ] || [ "$type" = LoadBalancer ] || continue
    nodeport="$name $port"
    since=${created:0:19}
    while IFS=$'\t' read -r pod at from; do
        [ "${at:0:19}" \< "$since" ] && continue
        grep -qxF "$from" <<<"$pod_ips" && continue
        echo "Service $name is open on port $port of the node, and Pod $pod answered a request through it. Lesson complete — well done!"
        echo "Service $name 在节点的 $port 端口上开放，Pod $pod 通过它响应了请求。本课完成，干得好！"
        exit 0
    done < <(requests "$selector")
done <<<"$services"
if [ -n "$nodeport" ]; then
    read -r name port <<<"$nodeport"
    echo "Service $name is a NodePort on port $port, but no request has come through it yet. Open port $port in the Ports bar (or run: curl -s http://\$(hostname -i):$port)."
    echo "Service $name 是开放在 $port 端口上的 NodePort，但还没有请求经过它。请在端口栏里打开 $port 端口（或者运行：curl -s http://\$(hostname -i):$port）。"
    exit 1
fi
echo "No NodePort Service yet. Run: kubectl expose deployment web --name=web-public --type=NodePort --port=80"
echo "还没有 NodePort 类型的 Service。请运行：kubectl expose deployment web --name=web-public --type=NodePort --port=80"
exit 1
