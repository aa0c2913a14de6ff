#!/usr/bin/env bash
# make demo: the local control plane, a local Gitea holding the app's manifest, the operator, a
# sample app v1, a broken v2 committed to Git and synced, the rollback, and the revert pull request;
# meanwhile a DaemonSet (a node agent) gets a broken update too and is rolled back as well.
# Exits 0 only if the operator really rolled both back and opened the pull request.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$lib_root"
cd "$root"
export KUBECONFIG="$root/.cluster/kubeconfig"
kubectl="$bin_kube/kubectl"
ns=autorollback-demo
metrics_port="${DEMO_METRICS_PORT:-19090}"
health_port="${DEMO_HEALTH_PORT:-18080}"
oplog="$root/.cluster/demo-operator.log"
started=$SECONDS

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
say() { printf '\n%s[%3ds] %s%s\n' "$bold" "$((SECONDS - started))" "$*" "$plain"; }
k() { "$kubectl" -n "$ns" "$@"; }
wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then echo "demo: timed out waiting for $what" >&2; return 1; fi
    sleep 1
  done
}
image() { k get deployment shop -o jsonpath='{.spec.template.spec.containers[0].image}'; }
revision() { k get deployment shop -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}'; }
has_event() { k get events --field-selector "involvedObject.name=shop,reason=$1" -o name | grep -q .; }
available() {
  [[ "$(k get deployment shop -o jsonpath='{.status.availableReplicas}/{.status.updatedReplicas}/{.spec.replicas}/{.status.conditions[?(@.type=="Progressing")].reason}')" == "3/3/3/NewReplicaSetAvailable" ]]
}
agent_image() { k get daemonset node-agent -o jsonpath='{.spec.template.spec.containers[0].image}'; }
agent_rolled_out() { # every node runs the agent's current template, available
  local gen seen want updated ready
  IFS=/ read -r gen seen want updated ready < <(k get daemonset node-agent -o jsonpath='{.metadata.generation}/{.status.observedGeneration}/{.status.desiredNumberScheduled}/{.status.updatedNumberScheduled}/{.status.numberAvailable}')
  [[ "$gen" == "$seen" && "${want:-0}" -gt 0 && "$updated" == "$want" && "$ready" == "$want" ]]
}
agent_marked_healthy() { k get controllerrevisions -l app=node-agent -o jsonpath='{.items[*].metadata.annotations.autorollback\.io/healthy-at}' | grep -q .; }
agent_has_event() { k get events --field-selector "involvedObject.name=node-agent,reason=$1" -o name | grep -q .; }
agent() { # agent IMAGE [FAILURE]: a DaemonSet on every node; autorollback measures its deadline (15 s here)
  cat <<YAML | "$kubectl" apply -f - >/dev/null
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
  namespace: $ns
  annotations:
    autorollback.io/enabled: "true"
    autorollback.io/progress-deadline-seconds: "15"
spec:
  selector: {matchLabels: {app: node-agent}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}
  template:
    metadata:
      labels:
        app: node-agent
$( [[ -n "${2:-}" ]] && echo "        autorollback.test/failure: $2" )
    spec:
      containers:
      - name: agent
        image: $1
YAML
}
manifest() { # manifest IMAGE [FAILURE]
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: $ns
  annotations:
    autorollback.io/enabled: "true"
    autorollback.io/git-revert: "true"
    autorollback.io/git-repo: "$REPO"
    autorollback.io/git-path: deploy/shop.yaml
    autorollback.io/git-provider: gitea
    kubernetes.io/change-cause: "release $1"
spec:
  replicas: 3
  progressDeadlineSeconds: 15
  selector: {matchLabels: {app: shop}}
  template:
    metadata:
      labels:
        app: shop
$( [[ -n "${2:-}" ]] && echo "        autorollback.test/failure: $2" )
    spec:
      containers:
      - name: shop
        image: $1
YAML
}

say "Starting the local control plane (the first run builds it: several minutes)"
make --no-print-directory cluster-up venv
"$root/hack/build-tools.sh" gitea

say "Starting a local Gitea with an empty repository for the app's manifests"
forge="$root/.cluster/demo-forge"
rm -rf "$forge" && mkdir -p "$forge"
eval "$(.venv/bin/python hack/demo-forge.py up "$forge")"
work="$forge/work"
git_() { git -c "http.extraHeader=Authorization: token $(cat "$TOKEN_FILE")" -C "$work" "$@"; }
mkdir -p "$work/deploy" && git -C "$work" init -q -b main && git -C "$work" remote add origin "$REPO"
git -C "$work" config user.name "a developer" && git -C "$work" config user.email dev@example.invalid
release() { # release MESSAGE IMAGE [FAILURE]: commit to Git, then sync (what Argo CD or Flux would do)
  manifest "$2" "${3:-}" >"$work/deploy/shop.yaml"
  git_ add . && git_ commit -q -m "$1" && git_ push -q origin main
  "$kubectl" apply -f "$work/deploy/shop.yaml" >/dev/null
}
echo "repository: $REPO"
"$kubectl" delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
"$kubectl" create namespace "$ns" >/dev/null
wait_until 30 "the default ServiceAccount" k get serviceaccount default

