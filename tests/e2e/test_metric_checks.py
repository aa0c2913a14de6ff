"""Metric checks (autorollback.io/checks) against a real Prometheus: a release that becomes available
and then fails its checks is rolled back through the same decision as any failure; blips, empty
results, old pods' series and a Prometheus outage are not failures; the bake resumes after a restart."""

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import kit
from .prometheus import Prometheus
from .test_rollback import ON, V1, V2, available, wait_event

RATIO = "app_error_ratio"
CATALOG = {
    "error-ratio": {
        "query": f'max({RATIO}{{namespace="{{{{namespace}}}}",pod=~"{{{{pods}}}}"}})',
        "failIf": "result > threshold",
        "params": {"threshold": {"default": 0.05, "min": 0, "max": 1}},
        "intervalSeconds": 5,
        "failures": 3,
    },
}
BAKE = "20"
CHECKS = {**ON, "autorollback.io/checks": "error-ratio", "autorollback.io/bake-seconds": BAKE}


class Traffic:
    """Sets each live pod's error ratio in the exporter, by the image its ReplicaSet runs, once a
    second (pods come and go during a rollout); an image with no ratio has no series."""

    def __init__(self, prometheus: Prometheus, ns: str):
        self.prometheus, self.ns = prometheus, ns
        self.ratio: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            pods = kit.kubectl("-n", self.ns, "get", "pods", "-o", "json", check=False)
            if pods.returncode != 0:
                continue
            live = set()
            for pod in json.loads(pods.stdout)["items"]:
                name, image = pod["metadata"]["name"], pod["spec"]["containers"][0]["image"]
                labels = {"namespace": self.ns, "pod": name}
                live.add(name)
                if image in self.ratio:
                    self.prometheus.exporter.set(RATIO, labels, self.ratio[image])
                else:
                    self.prometheus.exporter.remove(RATIO, labels)
            for gone in {p for p in self._pods() if p not in live}:
                self.prometheus.exporter.remove(RATIO, {"namespace": self.ns, "pod": gone})

    def _pods(self) -> set[str]:
        return {
            dict(labels)["pod"]
            for (name, labels) in list(self.prometheus.exporter._series)
            if name == RATIO and dict(labels).get("namespace") == self.ns
        }

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def traffic(prometheus: Prometheus, namespace: str) -> Iterator[Traffic]:
    t = Traffic(prometheus, namespace)
    yield t
    t.stop()


