"""Metric checks (autorollback.io/checks) against a real Prometheus: a release that becomes available
and then fails its checks is rolled back through the same decision as any failure; blips, empty
results, old pods' series and a Prometheus outage are not failures; the bake resumes after a restart."""

import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import kit, test_status, test_workload_kinds as kinds
from .prometheus import Prometheus, alert_rule
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
    # relative: the new pods against the previous revision's pods still serving
    "error-vs-previous": {
        "query": f'max({RATIO}{{namespace="{{{{namespace}}}}",pod=~"{{{{pods}}}}"}})',
        "failIf": "result > baseline * factor",
        "params": {"factor": {"default": 1.5, "min": 1, "max": 10}},
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

    def start(ns: str, extra: tuple[str, ...] = ()) -> kit.Operator:
        return operator_factory(
            "-n",
            ns,
            extra=(
                *("--prometheus-url", prometheus.url, "--checks-catalog", str(catalog)),
                *("--checkpoint-secret", "autorollback-checkpoint"),
                *extra,
            ),
            env={"POD_NAMESPACE": ns},
        )

    return start


def evaluations(op: kit.Operator, ns: str, result: str, check: str = "error-ratio", name: str = "web") -> float:
    return op.metric("autorollback_check_evaluations_total", namespace=ns, name=name, check=check, result=result)


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
    op = checked(ns)
    kit.release(ns, "web", V1, annotations=CHECKS)  # no series at all for its pods
    available(ns, V1, 1)
    no_data = wait_event(ns, "MetricCheckNoData")["message"]
    assert "returned no data" in no_data
    gets, evaluated = op.metric("autorollback_api_requests_total", verb="GET"), evaluations(op, ns, "no_data")
    unverified = wait_event(ns, "BakeUnverified", timeout=120)["message"]
    gets = op.metric("autorollback_api_requests_total", verb="GET") - gets
    evaluated = evaluations(op, ns, "no_data") - evaluated
    # the cost of a quiet bake: the ReplicaSets and the pods are read again only when the Deployment
    # changed (or every streak.EVERY seconds), not at every evaluation (that was 2 GETs each)
    assert evaluated >= 2 and gets < evaluated, (gets, evaluated)
    assert "error-ratio" in unverified and "not marked healthy" in unverified
    rs = current_rs(ns, V1)
    assert mark(rs, "unverified-at").endswith("revision 1 checks error-ratio")
    assert not mark(rs, "healthy-at")
    assert "RolledBack" not in kit.reasons(ns, "web")


def test_a_restart_in_the_middle_of_a_bake_keeps_the_streak(namespace, checked, traffic, tmp_path: Path) -> None:
    ns = namespace
    reader = test_status.read_only(ns, tmp_path / "reader.kubeconfig")
    first = checked(ns)
    traffic.ratio = {V1: 0.0, V2: 0.3}
    kit.release(ns, "web", V1, annotations={**ON})
    available(ns, V1, 1)
    kit.release(ns, "web", V2, annotations={**CHECKS, "autorollback.io/check.error-ratio.threshold": "0.2"})
    kit.wait_for(lambda: evaluations(first, ns, "fail") >= 2, 60, "two failed evaluations")
    first.proc.kill()  # before the third: the streak lives on in the checkpoint
    first.proc.wait()
    assert " error-ratio=2 " in mark(current_rs(ns, V2), "bake") + " "
    # `autorollback status` (read-only) tells the bake under way, its checkpoint and what it checks
    row = test_status.rows(reader, ns)["web"]
    assert (row["revision"], row["state"], row["last_healthy"]) == (2, "baking", 1), row
    assert row["watching"] == "deadline 10s; checks error-ratio"
    detail = test_status.status(reader, "-n", ns, "web").stdout
    assert "State:         baking" in detail and " bake=" in detail and "error-ratio=2" in detail, detail
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


def test_a_relative_check_does_not_roll_back_a_shared_outage_but_a_worse_release(namespace, checked, traffic) -> None:
    ns = namespace
    op = checked(ns)
    traffic.ratio = {V1: 0.3, V2: 0.3}  # a shared outage: the old and the new pods equally bad
    kit.release(ns, "web", V1, annotations=ON, progress_deadline=600)
    available(ns, V1, 1)
    relative = {**ON, "autorollback.io/checks": "error-vs-previous"}
    # its pod never becomes Ready: the rollout stays under way, old and new pods side by side
    kit.release(ns, "web", V2, failure="not-ready", annotations=relative, progress_deadline=600)
    kit.wait_for(lambda: evaluations(op, ns, "pass", "error-vs-previous") >= 4, 60, "four passing evaluations")
    assert evaluations(op, ns, "fail", "error-vs-previous") == 0
    assert kit.image_of(kit.get_deployment(ns, "web")) == V2
    traffic.ratio[V1] = 0.0  # the outage ends, for the old pods: the new ones are worse
    available(ns, V1, 3)
    failed = wait_event(ns, "RolloutFailed")["message"]
    assert "MetricCheckFailed: error-vs-previous 0.3 > 0 (previous revision 0) (3 consecutive)" in failed, failed


def test_the_cluster_wide_cap_turns_further_metric_rollbacks_into_warnings(namespace, checked, traffic) -> None:
    ns = namespace
    checked(ns, extra=("--metric-rollbacks-max", "1", "--metric-rollbacks-window", "3600"))
    traffic.ratio = {V1: 0.0, V2: 0.4}  # every release of V2 fails its checks at once (a shared cause)
    for name in ("web", "api"):
        kit.release(ns, name, V1, annotations=ON)
    for name in ("web", "api"):
        available(ns, V1, 1, name=name)
    for name in ("web", "api"):
        kit.release(ns, name, V2, annotations=CHECKS)

    def outcomes() -> dict[str, list[str]] | None:
        got = {name: kit.reasons(ns, name) for name in ("web", "api")}
        done = [r for rs in got.values() for r in rs if r in ("RolledBack", "RollbackSkipped")]
        return got if len(done) == 2 else None

    got = kit.wait_for(outcomes, 90, "both releases decided")
    rolled = [n for n in got if "RolledBack" in got[n]]
    capped = [n for n in got if "RollbackSkipped" in got[n]]
    assert len(rolled) == 1 and len(capped) == 1, got
    skipped = wait_event(ns, "RollbackSkipped", name=capped[0])["message"]
    assert "1 metric-triggered rollback already happened in the last 3600 s" in skipped, skipped
    assert "would be rolled back to revision 1" in skipped and "kubectl rollout undo" in skipped
    available(ns, V1, 3, name=rolled[0])
    time.sleep(12)  # later evaluations change nothing: the capped release is reported, not rolled back
    assert kit.image_of(kit.get_deployment(ns, capped[0])) == V2
    assert kit.reasons(ns, capped[0]).count("RollbackSkipped") == 1


def test_a_metric_failure_while_paused_is_rolled_back_on_resume(namespace, checked, traffic) -> None:
    ns = namespace
    op = checked(ns)
    traffic.ratio = {V1: 0.0, V2: 0.0}
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, annotations=CHECKS)
    available(ns, V2, 2)
    kit.kubectl("-n", ns, "rollout", "pause", "deployment/web")  # the bake time stands still while paused
    traffic.ratio[V2] = 0.4
    skipped = wait_event(ns, "RollbackSkipped")["message"]
    assert "paused" in skipped
    rs = current_rs(ns, V2)
    assert mark(rs, "failed-reason").split(" ", 1)[1].startswith("MetricCheckFailed: error-ratio")
    assert not mark(rs, "healthy-at"), "a metric failure is never outlived by the completion"
    assert evaluations(op, ns, "fail") == 3
    kit.kubectl("-n", ns, "rollout", "resume", "deployment/web")
    available(ns, V1, 3)  # decided again from the failure recorded on the ReplicaSet
    assert kit.reasons(ns, "web").count("RolledBack") == 1


