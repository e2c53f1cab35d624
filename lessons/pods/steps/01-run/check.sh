#!/usr/bin/env bash
# pods / run: a Pod of its own (no controller owns it) runs drydock/web and is Ready.
if ! kubectl get --raw /readyz >/dev/null 2>&1; then
    echo "Kubernetes is not answering yet. Wait a few seconds and press Check again."
    echo "Kubernetes 还没有响应，请等几秒钟再检查。"
    exit 1
fi
pods=$(kubectl get pods -o json 2>/dev/null) || pods='{"items":[]}'
# name <TAB> phase <TAB> ready <TAB> waiting reasons, for bare Pods with a drydock/web container
rows=$(jq -r '
    .items[]
    | select((.metadata.ownerReferences // []) | length == 0)
    | select(any(.spec.containers[]; .image | test("^(docker\\.io/)?drydock/web:")))
    | [.metadata.name, (.status.phase // "Pending"),
       (any(.status.conditions[]?; .type == "Ready" and .status == "True") | tostring),
       ([.status.containerStatuses[]?.state.waiting.reason // empty] | join(","))]
    | @tsv' <<<"$pods")
ready=$(awk -F'\t' '$3 == "true" { print $1; exit }' <<<"$rows")
if [ -n "$ready" ]; then
    ip=$(kubectl get pod "$ready" -o jsonpath='{.status.podIP}' 2>/dev/null)
    echo "Your Pod $ready is Running and Ready (IP ${ip:-?}). Next: look inside it."
    echo "你的 Pod $ready 已经在运行并就绪（IP ${ip:-?}）。下一步：看看它的内部。"
    exit 0
fi
if [ -n "$rows" ]; then
    IFS=$'\t' read -r name phase _ waiting <<<"$(head -n 1 <<<"$rows")"
    echo "Your Pod $name is $phase${waiting:+ ($waiting)}, not Ready yet. Wait a few seconds (kubectl get pods) and press Check again."
    echo "你的 Pod $name 目前是 $phase${waiting:+（$waiting）}，还没有就绪。请等几秒（kubectl get pods）再检查。"
    exit 1
fi
echo "No Pod runs drydock/web yet. Run: kubectl run web --image=drydock/web:1"
echo "还没有运行 drydock/web 的 Pod。请运行：kubectl run web --image=drydock/web:1"
exit 1
