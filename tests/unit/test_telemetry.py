"""The metric label scheme (one for every kind) and forget() with its label tuples."""

from prometheus_client import REGISTRY

from autorollback import telemetry
from autorollback.workloads.deployment import DEPLOYMENTS


def _samples(metric_name: str, /, **labels: str) -> list[dict[str, str]]:
    return [
        s.labels
        for metric in REGISTRY.collect()
        for s in metric.samples
        if s.name == metric_name and labels.items() <= s.labels.items()
    ]


def test_every_per_workload_series_is_labelled_kind_namespace_name() -> None:
    assert telemetry.failed_rollouts._labelnames == ("kind", "namespace", "name")
    assert telemetry.rollbacks._labelnames == ("kind", "namespace", "name", "result", "reason")
    assert telemetry.last_rollback._labelnames == ("kind", "namespace", "name")
    assert telemetry.invalid_annotations._labelnames == ("kind", "namespace", "name", "key")
    for per_namespace in (telemetry.reaction_seconds, telemetry.recovery_seconds, telemetry.opted_in):
        assert per_namespace._labelnames == ("kind", "namespace")
    assert telemetry.opted_in._name == "autorollback_opted_in_workloads"


def test_forget_removes_the_series_of_one_workload_only() -> None:
    kind, ns = DEPLOYMENTS.kind, "unit-telemetry"
    series: set[tuple[str, ...]] = set()
    for name in ("web", "api"):
        telemetry.rollbacks.labels(kind, ns, name, "success", "ProgressDeadlineExceeded").inc()
        telemetry.failed_rollouts.labels(kind, ns, name).inc()
        telemetry.last_rollback.labels(kind, ns, name).set(1)
        telemetry.invalid_annotations.labels(kind, ns, name, "autorollback.io/mode").inc()
        if name == "web":
            series |= {
                ("rollbacks", kind, ns, name, "success", "ProgressDeadlineExceeded"),
                ("failed_rollouts", kind, ns, name),
                ("last_rollback", kind, ns, name),
                ("invalid_annotations", kind, ns, name, "autorollback.io/mode"),
            }
    sample = _samples("autorollback_rollbacks_total", namespace=ns, name="web")
    assert sample == [
        {
            "kind": "Deployment",
            "namespace": ns,
            "name": "web",
            "result": "success",
            "reason": "ProgressDeadlineExceeded",
        }
    ]
    telemetry.forget(series | {("rollbacks", kind, ns, "web", "skipped", "paused")})  # never set: ignored
    for metric in (
        "autorollback_rollbacks_total",
        "autorollback_failed_rollouts_total",
        "autorollback_last_rollback_timestamp_seconds",
        "autorollback_invalid_annotations_total",
    ):
        assert not _samples(metric, namespace=ns, name="web")
        assert len(_samples(metric, kind=kind, namespace=ns, name="api")) == 1
    telemetry.forget(series)  # twice: nothing left to remove, no error


def test_series_known_before_the_first_event_start_at_zero() -> None:
    """A dashboard panel shows 0, not nothing, and the first event is an increase rate() sees."""
    queries = {s["result"]: v for s, v in _values("autorollback_prometheus_queries_total")}
    assert queries.keys() >= {"ok", "error"}
    reverts = {(s["result"], s["reason"]) for s, _ in _values("autorollback_revert_prs_total")}
    assert reverts >= {("opened", ""), ("exists", ""), ("planned", "")}
    ns = "unit-telemetry-opt-in"
    assert not _samples("autorollback_reaction_seconds_count", namespace=ns)
    telemetry.namespace_opted_in(DEPLOYMENTS.kind, ns)
    for histogram in ("autorollback_reaction_seconds", "autorollback_recovery_seconds"):
        assert [v for _, v in _values(f"{histogram}_count", kind="Deployment", namespace=ns)] == [0]
        assert all(v == 0 for _, v in _values(f"{histogram}_bucket", namespace=ns))


def _values(metric_name: str, /, **labels: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for metric in REGISTRY.collect()
        for s in metric.samples
        if s.name == metric_name and labels.items() <= s.labels.items()
    ]