def test_nan_is_no_data_and_the_bake_is_unverified(namespace, checked, traffic, prometheus) -> None:
    ns = namespace
    op = checked(ns)
    traffic.ratio = {V1: math.nan}  # a series for each new pod, its value NaN (0/0: no traffic)
    kit.release(ns, "web", V1, annotations={**CHECKS, "autorollback.io/bake-seconds": "25"})
    available(ns, V1, 1)
    series = f'{RATIO}{{namespace="{ns}"}}'
    kit.wait_for(lambda: [v for v in prometheus.values(series) if math.isnan(v)], 20, "a NaN series for the new pod")
    before = evaluations(op, ns, "no_data")  # the first ones may precede the series: no series is no data too
    kit.wait_for(lambda: evaluations(op, ns, "no_data") > before, 20, "an evaluation reading NaN")
    unverified = wait_event(ns, "BakeUnverified", timeout=120)["message"]
    assert "error-ratio" in unverified
    assert evaluations(op, ns, "pass") == evaluations(op, ns, "fail") == 0, "NaN is neither a pass nor a fail"
    assert "returned no data" in wait_event(ns, "MetricCheckNoData")["message"]
    rs = current_rs(ns, V1)
    assert mark(rs, "unverified-at") and not mark(rs, "healthy-at")
    assert "RolledBack" not in kit.reasons(ns, "web") and "BakePassed" not in kit.reasons(ns, "web")


