#!/usr/bin/env bash
# pods / delete: a Pod was stopped by a deletion (a Killing event) and is gone now.
if ! kubectl get --raw /readyz >/dev/null 2>&1; then
    echo "Kubernetes is not answering yet. Wait a few seconds and press Check again."
    echo "Kubernetes 还没有响应，请等几秒钟再检查。"
    exit 1
fi
events=$(kubectl get events -o json 2>/dev/null) || events='{"items":[]}'
stopped=$(jq -r '.items[] | select(.involvedObject.kind == "Pod" and .reason == "Killing")
    | .involvedObject.name' <<<"$events" | sort -u)
existing=$(kubectl get pods -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' 2>/dev/null)
gone=""
for name in $stopped; do
    grep -qxF "$name" <<<"$existing" || { gone=$name; break; }
done
if [ -n "$gone" ]; then
    echo "Pod $gone is gone for good: nothing brought it back. Lesson complete — next, Deployments keep Pods running for you."
    echo "Pod $gone 已经彻底消失，没有任何东西把它带回来。本课完成——下一课的 Deployment 会替你让 Pod 一直运行。"
    exit 0
fi
if [ -n "$stopped" ]; then
    name=$(head -n 1 <<<"$stopped")
    echo "Pod $name is still being deleted. Wait a moment (kubectl get pods) and press Check again."
    echo "Pod $name 正在删除中。稍等一下（kubectl get pods）再检查。"
    exit 1
fi
echo "No Pod has been deleted yet. Run: kubectl delete pod web"
echo "还没有删除过 Pod。请运行：kubectl delete pod web"
exit 1