@pytest.fixture
def checked(operator_factory, prometheus: Prometheus, tmp_path: Path):
    """An operator with Prometheus and the catalog configured, for one namespace, signing its
    checkpoints with a Secret's key as the chart runs it (the next process resumes its bakes)."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(CATALOG))

    def start(ns: str) -> kit.Operator:
        return operator_factory(
            "-n",
            ns,
            extra=(
                *("--prometheus-url", prometheus.url, "--checks-catalog", str(catalog)),
                *("--checkpoint-secret", "autorollback-checkpoint"),
            ),
            env={"POD_NAMESPACE": ns},
        )

    return start


def evaluations(op: kit.Operator, ns: str, result: str) -> float:
    return op.metric(
        "autorollback_check_evaluations_total", namespace=ns, name="web", check="error-ratio", result=result
    )


def current_rs(ns: str, image: str) -> dict:
    return next(r for r in kit.replicasets(ns, "web") if kit.image_of(r) == image)


def mark(rs: dict, key: str) -> str:
    return (rs["metadata"].get("annotations") or {}).get(f"autorollback.io/{key}", "")


@pytest.mark.slow
def test_three_consecutive_failed_checks_roll_back_an_available_release(namespace, checked, traffic) -> None:
    ns = namespace
    op = checked(ns)
    traffic.ratio = {V1: 0.0, V2: 0.4}
    kit.release(ns, "web", V1, annotations=CHECKS)
    available(ns, V1, 1)
    wait_event(ns, "BakePassed", timeout=120)
    assert "healthy-at" in json.dumps(current_rs(ns, V1)["metadata"]["annotations"])
    kit.release(ns, "web", V2, annotations=CHECKS)
    d = available(ns, V1, 3)
    failed = wait_event(ns, "RolloutFailed")["message"]
    assert "MetricCheckFailed: error-ratio 0.4 > 0.05 (3 consecutive)" in failed, failed
    assert d["metadata"]["annotations"]["kubernetes.io/change-cause"].endswith(": MetricCheckFailed")
    assert evaluations(op, ns, "fail") == 3
    bad = current_rs(ns, V2)
    assert mark(bad, "failed-reason").startswith(f"{bad['metadata']['name']} MetricCheckFailed: error-ratio")
    assert mark(bad, "bake"), "the streak was checkpointed on the ReplicaSet"
    # the restored revision is not judged by metrics again (no ping-pong), even while its pods are bad
    traffic.ratio = {V1: 0.9, V2: 0.4}
    time.sleep(12)
    assert kit.image_of(kit.get_deployment(ns, "web")) == V1
    assert kit.reasons(ns, "web").count("RolledBack") == 1


@pytest.mark.slow
def test_blips_old_pods_and_a_prometheus_outage_do_not_roll_back_and_the_bake_passes(
    namespace, checked, traffic, prometheus: Prometheus
) -> None:
    ns = namespace
    op = checked(ns)
    traffic.ratio = {V1: 0.9}  # the old pods are bad: their series must not count against the new ones
    kit.release(ns, "web", V1, annotations={**ON})
    available(ns, V1, 1)
    traffic.ratio = {V1: 0.9, V2: 0.0}
    kit.release(ns, "web", V2, annotations={**CHECKS, "autorollback.io/bake-seconds": "60"})
    available(ns, V2, 2)
    # one failed evaluation in three: never three in a row
    for _ in range(2):
        fails, passes = evaluations(op, ns, "fail"), evaluations(op, ns, "pass")
        kit.wait_for(lambda: evaluations(op, ns, "pass") > passes, 30, "a passing evaluation")
        traffic.ratio[V2] = 0.5
        kit.wait_for(lambda: evaluations(op, ns, "fail") > fails, 30, "a failed evaluation")
        traffic.ratio[V2] = 0.0
    # Prometheus goes away in the middle of the bake: errors neither count nor reset
    prometheus.stop()
    errors = wait_event(ns, "MetricCheckError", timeout=30)["message"]
    assert "error-ratio" in errors and "neither counts" in errors
    prometheus.start()
    passed = wait_event(ns, "BakePassed", timeout=90)["message"]
    assert "error-ratio" in passed
    assert kit.image_of(kit.get_deployment(ns, "web")) == V2
    assert "RolledBack" not in kit.reasons(ns, "web")
    good = current_rs(ns, V2)
    assert mark(good, "healthy-at").split(" ")[1:3] == ["revision", "2"], "healthy means baked"
    assert not mark(good, "bake"), "the checkpoint goes once the bake ended"


def test_no_data_for_the_whole_bake_is_unverified_not_healthy(namespace, checked, traffic) -> None:
    ns = namespace
    checked(ns)
    kit.release(ns, "web", V1, annotations=CHECKS)  # no series at all for its pods
    available(ns, V1, 1)
    no_data = wait_event(ns, "MetricCheckNoData")["message"]
    assert "returned no data" in no_data
    unverified = wait_event(ns, "BakeUnverified", timeout=120)["message"]
    assert "error-ratio" in unverified and "not marked healthy" in unverified
    rs = current_rs(ns, V1)
    assert mark(rs, "unverified-at").endswith("revision 1 checks error-ratio")
    assert not mark(rs, "healthy-at")
    assert "RolledBack" not in kit.reasons(ns, "web")


def test_a_restart_in_the_middle_of_a_bake_keeps_the_streak(namespace, checked, traffic) -> None:
    ns = namespace
    first = checked(ns)
    traffic.ratio = {V1: 0.0, V2: 0.3}
    kit.release(ns, "web", V1, annotations={**ON})
    available(ns, V1, 1)
    kit.release(ns, "web", V2, annotations={**CHECKS, "autorollback.io/check.error-ratio.threshold": "0.2"})
    kit.wait_for(lambda: evaluations(first, ns, "fail") >= 2, 60, "two failed evaluations")
    first.proc.kill()  # before the third: the streak lives on in the checkpoint
    first.proc.wait()
    assert " error-ratio=2 " in mark(current_rs(ns, V2), "bake") + " "
    second = checked(ns)
    available(ns, V1, 3)
    assert evaluations(second, ns, "fail") == 1, "one more failed evaluation completed the streak"
    assert "0.3 > 0.2 (3 consecutive)" in wait_event(ns, "RolloutFailed")["message"]


def test_dry_run_plans_once(namespace, checked, traffic) -> None:
    ns = namespace
    checked(ns)
    traffic.ratio = {V1: 0.0, V2: 0.4}
    kit.release(ns, "web", V1, annotations={**ON, "autorollback.io/mode": "dry-run"})
    available(ns, V1, 1)
    kit.release(ns, "web", V2, annotations={**CHECKS, "autorollback.io/mode": "dry-run"})
    planned = wait_event(ns, "RollbackPlanned")["message"]
    assert "would roll back from revision 2" in planned
    time.sleep(12)  # more than two intervals
    assert kit.reasons(ns, "web").count("RollbackPlanned") == 1
    assert kit.image_of(kit.get_deployment(ns, "web")) == V2


def test_checks_without_prometheus_or_unknown_checks_are_told_and_never_roll_back(
    namespace, operator_factory, checked
) -> None:
    ns = namespace
    operator_factory("-n", ns)
    kit.release(ns, "web", V1, annotations=CHECKS)
    told = wait_event(ns, "MetricChecksNotConfigured")["message"]
    assert "--prometheus-url" in told and "checks.catalog" in told


def test_an_unknown_check_is_an_invalid_annotation(namespace, checked) -> None:
    ns = namespace
    checked(ns)
    kit.release(ns, "web", V1, annotations={**ON, "autorollback.io/checks": "error-ratio,p99"})
    told = wait_event(ns, "InvalidAnnotation")["message"]
    assert "there is no check" in told and "error-ratio" in told