def own(name: str, query: str, fail_if: str = "result > 0.05", **more: str) -> dict[str, str]:
    """A workload's own check (autorollback.io/check.<name>.query and .fail-if)."""
    keys = {"query": query, "fail-if": fail_if, **{k.replace("_", "-"): v for k, v in more.items()}}
    return {f"autorollback.io/check.{name}.{k}": v for k, v in keys.items()}


MINE = f'max({RATIO}{{namespace="{{{{namespace}}}}",pod=~"{{{{pods}}}}"}})'


def test_an_own_query_reaching_into_another_namespace_never_runs(namespace, checked, traffic, prometheus) -> None:
    ns, other = namespace, f"{namespace}-other"
    checked(ns, ("--checks-promql-namespaces", ns))
    traffic.ratio = {V1: 0.0}
    prometheus.exporter.set(RATIO, {"namespace": other, "pod": "p"}, 0.9)  # what a reach would read
    annotations = {
        **ON,
        "autorollback.io/checks": "mine,reach,reach-regex",
        "autorollback.io/bake-seconds": "10",
        **own("mine", MINE, interval_seconds="5"),
        **own("reach", f'max({RATIO}{{namespace="{other}"}})', interval_seconds="5"),
        **own("reach-regex", f'max({RATIO}{{namespace=~"{ns}.+"}})', interval_seconds="5"),
    }
    kit.release(ns, "web", V1, annotations=annotations)
    available(ns, V1, 1)
    passed = wait_event(ns, "BakePassed", timeout=90)["message"]
    assert "mine" in passed and "reach" not in passed, passed
    told = [e["message"] for e in kit.events(ns, "web") if e["reason"] == "InvalidAnnotation"]
    assert any("check reach is not run" in m and 'namespace="{{namespace}}"' in m for m in told), told
    assert any("check reach-regex is not run" in m for m in told), told
    assert prometheus.queries(f'namespace="{ns}"'), "the allowed check ran (the query log works)"
    assert prometheus.queries(other) == [] and prometheus.queries(f'=~"{ns}') == [], "a reach never ran"
    assert "RolledBack" not in kit.reasons(ns, "web")


def test_an_own_check_in_a_namespace_not_allowed_never_runs(namespace, checked, traffic, prometheus) -> None:
    ns = namespace
    op = checked(ns, ("--checks-promql-namespaces", f"{ns}-elsewhere"))
    traffic.ratio = {V1: 0.9}
    annotations = {**ON, "autorollback.io/checks": "mine", "autorollback.io/bake-seconds": "10", **own("mine", MINE)}
    kit.release(ns, "web", V1, annotations=annotations)
    available(ns, V1, 1)
    told = wait_event(ns, "InvalidAnnotation")["message"]
    assert "check mine is not run" in told and "the platform must list it in checks.promqlNamespaces" in told, told
    time.sleep(12)  # more than two intervals and the bake
    assert prometheus.queries(ns) == [] and op.metric("autorollback_prometheus_queries_total", result="ok") == 0
    assert not {"RolledBack", "BakePassed", "MetricCheckNoData"} & set(kit.reasons(ns, "web"))


