"""classify: which failure stands against the current template, if any (no target, no patch yet)."""

from autorollback import history, ledger
from autorollback.decision import Decision, Measured, classify
from autorollback.signals.base import Facts, Judged, Verdict
from autorollback.signals.deadline import ControllerDeadline
from autorollback.vocab import Reason, Result
from autorollback.workloads.base import Failure
from autorollback.workloads.deployment import DEPLOYMENTS

from factories import UPDATED, deployment, replicaset, rs_name

HEALTHY = {history.HEALTHY_AT: "revision 1"}
REPORTED = {history.FAILED_AT: UPDATED, history.OUTCOME: "success (x) at t"}


def sources(signal=None):
    return (Judged(signal), ControllerDeadline()) if signal is not None else (ControllerDeadline(),)


def standing(d, replicasets, measured=None, signal=None):
    facts = Facts(d, replicasets, adapter=DEPLOYMENTS)
    return classify.standing_failure(facts, classify.what_is_shown(facts, sources(signal)), measured)


def test_a_timeout_of_the_current_template_stands() -> None:
    out = standing(deployment("app:2.0.0", failed=True), [replicaset(1, "app:1.0.0"), replicaset(2, "app:2.0.0")])
    assert isinstance(out, classify.Standing)
    assert out.failing.name == out.failure.revision_name == rs_name("app:2.0.0") and out.first_report


def test_a_fast_signal_stands_for_the_condition_which_is_kept_aside() -> None:
    d = deployment("app:2.0.0", failed=True, blamed="app:1.0.0")
    signal = Failure(rs_name("app:2.0.0"), "CrashLoopBackOff", "restarted 3 times", "2026-11-26T10:01:00Z", 2)
    shown = classify.what_is_shown(Facts(d, [], adapter=DEPLOYMENTS), sources(signal))
    assert shown.failure == signal and shown.by_controller.revision_name == rs_name("app:1.0.0")
    assert shown.left_over == ""


def test_a_timeout_of_an_earlier_template_is_stale_until_the_measured_deadline_passes() -> None:
    # after a rollback (or a person's undo) the controller keeps the failed ReplicaSet's timeout
    d = deployment("app:1.0.0", revision=3, failed=True, blamed="app:2.0.0")
    rs = [replicaset(2, "app:2.0.0"), replicaset(3, "app:1.0.0", HEALTHY)]
    stale = standing(d, rs, Measured(599, "2026-11-26T10:05:00Z"))
    assert isinstance(stale, Decision) and (stale.result, stale.reason) == (Result.NOTHING, Reason.STALE)
    assert f"the earlier timeout of {rs_name('app:2.0.0')}" in stale.message
    assert stale.failure.revision_name == rs_name("app:2.0.0")  # the condition's, for the log
    timed_out = standing(d, rs, Measured(600, "2026-11-26T10:05:00Z"))
    assert isinstance(timed_out, classify.Standing) and timed_out.failure.measured
    assert (
        timed_out.failure.revision_name == rs_name("app:1.0.0") and timed_out.failure.updated == "2026-11-26T10:05:00Z"
    )


def test_no_replicaset_of_the_current_template_yet_is_stale() -> None:
    out = standing(deployment("app:3.0.0", failed=True, blamed="app:2.0.0"), [replicaset(2, "app:2.0.0")])
    assert (out.reason, out.message) == (Reason.STALE, "the current template's ReplicaSet does not exist yet")


def test_a_left_over_condition_of_a_completed_rollout_is_no_failure() -> None:
    own = deployment("app:2.0.0", complete=True)
    own["status"]["availableReplicas"] = 2  # lost a pod after completing
    rs = [replicaset(1, "app:1.0.0", HEALTHY), replicaset(2, "app:2.0.0", available=2)]
    assert standing(own, rs, Measured(3600, UPDATED)).reason == Reason.NO_FAILURE


