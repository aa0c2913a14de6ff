"""checks.alerts: the alerts a workload names, the query that reads them, the record of the ones
already firing bound to the ReplicaSet and its revision, and the verdict."""

import json

import pytest
from hypothesis import given, strategies as st

from autorollback import history
from autorollback.checks import alerts as a, bake as b, promql, templates as t
from autorollback.workloads import deployment as deployments, statefulset as statefulsets
from autorollback.workloads.base import ALERT_FIRING

from factories import replicaset, rs_name, sts_pod, sts_revision

LABELS = ("namespace", "deployment")
T = 1764000000.0


def selected(value: str) -> t.Selection:
    return a.select(t.select({a.ALERTS: value}, t.Catalog({})), {a.ALERTS: value})


def answer(*series: tuple[str, float], status: str = "success") -> bytes:
    result = [{"metric": {"alertname": n}, "value": [at, "1"]} for n, at in series]
    return json.dumps({"status": status, "data": {"resultType": "vector", "result": result}}).encode()


def revision(number: int, marks: dict[str, str] | None = None, ready: int | None = None) -> history.Revision:
    rs = replicaset(number, "a:2", marks)
    if ready is not None:
        rs["status"]["readyReplicas"] = ready
    return deployments.revisions([rs])[0]


# -- the annotation -------------------------------------------------------------------------------


def test_names_are_kept_in_order_once_and_invalid_ones_are_problems() -> None:
    s = selected(' HighErrorRate, PodCrashLooping ,HighErrorRate,,bad name,9x,a"b')
    assert s.alerts == ("HighErrorRate", "PodCrashLooping")
    assert [p.key for p in s.problems] == [a.ALERTS] * 3
    assert "is not an alert name" in s.problems[0].message and "ignored" in s.problems[0].consequence


def test_no_annotation_no_alerts_and_too_many_are_cut() -> None:
    assert a.select(t.Selection(), {}).alerts == ()
    many = selected(",".join(f"A{i}" for i in range(a.MAX_ALERTS + 3)))
    assert len(many.alerts) == a.MAX_ALERTS and "at most" in many.problems[0].message


# -- the query ------------------------------------------------------------------------------------


def test_the_selector_names_the_alerts_exactly_and_the_workload_by_the_configured_labels() -> None:
    assert a.selector(["HighErrorRate", "Pod:Crash"], "shop", "web", LABELS) == (
        'ALERTS{alertstate="firing",alertname=~"^(?:HighErrorRate|Pod:Crash)$",namespace="shop",deployment="web"}'
    )
    # the record of what was already under way reads pending alerts too (their `for:` not over yet)
    assert a.selector(["A"], "shop", "web", LABELS, pending=True).startswith('ALERTS{alertstate=~"firing|pending",')
    assert a.selector(["A"], "shop", "web", ("service", "app")) == (
        'ALERTS{alertstate="firing",alertname=~"^(?:A)$",namespace="shop",service="web",app="web"}'
    ), "the namespace matcher is there even when the platform's labels leave it out"


def test_the_query_counts_firing_series_by_alert_name_and_reads_only_the_namespace() -> None:
    q = a.query(["A", "B"], "shop", "web", LABELS)
    assert q.startswith("count by (alertname) (ALERTS{")
    promql.enforce_namespace(q, "shop")
    with pytest.raises(promql.QueryError):
        promql.enforce_namespace(q, "other")


def test_names_that_are_not_alert_names_are_refused_and_values_are_escaped() -> None:
    with pytest.raises(ValueError, match="not alert names"):
        a.selector(['A"}or vector(1)#'], "shop", "web", LABELS)
    with pytest.raises(ValueError, match="not alert names"):
        a.selector([], "shop", "web", LABELS)
    # a namespace or a name are Kubernetes names, but escaped all the same
    assert 'deployment="we\\"b"' in a.selector(["A"], "shop", 'we"b', LABELS)


@given(st.lists(st.from_regex(a.NAME, fullmatch=True), min_size=1, max_size=5))
def test_any_valid_names_give_a_query_that_parses_and_stays_in_the_namespace(names: list[str]) -> None:
    promql.enforce_namespace(a.query(names, "shop", "web", LABELS), "shop")


