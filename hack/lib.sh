# Shared by the hack/ scripts (source it): pinned versions, where the built tools live, module lookups.
lib_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.env
source "$lib_root/hack/versions.env"
cache="${AUTOROLLBACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/autorollback}"
bin_kube="$cache/bin/kubernetes-$KUBE_VERSION"
bin_etcd="$cache/bin/etcd-$ETCD_VERSION"
bin_kwok="$cache/bin/kwok-$KWOK_VERSION"
bin_helm="$cache/bin/helm-$HELM_VERSION"
bin_promtool="$cache/bin/prometheus-$PROMETHEUS_VERSION"
bin_prometheus="$cache/bin/prometheus-server-$PROMETHEUS_VERSION"
bin_gitea="$cache/bin/gitea-$GITEA_VERSION"

# module_field MODULE@VERSION FIELD: one field (Dir, GoMod) of `go mod download -json`.
module_field() {
  go mod download -json "$1" | python3 -c "import json, sys; print(json.load(sys.stdin)['$2'])"
}
