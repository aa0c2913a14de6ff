#!/usr/bin/env bash
# make demo-metrics: the local control plane, a real Prometheus on loopback scraping a tiny exporter
# that plays the app's traffic (hack/demo-traffic.py: 0% errors for v1's pods, 30% for v2's once
# they have served for a while), the operator with an `error-ratio` check, shop v1 baked and passed,
# v2 released: it rolls out and becomes available, then serves errors, fails its check three times
# in a row and is rolled back to v1. Everything it started is stopped on exit (the local control plane
# too, if it was not running before; DEMO_KEEP_CLUSTER=1 keeps it). Exits 0 only if the operator
# really rolled the Deployment back because of its check.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$lib_root"
cd "$root"
export KUBECONFIG="$root/.cluster/kubeconfig"
kubectl="$bin_kube/kubectl"
ns=autorollback-demo-metrics
metrics_port="${DEMO_METRICS_PORT:-19190}"
health_port="${DEMO_HEALTH_PORT:-18180}"
prometheus_port="${DEMO_PROMETHEUS_PORT:-19191}"
exporter_port="${DEMO_EXPORTER_PORT:-19192}"
bake="${DEMO_BAKE_SECONDS:-60}"
errors_after="${DEMO_ERRORS_AFTER:-20}"
good=registry.example/shop:1.0.0
bad=registry.example/shop:2.0.0
work="$root/.demo-metrics" # logs, the catalog, Prometheus's config (its data is removed on exit)
oplog="$work/operator.log"
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
event() { k get events --field-selector "involvedObject.name=shop,reason=$1" -o jsonpath='{.items[0].message}{"\n"}'; }
available() { # available IMAGE: every replica updated and available, and the rollout complete
  local state img gen status
  state="$(k get deployment shop -o jsonpath='{.spec.template.spec.containers[0].image} {.metadata.generation}/{.status.observedGeneration} {.status.availableReplicas}/{.status.updatedReplicas}/{.spec.replicas}/{.status.conditions[?(@.type=="Progressing")].reason}')"
  read -r img gen status <<<"$state"
  [[ "$img" == "$1" && "${gen%/*}" == "${gen#*/}" && "$status" == "3/3/3/NewReplicaSetAvailable" ]]
}
prom() { # prom QUERY: the values of an instant query, one line per series
  curl -fsS --get "http://127.0.0.1:$prometheus_port/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json, sys; [print(s["value"][1]) for s in json.load(sys.stdin)["data"]["result"]]'
}
evaluations() { # evaluations RESULT: the operator's count of the check's evaluations with that result
  curl -fsS "http://127.0.0.1:$metrics_port/metrics" |
    awk -v r="result=\"$1\"" '/^autorollback_check_evaluations_total\{/ && index($0, r) && index($0, "name=\"shop\"") {n += $NF} END {print n + 0}'
}
check_value() {
  curl -fsS "http://127.0.0.1:$metrics_port/metrics" |
    awk '/^autorollback_check_value\{/ && index($0, "name=\"shop\"") {print $NF}'
}
manifest() { # manifest IMAGE
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: $ns
  annotations:
    autorollback.io/enabled: "true"
    autorollback.io/checks: error-ratio
    autorollback.io/check.error-ratio.threshold: "0.1"
    autorollback.io/bake-seconds: "$bake"
    kubernetes.io/change-cause: "release $1"
spec:
  replicas: 3
  progressDeadlineSeconds: 60
  selector: {matchLabels: {app: shop}}
  template:
    metadata:
      labels:
        app: shop
    spec:
      containers:
      - name: shop
        image: $1
YAML
}