say "Starting the operator: autorollback run -n $ns (log: $oplog)"
.venv/bin/autorollback run -n "$ns" --metrics-port "$metrics_port" --health-port "$health_port" \
  --log-format console --git-credentials-dir "$CREDENTIALS" --git-allowed-repo "$ns=$ALLOWED_REPOS" >"$oplog" 2>&1 &
op=$!
trap 'kill -TERM $op $GITEA_PID 2>/dev/null; wait $op 2>/dev/null || true' EXIT
wait_until 60 "the operator" curl -fsS "http://127.0.0.1:$health_port/readyz"

say "Committing shop v1 (registry.example/shop:1.0.0) to Git and syncing; opted in with autorollback.io/enabled=true"
release "release shop 1.0.0" registry.example/shop:1.0.0
say "Applying the DaemonSet node-agent v1 (registry.example/agent:1.0.0), opted in the same way"
agent registry.example/agent:1.0.0
wait_until 90 "v1 to become available" available
echo "shop is available: revision $(revision), image $(image)"
wait_until 90 "node-agent v1 on every node" agent_rolled_out
wait_until 60 "node-agent v1 marked healthy" agent_marked_healthy
echo "node-agent runs on every node: $(agent_image)"

say "Committing a broken v2 and syncing (its pods never become Ready; progressDeadlineSeconds: 15)"
release "release shop 2.0.0" registry.example/shop:2.0.0 not-ready
echo "revision $(revision) rolling out: $(image)"
say "Updating node-agent to a broken v2 as well (a DaemonSet has no deadline: autorollback measures 15 s without progress)"
agent registry.example/agent:2.0.0 not-ready

wait_until 90 "the failure to be detected" has_event RolloutFailed
say "Failure detected: Progressing=False, ProgressDeadlineExceeded"
k get events --field-selector involvedObject.name=shop,reason=RolloutFailed -o jsonpath='{.items[0].message}{"\n"}'

wait_until 60 "the rollback" has_event RolledBack
say "Rolled back: now revision $(revision), image $(image)"

wait_until 90 "shop to be available again" available
say "shop is fully available again"

wait_until 120 "the revert pull request" has_event RevertProposed
say "Roll forward through Git: the revert pull request on the local Gitea"
k get events --field-selector involvedObject.name=shop,reason=RevertProposed -o jsonpath='{.items[0].message}{"\n"}'
.venv/bin/python hack/demo-forge.py pulls "$GITEA_URL" "$TOKEN_FILE" 'Revert "release shop 2.0.0"' && pr=yes || pr=no

wait_until 60 "the DaemonSet's rollback" agent_has_event RolledBack
wait_until 90 "node-agent back on v1 on every node" agent_rolled_out
say "The DaemonSet too: node-agent rolled back to $(agent_image) on every node"
k get events --field-selector involvedObject.name=node-agent,reason=RolledBack -o jsonpath='{.items[0].message}{"\n"}'

say "Events on the Deployment (kubectl describe deployment shop)"
k get events --field-selector involvedObject.name=shop \
  -o custom-columns='TYPE:.type,REASON:.reason,MESSAGE:.message' | grep -E 'TYPE|autorollback|RolloutFailed|RolledBack|Revert' || true

say "kubectl rollout history deployment/shop"
k rollout history deployment/shop

say "Metrics (curl http://127.0.0.1:$metrics_port/metrics)"
curl -fsS "http://127.0.0.1:$metrics_port/metrics" | grep -E '^autorollback_(failed_rollouts|rollbacks|reaction_seconds_(count|sum)|recovery_seconds_count|opted_in|last_rollback)' || true

say "The operator's decision (from its log)"
grep -E 'rollback decision|rollout failed' "$oplog" || true

if [[ "$(image)" == registry.example/shop:1.0.0 && "$(revision)" == 3 ]] &&
   [[ "$(agent_image)" == registry.example/agent:1.0.0 ]] && agent_has_event RolledBack &&
   k get deployment shop -o jsonpath='{.metadata.annotations.kubernetes\.io/change-cause}' | grep -q '^autorollback: rolled back' &&
   [[ "$pr" == yes ]]; then
  say "Demo passed: autorollback rolled shop back from v2 to v1 and opened the revert pull request, and rolled the DaemonSet node-agent back to v1."
else
  echo "demo: the Deployment or the DaemonSet was not rolled back" >&2
  exit 1
fi
