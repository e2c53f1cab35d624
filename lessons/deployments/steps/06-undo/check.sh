#!/usr/bin/env bash
# deployments / undo: a Deployment of drydock/web went back to drydock/web:1 after a newer
# revision (revision 3 or later), and that rollout is complete.
if ! kubectl get --raw /readyz >/dev/null 2>&1; then
    echo "Kubernetes is not answering yet. Wait a few seconds and press Check again."
    echo "Kubernetes 还没有响应，请等几秒钟再检查。"
    exit 1
fi
deps=$(kubectl get deployments -o json 2>/dev/null) || deps='{"items":[]}'
# name <TAB> images <TAB> revision <TAB> wanted <TAB> updated <TAB> available <TAB> total <TAB> observed
rows=$(jq -r '.items[]
    | select(any(.spec.template.spec.containers[]; .image | test("^(docker\\.io/)?drydock/web:")))
    | [.metadata.name, ([.spec.template.spec.containers[].image] | join(",")),
       ((.metadata.annotations // {})["deployment.kubernetes.io/revision"] // "0"),
       (.spec.replicas // 1), (.status.updatedReplicas // 0), (.status.availableReplicas // 0),
       (.status.replicas // 0), ((.status.observedGeneration // 0) >= .metadata.generation)]
    | @tsv' <<<"$deps")
if [ -z "$rows" ]; then
    echo "No Deployment of drydock/web yet. Create it first: kubectl create deployment web --image=drydock/web:1 --replicas=3"
    echo "还没有 drydock/web 的 Deployment。请先创建：kubectl create deployment web --image=drydock/web:1 --replicas=3"
    exit 1
fi
while IFS=$'\t' read -r dep images revision want updated available total observed; do
    if grep -qE '(^|,)(docker\.io/)?drydock/web:1(,|$)' <<<"$images" && [ "$revision" -ge 3 ]; then
        if [ "$observed" = true ] && [ "$updated" -ge "$want" ] && [ "$available" -ge "$want" ] && [ "$total" -le "$want" ]; then
            echo "Deployment $dep is back on drydock/web:1 (revision $revision): undone like any rollout. Lesson complete — well done!"
            echo "Deployment $dep 已经回到 drydock/web:1（修订版本 $revision）：回滚也是一次滚动更新。本课完成，干得好！"
            exit 0
        fi
        echo "Deployment $dep is going back to drydock/web:1: $updated of $want Pods updated. Follow it: kubectl rollout status deployment/$dep"
        echo "Deployment $dep 正在回到 drydock/web:1：$want 个 Pod 中 $updated 个已更新。跟踪进度：kubectl rollout status deployment/$dep"
        exit 1
    fi
done <<<"$rows"
IFS=$'\t' read -r dep images revision _ <<<"$(head -n 1 <<<"$rows")"
if grep -qE '(^|,)(docker\.io/)?drydock/web:2(,|$)' <<<"$images"; then
    echo "Deployment $dep runs drydock/web:2 (revision $revision). Undo the rollout: kubectl rollout undo deployment/$dep"
    echo "Deployment $dep 正在使用 drydock/web:2（修订版本 $revision）。回滚这次更新：kubectl rollout undo deployment/$dep"
else
    echo "Deployment $dep has not been rolled out to a new version and back yet (revision $revision). First: kubectl set image deployment/$dep web=drydock/web:2, then: kubectl rollout undo deployment/$dep"
    echo "Deployment $dep 还没有更新到新版本再回滚（修订版本 $revision）。先运行 kubectl set image deployment/$dep web=drydock/web:2，再运行 kubectl rollout undo deployment/$dep"
fi
exit 1