pids=()
cluster_started=no
exec 3>&1 4>&2 # the trap may run inside a redirection (wait_until's): it writes here
cleanup() {
  local status=$?
  set +e
  exec 1>&3 2>&4
  ((${#pids[@]})) && kill -TERM "${pids[@]}" 2>/dev/null
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$work/prometheus-data"
  if [[ "$cluster_started" == yes && "${DEMO_KEEP_CLUSTER:-0}" != 1 ]]; then
    echo "demo: stopping the local control plane it started (DEMO_KEEP_CLUSTER=1 keeps it)"
    hack/cluster.sh down
  elif [[ -s "$KUBECONFIG" ]]; then
    "$kubectl" delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1
  fi
  echo "demo: stopped the operator, Prometheus and the traffic exporter; logs in $work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Starting the local control plane (the first run builds it: several minutes) and Prometheus"
hack/cluster.sh status >/dev/null 2>&1 || cluster_started=yes
make --no-print-directory cluster-up .venv/bin/autorollback
hack/build-tools.sh prometheus
rm -rf "$work" && mkdir -p "$work"
"$kubectl" delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
"$kubectl" create namespace "$ns" >/dev/null
wait_until 30 "the default ServiceAccount" k get serviceaccount default

say "Starting the app's traffic: a tiny exporter on 127.0.0.1:$exporter_port (hack/demo-traffic.py)"
echo "every pod of $ns serves 20 requests a second: 0% errors on $good; on $bad 0% for its first ${errors_after} s, then 30%"
python3 hack/demo-traffic.py --namespace "$ns" --port "$exporter_port" --kubectl "$kubectl" \
  --error-share "$bad=0.3" --errors-after "$errors_after" >"$work/traffic.log" 2>&1 &
pids+=($!)

# JSON is YAML: the config needs no YAML tool.
cat >"$work/prometheus.yml" <<JSON
{"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
 "scrape_configs": [{"job_name": "shop", "honor_labels": true,
                     "static_configs": [{"targets": ["127.0.0.1:$exporter_port"]}]}]}
JSON
say "Starting Prometheus on 127.0.0.1:$prometheus_port, scraping the exporter every second"
# --scrape.discovery-reload-interval (hidden): take the target at once, not after 5 s.
"$bin_prometheus/prometheus" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus-data" \
  --web.listen-address="127.0.0.1:$prometheus_port" --scrape.discovery-reload-interval=200ms \
  >"$work/prometheus.log" 2>&1 &
pids+=($!)
up() { [[ "$(prom 'up{job="shop"}')" == 1 ]]; }
wait_until 60 "Prometheus to scrape the exporter" up
echo "up{job=\"shop\"} = 1"

cat >"$work/catalog.yaml" <<'YAML'
error-ratio:                       # by the pod label the metrics carry
  query: >-
    sum(rate(http_requests_total{namespace="{{namespace}}",pod=~"{{pods}}",code=~"5.."}[{{window}}]))
    / sum(rate(http_requests_total{namespace="{{namespace}}",pod=~"{{pods}}"}[{{window}}]))
  failIf: result > threshold
  params: {threshold: {default: 0.05, min: 0, max: 0.5}}
  intervalSeconds: 5               # the demo's pace (default 30)
  failures: 3
  window: 20s
  minimum:                         # below this much traffic an evaluation is "no data"
    query: sum(increase(http_requests_total{namespace="{{namespace}}",pod=~"{{pods}}"}[{{window}}]))
    atLeast: 20
YAML
say "Starting the operator with Prometheus and the platform's check catalog (log: $oplog)"
echo "autorollback run -n $ns --prometheus-url http://127.0.0.1:$prometheus_port --checks-catalog $work/catalog.yaml"
sed 's/^/    /' "$work/catalog.yaml"
.venv/bin/autorollback run -n "$ns" --metrics-port "$metrics_port" --health-port "$health_port" \
  --log-format console --prometheus-url "http://127.0.0.1:$prometheus_port" \
  --checks-catalog "$work/catalog.yaml" >"$oplog" 2>&1 &
pids+=($!)
wait_until 60 "the operator" curl -fsS "http://127.0.0.1:$health_port/readyz"

say "Releasing shop v1 ($good) with autorollback.io/checks: error-ratio (threshold 0.1), bake-seconds: $bake"
manifest "$good" | "$kubectl" apply -f - >/dev/null
wait_until 90 "v1 to become available" available "$good"
echo "shop is available: revision $(revision), image $(image); baking for $bake s"
wait_until $((bake + 90)) "v1's bake to pass" has_event BakePassed
say "v1 baked: BakePassed"
event BakePassed
echo "v1's error ratio in Prometheus: $(prom "sum(rate(http_requests_total{namespace=\"$ns\",code=~\"5..\"}[20s])) / sum(rate(http_requests_total{namespace=\"$ns\"}[20s]))")"

say "Releasing shop v2 ($bad): it starts fine, and serves 30% errors after ${errors_after} s"
declare -A before
for r in pass fail no_data error; do before[$r]=$(evaluations $r); done
manifest "$bad" | "$kubectl" apply -f - >/dev/null
v2_done() { available "$bad" || has_event RolledBack; }
wait_until 90 "v2 to become available" v2_done
if has_event RolledBack; then
  say "v2 failed its check before this script saw its rollout complete (a slow machine)"
else
  say "v2's rollout completed: revision $(revision), $(image), 3/3 available"
  k rollout status deployment/shop --timeout=5s
fi

say "v2 bakes: the operator evaluates error-ratio on v2's pods every 5 s (its metrics: evaluations by result, last value)"
since_v2() { echo $(($(evaluations "$1") - before[$1])); }
seen=""
show_evaluations() { # one line whenever the counts change
  local now
  now="pass=$(since_v2 pass) fail=$(since_v2 fail) no_data=$(since_v2 no_data) error=$(since_v2 error)"
  if [[ "$now" != "$seen" ]]; then
    seen="$now"
    printf '[%3ds] evaluations of error-ratio on v2: %s; last value %s\n' "$((SECONDS - started))" "$now" "$(check_value)"
  fi
}
deadline=$((SECONDS + 120))
until has_event RolledBack; do
  show_evaluations
  if ((SECONDS > deadline)); then echo "demo: timed out waiting for the rollback" >&2; exit 1; fi
  sleep 1
done
show_evaluations

say "Failure detected: three failed evaluations in a row (RolloutFailed)"
event RolloutFailed
say "Rolled back (RolledBack): now revision $(revision), image $(image)"
event RolledBack
wait_until 90 "shop to be available again on v1" available "$good"
say "shop is fully available again on v1"

say "Events on the Deployment (kubectl describe deployment shop)"
k get events --field-selector involvedObject.name=shop --sort-by=.metadata.creationTimestamp \
  -o custom-columns='TYPE:.type,REASON:.reason,MESSAGE:.message' | grep -Ev 'ScalingReplicaSet' || true

say "kubectl rollout history deployment/shop"
k rollout history deployment/shop

say "Metrics (curl http://127.0.0.1:$metrics_port/metrics)"
curl -fsS "http://127.0.0.1:$metrics_port/metrics" |
  grep -E '^autorollback_(check_evaluations_total|check_value|bakes_in_progress|prometheus_queries_total|failed_rollouts|rollbacks)' || true

say "The operator's decision (from its log)"
grep -E 'bake passed|rollback decision|rollout failed|metric check' "$oplog" || true

if [[ "$(image)" == "$good" ]] &&
   k get deployment shop -o jsonpath='{.metadata.annotations.kubernetes\.io/change-cause}' | grep -q 'MetricCheckFailed$' &&
   event RolloutFailed | grep -q 'MetricCheckFailed: error-ratio'; then
  say "Demo passed: v2 became available, then failed its error-ratio check, and autorollback rolled shop back to v1."
else
  echo "demo: the Deployment was not rolled back by its check" >&2
  exit 1
fi
