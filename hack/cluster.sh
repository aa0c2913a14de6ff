#!/usr/bin/env bash
# The local test control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
# kwok (two fake nodes) as local processes, orchestrated by `kwokctl --runtime binary`.
# Usage: hack/cluster.sh up|down|status
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$lib_root"
state="$root/.cluster"
kubeconfig="$state/kubeconfig"
name=autorollback
kubectl="$bin_kube/kubectl"
export KWOK_WORKDIR="$state/kwok" KWOK_KUBE_VERSION="$KUBE_VERSION"

log() { echo "cluster: $*" >&2; }
kwokctl() { "$bin_kwok/kwokctl" --name "$name" "$@"; }

healthy() {
  [[ -s "$kubeconfig" && -x "$kubectl" ]] &&
    "$kubectl" --kubeconfig "$kubeconfig" --request-timeout=5s get --raw /readyz >/dev/null 2>&1
}

# kwokctl drops every default Stage once any Stage is given, so hand it the defaults of the
# pinned kwok version (from its Go module) next to ours.
stages() {
  local dir
  dir="$(module_field "sigs.k8s.io/kwok@$KWOK_VERSION" Dir)"
  local f
  for f in "$dir/kustomize/stage/node/fast/node-initialize.yaml" \
           "$dir/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
           "$dir/kustomize/stage/pod/fast/pod-ready.yaml" \
           "$dir/kustomize/stage/pod/fast/pod-complete.yaml" \
           "$dir/kustomize/stage/pod/fast/pod-delete.yaml" \
           "$root"/tests/cluster/stages/*.yaml; do
    echo "---"
    cat "$f"
  done
}

wait_nodes() {
  local deadline=$((SECONDS + 120))
  until [[ "$("$kubectl" --kubeconfig "$kubeconfig" get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c True)" -ge 2 ]]; do
    ((SECONDS < deadline)) || { log "nodes did not become Ready"; return 1; }
    sleep 1
  done
  # Pods need the default ServiceAccount, which the controller-manager creates per namespace.
  until "$kubectl" --kubeconfig "$kubeconfig" -n default get serviceaccount default >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { log "default ServiceAccount never appeared"; return 1; }
    sleep 1
  done
}

up() {
  "$root/hack/build-tools.sh" kube etcd kwok
  if healthy; then
    log "already running (kubeconfig: $kubeconfig)"
    return 0
  fi
  if [[ -d "$state/kwok" ]]; then
    log "removing a stopped cluster's state"
    kwokctl delete cluster >/dev/null 2>&1 || true
    rm -rf "$state"
  fi
  mkdir -p "$state"
  stages >"$state/stages.yaml"
  log "starting kube $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION"
  kwokctl create cluster --runtime binary \
    --kube-apiserver-binary "$bin_kube/kube-apiserver" \
    --kube-controller-manager-binary "$bin_kube/kube-controller-manager" \
    --kube-scheduler-binary "$bin_kube/kube-scheduler" \
    --kwok-controller-binary "$bin_kwok/kwok" \
    --etcd-binary "$bin_etcd/etcd" \
    --kubeconfig "$kubeconfig" \
    --config "$state/stages.yaml" \
    --wait 180s >"$state/create.log" 2>&1 || { cat "$state/create.log" >&2; return 1; }
  kwokctl scale node --replicas 2 >>"$state/create.log" 2>&1
  wait_nodes
  log "ready: kubectl --kubeconfig $kubeconfig get nodes"
}

down() {
  if [[ -x "$bin_kwok/kwokctl" && -d "$state/kwok" ]]; then
    kwokctl delete cluster >/dev/null 2>&1 || true
  fi
  rm -rf "$state"
  log "stopped and removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) healthy && echo running || { echo stopped; exit 1; } ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