def test_a_left_over_condition_completes_only_a_template_proven_since_its_restore() -> None:
    entry = ledger.Entry(rs_name("app:2.0.0"), rs_name("app:1.0.0"), UPDATED, "2026-11-26T10:00:05Z", revision=2)
    rs = [replicaset(3, "app:1.0.0", HEALTHY), replicaset(2, "app:2.0.0")]
    (restored,) = [r for r in DEPLOYMENTS.revisions(rs, (entry,)) if r.number == 3]
    # the condition naming revision 1's ReplicaSet is from before autorollback restored it
    assert restored.restored_and_unproven and not classify.completed_under(restored.name, restored)
    (unrelated,) = [r for r in DEPLOYMENTS.revisions(rs) if r.number == 3]
    assert classify.completed_under(unrelated.name, unrelated)
    assert not classify.completed_under("web-earlier", unrelated)  # seen complete, but in an earlier revision
    (proven,) = DEPLOYMENTS.revisions([replicaset(3, "app:1.0.0", {history.HEALTHY_AT: "revision 3"})])
    assert classify.completed_under("web-earlier", proven)  # seen complete in this revision


def test_a_failure_rolled_back_already_is_reported_only_when_its_report_was_lost() -> None:
    entry = ledger.Entry(rs_name("app:2.0.0"), rs_name("app:1.0.0"), UPDATED, "2026-11-26T10:00:05Z", revision=2)
    d = deployment(
        "app:1.0.0", revision=3, failed=True, blamed="app:2.0.0", annotations={ledger.KEY: ledger.dump((entry,))}
    )
    lost = standing(d, [replicaset(2, "app:2.0.0"), replicaset(3, "app:1.0.0", HEALTHY)])
    assert (lost.result, lost.undo, lost.first_report) == (Result.SUCCESS, None, True)
    reported = standing(d, [replicaset(2, "app:2.0.0", REPORTED), replicaset(3, "app:1.0.0", HEALTHY)])
    assert (reported.result, reported.reason) == (Result.NOTHING, Reason.STALE)  # carried over to the restored one
    # the template that failed re-applied under the same condition: rolled back already, nothing to do
    again = deployment("app:2.0.0", revision=4, failed=True, annotations={ledger.KEY: ledger.dump((entry,))})
    out = standing(again, [replicaset(4, "app:2.0.0", REPORTED), replicaset(3, "app:1.0.0", HEALTHY)])
    assert (out.result, out.reason) == (Result.NOTHING, Reason.ROLLED_BACK)


def test_the_sources_are_asked_in_order_and_the_first_failure_stands() -> None:
    # a verdict source the decision does not know by name (a metric check, say) goes through it the same way
    metric = Failure(rs_name("app:2.0.0"), "ErrorRate", "5xx above 5%", "2026-11-26T10:02:00Z", 2)

    class Later:  # nothing to say yet, only when to look again
        def verdict(self, facts: Facts) -> Verdict:
            return Verdict(recheck_in=5.0)

    rs = [replicaset(1, "app:1.0.0", HEALTHY), replicaset(2, "app:2.0.0")]
    running = Facts(deployment("app:2.0.0"), rs, adapter=DEPLOYMENTS)
    assert classify.what_is_shown(running, [ControllerDeadline()]).failure is None
    assert classify.what_is_shown(running, [ControllerDeadline(), Later(), Judged(metric)]).failure == metric
    timed_out = Facts(deployment("app:2.0.0", failed=True), rs, adapter=DEPLOYMENTS)
    assert classify.what_is_shown(timed_out, [ControllerDeadline(), Judged(metric)]).failure.reason == (
        "ProgressDeadlineExceeded"
    )
    shown = classify.what_is_shown(timed_out, [Judged(metric), ControllerDeadline()])
    assert shown.failure == metric and shown.by_controller.reason == "ProgressDeadlineExceeded"
    standing = classify.standing_failure(running, classify.what_is_shown(running, [Judged(metric)]), None)
    assert isinstance(standing, classify.Standing) and standing.failure == metric
