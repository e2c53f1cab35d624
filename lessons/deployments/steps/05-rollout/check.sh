#!/usr/bin/env bash
# deployments / rollout: a Deployment runs drydock/web:2 and its rollout is complete (every
# replica updated and available, no old Pods left).
if ! kubectl get --raw /readyz >/dev/null 2>&1; then
    echo "Kubernetes is not answering yet. Wait a few seconds and press Check again."
    echo "Kubernetes 还没有响应，请等几秒钟再检查。"
    exit 1
fi
deps=$(kubectl get deployments -o json 2>/dev/null) || deps='{"items":[]}'
# name <TAB> images <TAB> wanted <TAB> updated <TAB> available <TAB> total <TAB> observed
rows=$(jq -r '.items[]
    | select(any(.spec.template.spec.containers[]; .image | test("^(docker\\.io/)?drydock/web:")))
    | [.metadata.name, ([.spec.template.spec.containers[].image] | join(",")),
       (.spec.replicas // 1), (.status.updatedReplicas // 0), (.status.availableReplicas // 0),
       (.status.replicas // 0), ((.status.observedGeneration // 0) >= .metadata.generation)]
    | @tsv' <<<"$deps")
if [ -z "$rows" ]; then
    echo "No Deployment of drydock/web yet. Create it first: kubectl create deployment web --image=drydock/web:1 --replicas=3"
    echo "还没有 drydock/web 的 Deployment。请先创建：kubectl create deployment web --image=drydock/web:1 --replicas=3"
    exit 1
fi
while IFS=$'\t' read -r dep images want updated available total observed; do
    grep -qE '(^|,)(docker\.io/)?drydock/web:2(,|$)' <<<"$images" || continue
    if [ "$observed" = true ] && [ "$updated" -ge "$want" ] && [ "$available" -ge "$want" ] && [ "$total" -le "$want" ]; then
        echo "Deployment $dep rolled out drydock/web:2: all $want Pods replaced, a few at a time, with no gap in service. Next: undo it."
        echo "Deployment $dep 已经滚动更新到 drydock/web:2：$want 个 Pod 分批全部替换，服务没有中断。下一步：回滚。"
        exit 0
    fi
    echo "Deployment $dep is rolling out drydock/web:2: $updated of $want Pods updated, $available available. Follow it: kubectl rollout status deployment/$dep"
    echo "Deployment $dep 正在滚动更新到 drydock/web:2：$want 个 Pod 中 $updated 个已更新，$available 个可用。跟踪进度：kubectl rollout status deployment/$dep"
    exit 1
done <<<"$rows"
dep=$(head -n 1 <<<"$rows" | cut -f1)
echo "Deployment $dep does not run drydock/web:2 yet. Run: kubectl set image deployment/$dep web=drydock/web:2"
echo "Deployment $dep 还没有使用 drydock/web:2。请运行：kubectl set image deployment/$dep web=drydock/web:2"
exit 1