# -- the answer -----------------------------------------------------------------------------------


def test_the_answer_is_the_firing_names_asked_with_prometheus_s_time() -> None:
    f = a.read_body(200, answer(("A", T), ("B", T), ("Other", T)), ["A", "B"])
    assert f == a.Firing(frozenset({"A", "B"}), T)
    assert a.read_body(200, answer()) == a.Firing()  # nothing firing


@pytest.mark.parametrize(
    ("status", "body", "why"),
    [
        (200, b"<html>", "not JSON"),
        (503, json.dumps({"status": "error", "errorType": "unavailable", "error": "down"}).encode(), "down"),
        (500, answer(("A", T)), "HTTP 500"),
        (200, json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}).encode(), "vector"),
        (
            200,
            json.dumps({"status": "success", "data": {"resultType": "vector", "result": [{}]}}).encode(),
            "alertname",
        ),
    ],
)
def test_anything_else_is_an_error_never_a_firing(status: int, body: bytes, why: str) -> None:
    f = a.read_body(status, body, ["A"])
    assert why in f.error and not f.names
    assert a.judge(f, frozenset()) == a.Verdict()


# -- the record, bound to the ReplicaSet and its revision ------------------------------------------


def test_the_record_is_bound_to_the_replicaset_and_its_revision() -> None:
    name = rs_name("a:2")
    value = a.record(name, 3, ["B", "A"])
    assert value == f"{name} revision 3 A,B"
    assert a.record(name, 3, []) == f"{name} revision 3 -"
    rev = deployments.revisions([replicaset(3, "a:2", annotations={a.PREEXISTING: value})])[0]
    assert a.recorded(rev) == frozenset({"A", "B"})
    assert a.recorded(revision(3, {a.PREEXISTING: "revision 3 -"})) == frozenset()
    assert a.recorded(revision(3)) is None
    # a copy from another ReplicaSet (kubectl undo, the controller) is not this one's record
    copied = deployments.revisions([replicaset(3, "a:2", annotations={a.PREEXISTING: "web-other revision 3 -"})])
    assert a.recorded(copied[0]) is None
    # the same ReplicaSet reused by a later rollout: the earlier record says nothing about this one
    assert a.recorded(revision(5, {a.PREEXISTING: "revision 3 A"})) is None
    assert a.recorded(revision(3, {a.PREEXISTING: "revision 3 A,b c"})) is None


def test_ready_means_a_ready_or_an_available_pod() -> None:
    for ready, expected in ((None, False), (0, False), (1, True)):
        rs = replicaset(2, "a:2")
        if ready is not None:
            rs["status"]["readyReplicas"] = ready
        assert a.ready(rs, deployments.revisions([rs])[0]) is expected
    rs = replicaset(2, "a:2", available=1)
    assert a.ready(rs, deployments.revisions([rs])[0])


def test_a_controller_revision_has_a_ready_pod_only_as_its_pods_say() -> None:
    cr = sts_revision(2, "app:2.0.0")
    revision = statefulsets.STATEFULSETS.revisions([cr])[0]
    assert not a.ready(cr, revision)  # no status, nothing available per revision

    def pod(ready: str | None) -> dict:
        conditions = [{"type": "Ready", "status": ready}] if ready else []
        return {
            **sts_pod(1, "app:2.0.0"),
            "status": {"conditions": [{"type": "PodScheduled", "status": "True"}, *conditions]},
        }

    assert not a.ready(cr, revision, [pod(None), pod("False")])
    assert a.ready(cr, revision, [pod("False"), pod("True")])


def test_a_preexisting_alert_never_fails_and_another_one_does() -> None:
    firing = a.Firing(frozenset({"A", "B"}), T)
    assert a.judge(firing, frozenset({"A"})) == a.Verdict(("B",), ("A",))
    assert a.judge(firing, frozenset({"A", "B"})) == a.Verdict((), ("A", "B"))
    assert a.judge(a.Firing(), frozenset({"A"})) == a.Verdict()


