#!/usr/bin/env bash
# Builds the local control plane binaries (and helm) from the Go module proxy, once per version.
# Usage: hack/build-tools.sh [tool...]
#   tools: kube etcd kwok helm promtool prometheus gitea monitoring_crds gitops_crds prism (default: all of them)
# Prints nothing on a cache hit. Binaries land in $AUTOROLLBACK_CACHE/bin/<tool>-<version>/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0 GOTOOLCHAIN=local

log() { echo "build-tools: $*" >&2; }

have() { # have DIR BIN... -> all present and executable
  local dir="$1"; shift
  for b in "$@"; do [[ -x "$dir/$b" ]] || return 1; done
}

# go_install OUT LDFLAGS PACKAGE@VERSION...: install into OUT, which appears only when complete.
go_install() {
  local out="$1" ld="$2"; shift 2
  mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath -ldflags "$ld" "$@"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_kube() {
  local out="$bin_kube"
  have "$out" kube-apiserver kube-controller-manager kube-scheduler kubectl && return 0
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $KUBE_VERSION (several minutes the first time)"
  local work="$cache/src/kubernetes-$KUBE_VERSION"
  rm -rf "$work" && mkdir -p "$work" && cd "$work"
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local staging="v0.${KUBE_VERSION#v1.}"
  go mod init autorollback.local/kube-build >/dev/null 2>&1
  # The staging modules are exactly kubernetes' own v0.0.0 k8s.io requirements.
  local gomod
  gomod="$(module_field "k8s.io/kubernetes@$KUBE_VERSION" GoMod)"
  {
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
  } >>go.mod
  cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  go mod tidy -e >/dev/null 2>&1 || true
  local ld="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  mkdir -p "$out.tmp"
  go build -trimpath -ldflags "$ld" -o "$out.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_etcd() {
  local out="$bin_etcd"
  have "$out" etcd && return 0
  log "building etcd $ETCD_VERSION"
  local work="$cache/src/etcd-$ETCD_VERSION"
  rm -rf "$work" && mkdir -p "$work" && cd "$work"
  go mod init autorollback.local/etcd-build >/dev/null 2>&1
  echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION" >>go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
  go mod tidy -e >/dev/null 2>&1 || true
  mkdir -p "$out.tmp"
  go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_kwok() {
  have "$bin_kwok" kwok kwokctl && return 0
  log "building kwok, kwokctl $KWOK_VERSION"
  go_install "$bin_kwok" "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

build_helm() {
  have "$bin_helm" helm && return 0
  log "building helm $HELM_VERSION"
  # Like helm's own Makefile: stamp the version and the Kubernetes version it assumes offline.
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" pkg minor="${KUBE_VERSION#v1.}"
  minor="${minor%%.*}"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ld+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  go_install "$bin_helm" "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

build_promtool() {
  have "$bin_promtool" promtool && return 0
  log "building promtool $PROMETHEUS_VERSION"
  go_install "$bin_promtool" "-s -w" "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
}

# The Prometheus server the metric-check tests query, from the same module as promtool. No build
# tag: without `builtinassets` the web UI is read from ./web/ui/static at request time, and only the
# UI pages fail without it; the HTTP API (/api/v1/*, /-/ready, /-/reload) needs no assets. Its own
# folder: promtool's build replaces its folder whole, and the two may build side by side.
# Measured on 2 cores shared with a test run, empty Go build cache: promtool 292 s, then this 61 s
# (the packages they share are compiled once); this alone 355 s. A cache hit costs nothing.
build_prometheus() {
  have "$bin_prometheus" prometheus && return 0
  log "building prometheus $PROMETHEUS_VERSION (about 1 minute after promtool, 6 alone)"
  go_install "$bin_prometheus" "-s -w" "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION"
}

# Gitea with SQLite (CGO), from its Go module through a wrapper module carrying Gitea's own
# replace lines; no frontend (the API needs only options/locale, copied next to the binary).
build_gitea() {
  local out="$bin_gitea"
  have "$out" gitea && [[ -d "$out/static/options/locale" ]] && return 0
  log "building gitea $GITEA_VERSION (several minutes the first time)"
  local work="$cache/src/gitea-$GITEA_VERSION" gomod dir
  rm -rf "$work" && mkdir -p "$work" && cd "$work"
  gomod="$(module_field "code.gitea.io/gitea@$GITEA_VERSION" GoMod)"
  dir="$(module_field "code.gitea.io/gitea@$GITEA_VERSION" Dir)"
  {
    echo "module autorollback.local/gitea-build"
    echo
    echo "go $(awk '$1 == "go" {print $2; exit}' "$gomod")"
    echo
    echo "require code.gitea.io/gitea $GITEA_VERSION"
    echo
    echo "tool code.gitea.io/gitea"
    echo
    grep -E '^replace ' "$gomod"
  } >go.mod
  local tags="sqlite sqlite_unlock_notify"
  CGO_ENABLED=1 GOFLAGS="$GOFLAGS -modcacherw" go list -mod=mod -deps -tags "$tags" code.gitea.io/gitea >/dev/null
  mkdir -p "$out.tmp/static/options"
  CGO_ENABLED=1 CGO_CFLAGS="-O2 -g -DSQLITE_MAX_VARIABLE_NUMBER=32766" GOFLAGS="$GOFLAGS -modcacherw" \
    go build -tags "$tags" -ldflags "-s -w -X main.Version=${GITEA_VERSION#v} -X 'main.Tags=$tags'" \
    -o "$out.tmp/gitea" code.gitea.io/gitea
  cp -r "$dir/options/locale" "$out.tmp/static/options/"
  chmod -R u+w "$out.tmp/static"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# Argo CD's Application and Flux's Kustomization and GitRepository CRDs, as their modules ship them.
build_gitops_crds() {
  local out="$cache/crds/gitops-argocd-$ARGOCD_VERSION-flux-$FLUX_KUSTOMIZE_VERSION-$FLUX_SOURCE_VERSION"
  [[ -s "$out/applications.yaml" && -s "$out/kustomizations.yaml" && -s "$out/gitrepositories.yaml" ]] && return 0
  log "fetching the Argo CD $ARGOCD_VERSION and Flux CRDs"
  local argo kustomize source
  argo="$(module_field "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" Dir)"
  kustomize="$(module_field "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_VERSION" Dir)"
  source="$(module_field "github.com/fluxcd/source-controller@$FLUX_SOURCE_VERSION" Dir)"
  mkdir -p "$out.tmp"
  cp "$argo/manifests/crds/application-crd.yaml" "$out.tmp/applications.yaml"
  cp "$kustomize/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml" "$out.tmp/kustomizations.yaml"
  cp "$source/config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml" "$out.tmp/gitrepositories.yaml"
  chmod -R u+w "$out.tmp"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# Prism (a validating mock server) and GitHub's published OpenAPI description, from npm.
build_prism() {
  local out="$cache/npm/prism-$PRISM_VERSION-octokit-$OCTOKIT_OPENAPI_VERSION"
  [[ -x "$out/node_modules/.bin/prism" && -s "$out/node_modules/@octokit/openapi/generated/api.github.com.json" ]] && return 0
  log "installing prism $PRISM_VERSION and @octokit/openapi $OCTOKIT_OPENAPI_VERSION from npm"
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  npm install --prefix "$out.tmp" --no-audit --no-fund --loglevel=error \
    "@stoplight/prism-cli@$PRISM_VERSION" "@octokit/openapi@$OCTOKIT_OPENAPI_VERSION" >/dev/null
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# The ServiceMonitor and PrometheusRule CRDs, as the prometheus-operator module ships them.
build_monitoring_crds() {
  local out="$cache/crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
  [[ -s "$out/servicemonitors.yaml" && -s "$out/prometheusrules.yaml" ]] && return 0
  log "fetching the prometheus-operator $PROMETHEUS_OPERATOR_VERSION CRDs"
  local dir
  dir="$(module_field "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" Dir)"
  mkdir -p "$out.tmp"
  cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "$out.tmp/servicemonitors.yaml"
  cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" "$out.tmp/prometheusrules.yaml"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# Independent tools build side by side: the downloads-only ones at once, the Go builds two at a
# time (each go build already uses every core; a pair overlaps one's downloads with the other's
# compiling). AUTOROLLBACK_BUILD_JOBS=1 builds one after the other. prometheus comes well after
# promtool: two go commands compiling the same packages at once each compile them.
tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=(kube gitea promtool helm etcd kwok prometheus monitoring_crds gitops_crds prism)
jobs_max="${AUTOROLLBACK_BUILD_JOBS:-2}"
pids=() names=() failed=()
for t in "${tools[@]}"; do
  case "$t" in monitoring_crds|gitops_crds|prism) ;; *)
    while (( $(jobs -rp | wc -l) >= jobs_max )); do wait -n || true; done ;;
  esac
  ( "build_$t" ) & pids+=($!) names+=("$t")
done
for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${names[$i]}"); done
if ((${#failed[@]})); then log "failed: ${failed[*]}"; exit 1; fi
