"""Prometheus telemetry of the operator itself (served on /metrics). Names follow the Prometheus
naming conventions.

One label scheme for every kind of workload: per-workload series carry `kind`, `namespace` and
`name`; per-namespace series carry `kind` and `namespace`. `kind` is the workload's Kubernetes kind
("Deployment"), so other kinds fit the same series without renaming them again."""

import contextlib

from prometheus_client import Counter, Gauge, Histogram, Info, disable_created_metrics

from autorollback import __version__

disable_created_metrics()  # *_created series only double the output for these counters

WORKLOAD = ["kind", "namespace", "name"]  # the labels of per-workload series, first and in this order
NAMESPACE = ["kind", "namespace"]  # the labels of per-namespace series

build_info = Info("autorollback_build", "Version of the running operator.")
build_info.info({"version": __version__})

failed_rollouts = Counter(
    "autorollback_failed_rollouts_total",
    "Failed rollouts detected on opted-in workloads.",
    WORKLOAD,
)
rollbacks = Counter(
    "autorollback_rollbacks_total",
    "Rollback decisions by result (success, skipped, impossible, abandoned, failed, dry_run) and reason.",
    [*WORKLOAD, "result", "reason"],
)
reaction_seconds = Histogram(
    "autorollback_reaction_seconds",
    "Time from when this process first saw a rollout's progress deadline exceeded (its watch) to the accepted "
    "rollback patch, on its monotonic clock.",
    NAMESPACE,
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
recovery_seconds = Histogram(
    "autorollback_recovery_seconds",
    "Time from the rollback patch to the workload being fully available again.",
    NAMESPACE,
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800),
)
opted_in = Gauge(
    "autorollback_opted_in_workloads",
    "Workloads in scope with a valid autorollback.io/enabled=true annotation.",
    NAMESPACE,
)
last_rollback = Gauge(
    "autorollback_last_rollback_timestamp_seconds",
    "Unix time of the last successful automatic rollback of a workload.",
    WORKLOAD,
)
invalid_annotations = Counter(
    "autorollback_invalid_annotations_total",
    "Distinct invalid autorollback.io/* annotation values seen.",
    [*WORKLOAD, "key"],
)
api_errors = Counter(
    "autorollback_api_errors_total",
    "Kubernetes API requests that failed, by the work they were for and the HTTP status (0: no answer). "
    "The work is tried again with backoff.",
    ["operation", "code"],
)
reverts = Counter(
    "autorollback_revert_prs_total",
    "Git revert pull requests after rollbacks, by result (opened, exists, planned, not_proposed, failed) and reason.",
    ["result", "reason"],
)
revert_seconds = Histogram(
    "autorollback_revert_seconds",
    "Time from the rollback to its revert pull request being open.",
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300),
)
leader = Gauge("autorollback_leader", "1 while this replica holds the leader Lease (or leader election is off).")
leader.set(1)
watch_events = Counter("autorollback_watch_events_total", "Workload watch events received.")
watch_healthy = Gauge(
    "autorollback_watch_healthy",
    "1 while the workload watch delivers changes, 0 when it has gone stale (see /healthz).",
)
watch_healthy.set(1)
api_requests = Counter(
    "autorollback_api_requests_total",
    "API requests the operator made itself (kopf's workload watches not included), by verb.",
    ["verb"],
)


def count_api_request(verb: str) -> None:
    """kube.count in the operator's process."""
    api_requests.labels(verb).inc()


pod_watches = Gauge(
    "autorollback_pod_watches",
    "Pod watches open for fast failure signals (one per fail-fast workload with a rollout in progress).",
)

check_evaluations = Counter(
    "autorollback_check_evaluations_total",
    "Metric check evaluations during bakes, by check and result (pass, fail, no_data, error).",
    [*WORKLOAD, "check", "result"],
)
check_value = Gauge(
    "autorollback_check_value",
    "The value of a metric check's last evaluation that returned one.",
    [*WORKLOAD, "check"],
)
bakes = Gauge(
    "autorollback_bakes_in_progress",
    "Revisions whose metric checks are being evaluated now (rolling out, or baking after completion).",
)
prometheus_queries = Counter(
    "autorollback_prometheus_queries_total",
    "Queries sent to Prometheus for metric checks, by result (ok: an answer, even an empty one; error: none).",
    ["result"],
)

# Counters whose label values are all known before the first event start at zero, so that a
# dashboard panel or a rate() shows 0 (and the first event counts as an increase) rather than nothing.
for _result in ("ok", "error"):
    prometheus_queries.labels(_result)
for _result in ("opened", "exists", "planned"):  # their reason is always ""
    reverts.labels(_result, "")


def namespace_opted_in(kind: str, namespace: str) -> None:
    """A workload of this kind opted in in this namespace: its per-namespace histograms exist from
    now on (zero), so that the first reaction and recovery are an increase that rate() sees."""
    reaction_seconds.labels(kind, namespace)
    recovery_seconds.labels(kind, namespace)


_PER_WORKLOAD = {
    "check_evaluations": check_evaluations,
    "check_value": check_value,
    "invalid_annotations": invalid_annotations,
    "failed_rollouts": failed_rollouts,
    "rollbacks": rollbacks,
    "last_rollback": last_rollback,
}


def forget(series: set[tuple[str, ...]]) -> None:
    """Remove a deleted workload's series, so that their number follows the live workloads.

    Each entry is (metric, kind, namespace, name, *other labels), as the series were labelled."""
    for metric, *labels in series:
        with contextlib.suppress(KeyError):
            _PER_WORKLOAD[metric].remove(*labels)