def test_an_alert_s_failure_goes_through_the_decision_with_prometheus_s_time() -> None:
    f = a.failure(("B",), T, "web-5d8f", 3, "2026-11-26T08:00:00Z")
    assert f.reason == ALERT_FIRING and f.revision == 3 and f.revision_name == "web-5d8f"
    assert f.updated.startswith("2025-11-24T") and f.id == f"web-5d8f {f.updated}"
    assert "alert B firing for revision 3" in f.message
    assert a.failure(("B", "C"), None, "web-5d8f", 3, "created").updated == "created"


def test_an_alert_s_failure_not_rolled_back_is_decided_again_from_the_marks() -> None:
    marks = {
        history.FAILED_AT: "2026-11-26T09:30:00.5Z revision 3",
        history.FAILED_REASON: "AlertFiring: alert B firing for revision 3",
    }
    f = b.recorded_failure(revision(3, marks))
    assert f is not None and f.reason == ALERT_FIRING and f.message == "alert B firing for revision 3"


def test_what_a_passed_bake_says() -> None:
    assert a.passed(("error-ratio",), ()) == "every metric check passed (error-ratio)"
    assert a.passed((), ("A", "B")) == "no alert named fired (A, B)"
    assert a.passed(("x",), ("A",)) == "every metric check passed (x) and no alert named fired (A)"


# -- the bake's schedule and end with alerts (reconcile.alerts' pure helpers) ----------------------


def test_alerts_alone_start_a_bake() -> None:
    from autorollback import config, state
    from autorollback.vocab import Job

    from factories import deployment

    on = config.parse({"autorollback.io/enabled": "true"})
    memo = state.Remembered("ns", "web", adapter=deployments.DEPLOYMENTS)
    plain = deployment()
    assert Job.BAKE not in memo.observe(plain, on)
    named = deployment()
    named["metadata"]["annotations"][a.ALERTS] = "HighErrorRate"
    assert Job.BAKE in memo.observe(named, on)


def test_alerts_are_read_every_interval_and_alone_wait_for_the_bake_s_end() -> None:
    from autorollback.checks.schedule import Running
    from autorollback.reconcile import alerts as r

    s = selected("A")
    running = Running("web-5d8f", "uid", b.begin(()), 0.0)
    assert r.intervals(s) == [a.INTERVAL] and r.due(running, s, 100.0)
    running.evaluated[a.KEY] = 100.0
    assert not r.due(running, s, 100.0 + a.INTERVAL - 1) and r.due(running, s, 100.0 + a.INTERVAL)
    assert r.next_in(running, s, 105.0, None) == a.INTERVAL - 5
    assert r.next_in(running, s, 105.0, 3.0) == 3.0
    assert r.intervals(t.Selection()) == []


def test_alerts_alone_pass_the_bake_only_once_read_after_a_pod_was_ready() -> None:
    from autorollback.checks.schedule import Running
    from autorollback.reconcile import alerts as r

    s = selected("A")
    running = Running(rs_name("a:2"), "uid", b.begin(()), 0.0)
    passed = b.advance(b.begin(()), (), True, 700, 600).result
    assert passed == b.Passed(())
    assert r.verdict(passed, s, revision(3), running) == b.Unverified(("alerts",))
    recorded = revision(3, {a.PREEXISTING: "revision 3 -"})
    # recorded, but not read since the rollout completed (Prometheus answered nothing after the record)
    assert r.verdict(passed, s, recorded, running) == b.Unverified(("alerts",))
    running.told.add(r.READ_COMPLETE)
    assert r.verdict(passed, s, recorded, running) == passed
    assert r.verdict(passed, s, revision(3), running) == b.Unverified(("alerts",))
    running.told.add(r.RECORDED)
    assert r.verdict(passed, s, revision(3), running) == passed
    assert r.verdict(None, s, revision(3), running) is None
    assert r.verdict(passed, t.Selection(), revision(3), Running("x", "u", b.begin(()), 0.0)) == passed


def test_alerts_alone_without_prometheus_say_what_the_platform_must_set() -> None:
    from autorollback.reconcile import alerts as r

    told = r.unconfigured({a.ALERTS: "A"})
    assert "--prometheus-url" in told and "check" not in told.replace("fail-on", "")
    assert r.unconfigured({a.ALERTS: "A", t.CHECKS: "error-ratio"}) == "", "the checks' message says it all"