def test_a_query_prometheus_cannot_parse_never_rolls_back(namespace, checked, traffic) -> None:
    # promql-parser (Rust regex) accepts a repeat count of 2000; Prometheus (Go RE2, at most 1000) answers bad_data
    ns = namespace
    op = checked(ns, ("--checks-promql-namespaces", ns))
    traffic.ratio = {V1: 0.0, V2: 0.0}
    kit.release(ns, "web", V1, annotations={**ON})
    available(ns, V1, 1)
    bad = f'max({RATIO}{{namespace="{{{{namespace}}}}",pod=~"x{{1,2000}}"}})'
    checks = {"autorollback.io/checks": "bad", "autorollback.io/bake-seconds": "15"}
    kit.release(ns, "web", V2, annotations={**ON, **checks, **own("bad", bad, on_error="fail", failures="1")})
    told = wait_event(ns, "InvalidAnnotation")["message"]
    assert "metric check bad is not run: Prometheus cannot parse its query" in told, told
    assert "invalid repeat count" in told and "this workload's own" in told, told
    asked = op.metric("autorollback_prometheus_queries_total", result="ok")
    time.sleep(12)  # more than two intervals: never asked again
    assert op.metric("autorollback_prometheus_queries_total", result="ok") == asked == 1
    assert kit.image_of(kit.get_deployment(ns, "web")) == V2
    assert not {"RolledBack", "RolloutFailed"} & set(kit.reasons(ns, "web"))


