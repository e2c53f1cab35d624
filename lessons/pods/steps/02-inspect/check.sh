#!/usr/bin/env bash
# pods / inspect: a bare drydock/web Pod has answered a request (its log says so).
if ! kubectl get --raw /readyz >/dev/null 2>&1; then
    echo "Kubernetes is not answering yet. Wait a few seconds and press Check again."
    echo "Kubernetes 还没有响应，请等几秒钟再检查。"
    exit 1
fi
pods=$(kubectl get pods -o json 2>/dev/null) || pods='{"items":[]}'
# name <TAB> web container <TAB> IP, for running bare Pods with a drydock/web container
rows=$(jq -r '
    .items[]
    | select((.metadata.ownerReferences // []) | length == 0)
    | select(.status.phase == "Running")
    | [.metadata.name,
       first(.spec.containers[] | select(.image | test("^(docker\\.io/)?drydock/web:")) | .name),
       (.status.podIP // "")]
    | select(.[1] != null)
    | @tsv' <<<"$pods")
if [ -z "$rows" ]; then
    echo "No running Pod of drydock/web to look at. Start one first: kubectl run web --image=drydock/web:1"
    echo "没有正在运行的 drydock/web Pod。请先启动一个：kubectl run web --image=drydock/web:1"
    exit 1
fi
while IFS=$'\t' read -r name container ip; do
    served=$(kubectl logs "$name" -c "$container" 2>/dev/null | grep -cE '^web v[0-9]+: GET ')
    if [ "${served:-0}" -gt 0 ]; then
        from=$(kubectl logs "$name" -c "$container" 2>/dev/null | grep -E '^web v[0-9]+: GET ' | tail -n 1 | sed 's/.* from //')
        echo "Pod $name ($ip) has answered $served request(s), the last from $from: you reached it and read its log. Next: a Pod with two containers."
        echo "Pod $name（$ip）已经响应了 $served 个请求，最近一个来自 $from：你访问了它，也看到了它的日志。下一步：有两个容器的 Pod。"
        exit 0
    fi
done <<<"$rows"
IFS=$'\t' read -r name _ ip <<<"$(head -n 1 <<<"$rows")"
echo "Pod $name has not answered any request yet. Ask it something: curl ${ip:-\$(kubectl get pod $name -o jsonpath='{.status.podIP}')}, then read its log: kubectl logs $name"
echo "Pod $name 还没有响应过任何请求。先访问它：curl ${ip:-<Pod IP>}，再看它的日志：kubectl logs $name"
exit 1
