"""guards: what stops a failure that stands from being rolled back (now)."""

from autorollback import history, ledger
from autorollback.decision import classify, guards
from autorollback.signals.base import Facts
from autorollback.signals.deadline import ControllerDeadline
from autorollback.vocab import Reason, Result
from autorollback.workloads.base import METRIC_CHECK_FAILED, Failure
from autorollback.workloads.deployment import DEPLOYMENTS

from factories import UPDATED, deployment, replicaset, rs_name

HEALTHY = {history.HEALTHY_AT: "revision 1"}


def refusal(d, replicasets, dry_run=False):
    facts = Facts(d, replicasets, adapter=DEPLOYMENTS)
    standing = classify.standing_failure(facts, classify.what_is_shown(facts, [ControllerDeadline()]), None)
    assert isinstance(standing, classify.Standing)
    return guards.refusal(d, standing, dry_run, DEPLOYMENTS)


def test_a_new_failure_is_not_stopped() -> None:
    assert refusal(deployment(failed=True), [replicaset(1, "app:1.0.0", HEALTHY), replicaset(2, "app:2.0.0")]) is None


def test_a_failure_deferred_while_paused_or_in_dry_run_is_due_once_that_ends() -> None:
    failing = DEPLOYMENTS.revisions(
        [replicaset(2, "app:2.0.0", {history.FAILED_AT: UPDATED, history.OUTCOME: "skipped (paused) at t"})]
    )[0]
    failure = DEPLOYMENTS.failure(deployment(failed=True))
    assert guards.already_handled(failing, failure, paused=True, dry_run=False)
    assert not guards.already_handled(failing, failure, paused=False, dry_run=False)
    planned = DEPLOYMENTS.revisions(
        [replicaset(2, "app:2.0.0", {history.FAILED_AT: UPDATED, history.OUTCOME: "dry_run (dry_run) at t"})]
    )[0]
    assert guards.already_handled(planned, failure, paused=False, dry_run=True)
    assert not guards.already_handled(planned, failure, paused=False, dry_run=False)


def test_a_capped_metric_failure_stays_handled_but_a_later_deadline_of_the_rollout_does_not() -> None:
    capped = DEPLOYMENTS.revisions(
        [
            replicaset(
                2,
                "app:2.0.0",
                {
                    history.FAILED_AT: "2026-11-26T09:30:00.5Z revision 2",
                    history.FAILED_REASON: "MetricCheckFailed: error-ratio 0.4 > 0.05 (3 consecutive)",
                    history.OUTCOME: "skipped (capped) at t",
                },
            )
        ]
    )[0]
    metric = Failure(rs_name("app:2.0.0"), METRIC_CHECK_FAILED, "error-ratio", "2026-11-26T09:30:00.5Z", 2)
    assert guards.already_handled(capped, metric, paused=False, dry_run=False)  # never rolled back later
    deadline = DEPLOYMENTS.failure(deployment(failed=True))
    assert not guards.already_handled(capped, deadline, paused=False, dry_run=False)  # the cap is for metrics


def test_a_known_bad_template_re_applied_is_not_rolled_back_again() -> None:
    away = ledger.Entry(rs_name("app:2.0.0"), rs_name("app:1.0.0"), "2026-11-26T09:05:00Z", "2026-11-26T09:10:00Z")
    d = deployment("app:2.0.0", revision=4, failed=True, annotations={ledger.KEY: ledger.dump((away,))})
    out = refusal(d, [replicaset(3, "app:1.0.0", HEALTHY), replicaset(4, "app:2.0.0")])
    assert (out.result, out.reason, out.first_report) == (Result.ABANDONED, Reason.REAPPLIED, True)
    assert "at 2026-11-26T09:10:00Z" in out.message


def test_a_restored_revision_that_fails_too_is_not_walked_further_back() -> None:
    restored = ledger.Entry(rs_name("app:2.0.0"), rs_name("app:1.0.0"), "2026-11-26T09:05:00Z", "2026-11-26T09:10:00Z")
    d = deployment("app:1.0.0", revision=3, failed=True, annotations={ledger.KEY: ledger.dump((restored,))})
    out = refusal(d, [replicaset(2, "app:2.0.0"), replicaset(3, "app:1.0.0")])
    assert (out.result, out.reason) == (Result.ABANDONED, Reason.RESTORED_REVISION_FAILED)


def test_a_paused_deployment_waits_and_a_loop_is_refused_even_while_paused() -> None:
    out = refusal(deployment(failed=True, paused=True), [replicaset(1, "app:1.0.0"), replicaset(2, "app:2.0.0")])
    assert (out.result, out.reason) == (Result.SKIPPED, Reason.PAUSED)
    away = ledger.Entry(rs_name("app:2.0.0"), rs_name("app:1.0.0"), "2026-11-26T09:05:00Z", "2026-11-26T09:10:00Z")
    d = deployment("app:2.0.0", revision=4, failed=True, paused=True, annotations={ledger.KEY: ledger.dump((away,))})
    assert refusal(d, [replicaset(3, "app:1.0.0"), replicaset(4, "app:2.0.0")]).reason == Reason.REAPPLIED