def controller_revision(ns: str, name: str, image: str) -> dict:
    """The ControllerRevision of workload `name` holding `image`."""
    items = kit.kubectl_json("-n", ns, "get", "controllerrevisions", "-l", f"app={name}")["items"]
    return next(cr for cr in items if cr["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == image)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["daemonset", "statefulset"])
def test_checks_and_alerts_bake_a_daemonset_and_a_statefulset_after_their_rollout(
    namespace, checked, traffic, prometheus: Prometheus, kind: str, tmp_path: Path
) -> None:
    """Two workloads of the kind under one operator: `web` with a metric check and an alert, `alarmed`
    with the alert only. V1 bakes and passes (healthy-at, the alerts' record on its ControllerRevision);
    V2 completes, then its pods' error ratio climbs (web) or the alert fires (alarmed): rolled back to V1."""
    ns = namespace
    alarm = "app_alarm"
    rule = alert_rule("WebSlow", f'{alarm}{{namespace="{ns}",alarm="WebSlow"}} > 0')
    prometheus.load_rules(f"alerts-{ns}", [rule])
    op = checked(ns)
    traffic.ratio = {V1: 0.0, V2: 0.0}
    on = {"autorollback.io/enabled": "true", "autorollback.io/mode": "rollback", "autorollback.io/bake-seconds": BAKE}
    alerts = {**on, "autorollback.io/alerts": "WebSlow"}
    kit.apply(kinds.manifest(kind, ns, {**alerts, "autorollback.io/checks": "error-ratio"}, "web"))
    kit.apply(kinds.manifest(kind, ns, alerts, "alarmed"))
    names = ("web", "alarmed")
    good = {n: kit.wait_for(lambda n=n: kinds.rolled_out(ns, kind, V1, n), 90, f"{n} on V1") for n in names}
    for n in names:
        passed = kit.wait_for(lambda n=n: kit.event(ns, n, "BakePassed"), 120, f"{n}'s bake passed")["message"]
        assert "no alert named fired (WebSlow)" in passed, passed
        cr = controller_revision(ns, n, V1)
        name = cr["metadata"]["name"]
        assert mark(cr, "healthy-at").startswith(f"{name} "), "healthy means baked"
        assert mark(cr, "alerts-preexisting") == f"{name} revision 1 -", "recorded once a pod was Ready"
    assert "every metric check passed (error-ratio)" in kit.event(ns, "web", "BakePassed")["message"]
    assert evaluations(op, ns, "fail") == 0
    # V2 bakes longer: it rolls out healthy, then fails after its rollout completed
    v2 = {**kinds.GOOD_V2, "metadata": {"annotations": {"autorollback.io/bake-seconds": "120"}}}
    for n in names:
        kit.kubectl("-n", ns, "patch", f"{kind}/{n}", "--type=strategic", "-p", json.dumps(v2))
    for n in names:
        kit.wait_for(lambda n=n: kinds.rolled_out(ns, kind, V2, n), 90, f"{n} on V2")
    kit.wait_for(lambda: mark(controller_revision(ns, "alarmed", V2), "alerts-preexisting"), 60, "the V2 record")
    assert [kit.reasons(ns, n).count("RolledBack") for n in names] == [0, 0]
    got = test_status.rows(test_status.read_only(ns, tmp_path / "reader.kubeconfig"), ns)  # autorollback status
    assert {n: (got[n]["kind"], got[n]["revision"], got[n]["state"]) for n in names} == dict.fromkeys(
        names, (kinds.KINDS[kind], 2, "baking")
    ), got
    traffic.ratio[V2] = 0.4
    prometheus.exporter.set(alarm, {"namespace": ns, "deployment": "alarmed", "alarm": "WebSlow"}, 1)
    for n in names:
        back = kit.wait_for(lambda n=n: kinds.rolled_out(ns, kind, V1, n), 120, f"{n} rolled back to V1")
        assert back["spec"]["template"] == good[n]["spec"]["template"], n
    failed = {n: kit.event(ns, n, "RolloutFailed")["message"] for n in names}
    assert "MetricCheckFailed: error-ratio 0.4 > 0.05 (3 consecutive)" in failed["web"], failed
    assert "AlertFiring: alert WebSlow firing for revision 2" in failed["alarmed"], failed
    assert evaluations(op, ns, "fail") == 3
    for n, reason in (("web", "MetricCheckFailed"), ("alarmed", "AlertFiring")):
        bad = controller_revision(ns, n, V2)
        assert mark(bad, "failed-reason").startswith(f"{bad['metadata']['name']} {reason}: "), n
        assert not mark(bad, "healthy-at"), n
        rolled = kit.event(ns, n, "RolledBack")
        assert rolled["involvedObject"]["kind"] == kinds.KINDS[kind]
        assert "(revision 1 is the newest known to have been healthy)" in rolled["message"], rolled["message"]
    assert mark(controller_revision(ns, "web", V2), "bake"), "the streak was checkpointed on the ControllerRevision"
    time.sleep(5)  # the restored revision is not baked: no ping-pong
    assert [kit.reasons(ns, n).count("RolledBack") for n in names] == [1, 1]


def test_a_relative_check_compares_a_statefulsets_new_pods_with_those_left_on_the_previous_revision(
    namespace, checked, traffic
) -> None:
    """A StatefulSet stopped at its partition keeps web-0 on V1: that revision, with pods left, is the
    baseline (a ControllerRevision counts no available pods: without the pods it was never found)."""
    ns = namespace
    op = checked(ns)
    traffic.ratio = {V1: 0.1, V2: 0.1}
    on = {"autorollback.io/enabled": "true", "autorollback.io/mode": "rollback"}
    partitioned = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
    kit.apply(kinds.statefulset(ns, on, strategy=partitioned))
    good = kit.wait_for(lambda: kinds.rolled_out(ns, "statefulset", V1), 90, "V1")
    relative = {"autorollback.io/checks": "error-vs-previous", "autorollback.io/bake-seconds": "120"}
    v2 = {**kinds.GOOD_V2, "metadata": {"annotations": relative}}
    kit.kubectl("-n", ns, "patch", "statefulset/web", "--type=strategic", "-p", json.dumps(v2))
    # 0.1 against the previous revision's 0.1: a pass, which needs the baseline (else it is no data)
    kit.wait_for(lambda: evaluations(op, ns, "pass", "error-vs-previous") >= 1, 60, "a passing relative evaluation")
    traffic.ratio[V2] = 0.4
    failed = wait_event(ns, "RolloutFailed", timeout=90)["message"]
    assert "MetricCheckFailed: error-vs-previous 0.4 > 0.15" in failed and "(previous revision 0.1)" in failed, failed
    back = kit.wait_for(lambda: kinds.rolled_out(ns, "statefulset", V1), 120, "back on V1")
    assert back["spec"]["template"] == good["spec"]["template"]
