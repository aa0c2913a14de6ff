"""plan: the target and the one write that rolls back and records it."""

from autorollback import history, ledger
from autorollback.decision import classify, plan
from autorollback.signals.base import Facts, Judged
from autorollback.signals.deadline import ControllerDeadline
from autorollback.vocab import Reason, Result
from autorollback.workloads.base import JSON_PATCH, METRIC_CHECK_FAILED, Failure
from autorollback.workloads.deployment import DEPLOYMENTS

from factories import UPDATED, deployment, replicaset, rs_name

HEALTHY = {history.HEALTHY_AT: "revision 1"}
NOW = "2026-11-26T10:00:05Z"


def rollback(d, replicasets, dry_run=False):
    facts = Facts(d, replicasets, adapter=DEPLOYMENTS)
    standing = classify.standing_failure(facts, classify.what_is_shown(facts, [ControllerDeadline()]), None)
    return plan.rollback(d, standing, dry_run, NOW, DEPLOYMENTS)


def test_one_write_restores_the_target_and_records_the_rollback_if_nothing_changed_since_the_read() -> None:
    d = deployment("app:2.0.0", revision=2, failed=True, generation=7)
    out = rollback(d, [replicaset(1, "app:1.0.0", HEALTHY), replicaset(2, "app:2.0.0")])
    assert (out.result, out.target.number) == (Result.SUCCESS, 1)
    assert out.undo is not None and out.undo.content_type == JSON_PATCH
    precondition, template, annotations = out.undo.body
    assert precondition == {"op": "replace", "path": "/metadata/resourceVersion", "value": "42"}
    assert template["value"]["spec"]["containers"][0]["image"] == "app:1.0.0"
    assert ledger.parse(annotations["value"][ledger.KEY]) == (
        ledger.Entry(
            rs_name("app:2.0.0"),
            rs_name("app:1.0.0"),
            UPDATED,
            NOW,
            "ProgressDeadlineExceeded",
            revision=2,
            generation=7,
        ),
    )
    assert rollback(d, [replicaset(1, "app:1.0.0", HEALTHY), replicaset(2, "app:2.0.0")], dry_run=True).undo == out.undo


def test_nothing_to_return_to_is_impossible_and_the_same_template_is_skipped() -> None:
    first = rollback(deployment("app:1.0.0", revision=1, failed=True), [replicaset(1, "app:1.0.0")])
    assert (first.result, first.reason, first.undo) == (Result.IMPOSSIBLE, Reason.NO_TARGET, None)
    twin = replicaset(1, "app:2.0.0", HEALTHY, name="web-twin", created="2026-11-26T09:00:00Z")
    same = rollback(deployment("app:2.0.0", revision=2, failed=True), [twin, replicaset(2, "app:2.0.0")])
    assert (same.result, same.reason, same.undo) == (Result.SKIPPED, Reason.TEMPLATE_MATCHES, None)


def test_past_the_metric_rollback_cap_the_rollback_is_reported_not_made() -> None:
    d = deployment("app:2.0.0", revision=2, complete=True)
    history_ = [replicaset(1, "app:1.0.0", HEALTHY), replicaset(2, "app:2.0.0")]
    facts = Facts(d, history_, adapter=DEPLOYMENTS)
    metric = Failure(rs_name("app:2.0.0"), METRIC_CHECK_FAILED, "error-ratio 0.4 > 0.05 (3 consecutive)", "T", 2)
    standing = classify.standing_failure(facts, classify.what_is_shown(facts, [Judged(metric)]), None)
    capped = "3 metric-triggered rollbacks already happened in the last 600 s across the cluster"
    out = plan.rollback(d, standing, False, NOW, DEPLOYMENTS, capped)
    assert (out.result, out.reason, out.undo) == (Result.SKIPPED, Reason.CAPPED, None)
    assert out.target.number == 1 and "would be rolled back to revision 1" in out.message
    assert capped in out.message and "kubectl rollout undo deployment/" in out.message
    # dry-run is a plan anyway: the cap does not change it
    assert plan.rollback(d, standing, True, NOW, DEPLOYMENTS, capped).result == Result.DRY_RUN
    # the cap holds back metric rollbacks only: a deadline still rolls back
    failed = deployment("app:2.0.0", revision=2, failed=True)
    facts = Facts(failed, history_, adapter=DEPLOYMENTS)
    deadline = classify.standing_failure(facts, classify.what_is_shown(facts, [ControllerDeadline()]), None)
    assert plan.rollback(failed, deadline, False, NOW, DEPLOYMENTS, capped).result == Result.SUCCESS
