from autorollback import config as annotations, decision, history, ledger
from autorollback.gitrevert import core as gitcore
from autorollback.vocab import Result
from autorollback.workloads import deployment as deployments
from autorollback.workloads.base import JSON_PATCH
from autorollback.workloads.deployment import DEPLOYMENTS

from factories import UPDATED, deployment, replicaset, rs_name

ON = annotations.parse({"autorollback.io/enabled": "true"})
DRY = annotations.parse({"autorollback.io/enabled": "true", "autorollback.io/mode": "dry-run"})
HEALTHY = {history.HEALTHY_AT: "2026-11-26T09:00:00.000000Z"}
NOW = "2026-11-26T10:00:05.000000Z"


def decide(d, replicasets, config=ON):
    return decision.decide(d, replicasets, config, NOW, workload=DEPLOYMENTS)


def entries(undo):
    assert undo.content_type == JSON_PATCH
    return ledger.parse(undo.body[2]["value"][ledger.KEY])


def test_rolls_back_to_the_last_healthy_revision_and_records_it_in_the_same_patch() -> None:
    d = deployment("app:1.1.0", revision=5, failed=True)
    out = decide(d, [replicaset(4, "app:1.0.0", HEALTHY), replicaset(5, "app:1.1.0")])
    assert out.result == Result.SUCCESS and out.event_reason == "RolledBack" and out.event_type == "Normal"
    assert out.target.number == 4 and out.failing.number == 5 and out.first_report
    cause = out.undo.body[2]["value"]["kubernetes.io/change-cause"]
    assert cause == (
        "autorollback: rolled back from revision 5 (app:1.1.0) to revision 4 (app:1.0.0): ProgressDeadlineExceeded"
    )
    assert entries(out.undo) == (
        ledger.Entry(
            rs_name("app:1.1.0"),
            rs_name("app:1.0.0"),
            UPDATED,
            NOW,
            "ProgressDeadlineExceeded",
            revision=5,
            generation=2,
        ),
    )


def test_a_failure_in_the_ledger_is_never_rolled_back_again_but_is_reported() -> None:
    # e.g. the operator died after its rollback patch, before its Events and marks
    d = deployment("app:1.1.0", revision=5, failed=True)
    rs = [replicaset(4, "app:1.0.0", HEALTHY), replicaset(5, "app:1.1.0")]
    first = decide(d, rs)
    after = deployment(
        "app:1.0.0",
        revision=6,
        failed=True,
        generation=3,
        blamed="app:1.1.0",
        annotations={ledger.KEY: first.undo.body[2]["value"][ledger.KEY]},
    )
    rs = [replicaset(5, "app:1.1.0"), replicaset(6, "app:1.0.0", HEALTHY)]
    late = decide(after, rs)
    assert (late.result, late.undo, late.first_report) == (Result.SUCCESS, None, True)  # report, do not patch
    assert late.failing.name == rs_name("app:1.1.0") and late.target.name == rs_name("app:1.0.0")
    rs[0] = replicaset(5, "app:1.1.0", {history.FAILED_AT: UPDATED, history.OUTCOME: "success (x) at t"})
    assert decide(after, rs).result == Result.NOTHING


def test_a_restored_revision_that_never_progresses_is_caught_after_its_deadline() -> None:
    # The controller keeps the old timeout until it sees progress; if none comes, the restored
    # template has failed too, though no condition will ever say so.
    entry = ledger.Entry(rs_name("app:1.1.0"), rs_name("app:1.0.0"), UPDATED, "2026-11-26T10:00:05.000000Z")
    after = deployment(
        "app:1.0.0",
        revision=6,
        failed=True,
        generation=3,
        blamed="app:1.1.0",
        annotations={ledger.KEY: ledger.dump((entry,))},
    )
    after["spec"]["progressDeadlineSeconds"] = 60
    rs = [
        replicaset(5, "app:1.1.0", {history.FAILED_AT: UPDATED, history.OUTCOME: "success (x) at t"}),
        replicaset(6, "app:1.0.0", HEALTHY),
    ]
    # measured by the operator on its own clock from when it first saw this state (not from the
    # ledger's time, which another replica's clock may have written)
    assert decision.decide(after, rs, ON, "2026-11-26T10:00:50Z", workload=DEPLOYMENTS).result == Result.NOTHING
    assert (
        decision.decide(
            after,
            rs,
            ON,
            "2026-11-26T10:00:50Z",
            measured=decision.Measured(59, "2026-11-26T10:00:05Z"),
            workload=DEPLOYMENTS,
        ).result
        == Result.NOTHING
    )
    late = decision.decide(
        after,
        rs,
        ON,
        "2026-11-26T10:01:06Z",
        measured=decision.Measured(60, "2026-11-26T10:00:05Z"),
        workload=DEPLOYMENTS,
    )
    assert (late.result, late.reason) == (Result.ABANDONED, "restored_revision_failed")
    assert "made no progress for 60s" in late.failure.message and late.failure.revision_name == rs_name("app:1.0.0")
    # a person's undo: the same
    manual = deployment("app:1.0.0", revision=6, failed=True, generation=3, blamed="app:1.1.0")
    manual["spec"]["progressDeadlineSeconds"] = 60
    assert decision.decide(manual, rs, ON, "2026-11-26T10:05:00Z", workload=DEPLOYMENTS).result == Result.NOTHING
    assert (
        decision.decide(
            manual,
            rs,
            ON,
            "2026-11-26T10:05:00Z",
            measured=decision.Measured(120, "2026-11-26T10:03:00Z"),
            workload=DEPLOYMENTS,
        ).result
        == Result.IMPOSSIBLE
    )  # its only older revision is known to have failed


def test_a_stale_condition_is_not_blamed_on_the_restored_revision() -> None:
    # The controller's first sync after a rollback: observedGeneration is current, the condition
    # is the old ProgressDeadlineExceeded, and its message names the failed ReplicaSet.
    rolled = deployment("app:1.0.0", revision=6, failed=True, generation=3, blamed="app:1.1.0")
    rs = [replicaset(5, "app:1.1.0"), replicaset(6, "app:1.0.0", HEALTHY)]
    out = decide(rolled, rs)
    assert (out.result, out.reason) == (Result.NOTHING, "stale")
    assert rs_name("app:1.1.0") in out.message
    # the same without any marks (crash before marking, a second process, a person's undo)
    out = decide(rolled, [replicaset(5, "app:1.1.0"), replicaset(6, "app:1.0.0")])
    assert out.result == Result.NOTHING and out.undo is None


def test_dry_run_plans_the_same_patch() -> None:
    d = deployment("app:1.1.0", revision=5, failed=True)
    rs = [replicaset(4, "app:1.0.0", HEALTHY), replicaset(5, "app:1.1.0")]
    plan, real = decide(d, rs, DRY), decide(d, rs)
    assert plan.result == Result.DRY_RUN and plan.event_reason == "RollbackPlanned"
    assert real.undo is not None and plan.undo == real.undo  # the same body and content type
    assert "would roll back from revision 5 (app:1.1.0) to revision 4 (app:1.0.0)" in plan.message
    assert "nothing was changed" in plan.message


def test_opted_out_is_nothing() -> None:
    off = annotations.parse({"autorollback.io/enabled": "false"})
    out = decide(deployment(failed=True), [replicaset(1, "app:1.0.0"), replicaset(2, "app:2.0.0")], off)
    assert (out.result, out.reason) == (Result.NOTHING, "opted_out")


def test_paused_is_skipped_with_the_resume_command() -> None:
    out = decide(deployment(failed=True, paused=True), [replicaset(1, "app:1.0.0"), replicaset(2, "app:2.0.0")])
    assert (out.result, out.reason, out.event_reason) == (Result.SKIPPED, "paused", "RollbackSkipped")
    assert "kubectl rollout resume deployment/web -n ns" in out.message


def test_first_revision_is_impossible() -> None:
    out = decide(deployment("app:1.0.0", revision=1, failed=True), [replicaset(1, "app:1.0.0")])
    assert (out.result, out.event_reason) == (Result.IMPOSSIBLE, "RollbackImpossible")
    assert "no older revision" in out.message and "revisionHistoryLimit" in out.message


def test_restored_revision_failing_again_is_abandoned() -> None:
    restored = ledger.Entry(
        rs_name("app:2.0.0"), rs_name("app:1.0.0"), "2026-11-26T09:05:00Z", "2026-11-26T09:10:00.000000Z"
    )
    d = deployment("app:1.0.0", revision=3, failed=True, annotations={ledger.KEY: ledger.dump((restored,))})
    out = decide(d, [replicaset(2, "app:2.0.0"), replicaset(3, "app:1.0.0", HEALTHY)])
    assert (out.result, out.reason, out.event_reason) == (
        Result.ABANDONED,
        "restored_revision_failed",
        "RollbackAbandoned",
    )
    assert "manual intervention" in out.message and out.undo is None


def test_reapplied_known_bad_template_is_abandoned_even_after_its_replicaset_was_deleted() -> None:
    # revisionHistoryLimit 0: the failed ReplicaSet was garbage-collected and recreated by a re-apply
    gone = ledger.Entry(rs_name("app:2.0.0"), rs_name("app:1.0.0"), "2026-11-26T09:05:00Z", "2026-11-26T09:10:00Z")
    d = deployment("app:2.0.0", revision=4, failed=True, annotations={ledger.KEY: ledger.dump((gone,))})
    out = decide(d, [replicaset(3, "app:1.0.0", HEALTHY), replicaset(4, "app:2.0.0")])
    assert (out.result, out.reason) == (Result.ABANDONED, "reapplied")
    assert "re-applied" in out.message


def test_the_ledger_is_merged_from_every_copy() -> None:
    # kubectl undo copied an older ReplicaSet's copy of the ledger onto the Deployment
    entry = ledger.Entry(rs_name("app:2.0.0"), rs_name("app:1.0.0"), "2026-11-26T09:05:00Z", "2026-11-26T09:10:00Z")
    d = deployment("app:2.0.0", revision=4, failed=True, annotations={ledger.KEY: "[]"})
    rs = [
        replicaset(3, "app:1.0.0", HEALTHY, annotations={ledger.KEY: ledger.dump((entry,))}),
        replicaset(4, "app:2.0.0"),
    ]
    assert decide(d, rs).reason == "reapplied"


def test_template_already_matching_is_skipped() -> None:
    # like kubectl's "skipped rollback (current template already matches revision N)"
    d = deployment("app:1.0.0", revision=2, failed=True, blamed="app:1.0.0")
    rs = [
        replicaset(1, "app:1.0.0", HEALTHY, name="web-old", created="2026-11-26T09:00:00Z"),
        replicaset(2, "app:1.0.0", created="2026-11-26T08:00:00Z"),
    ]
    out = decide(d, rs)
    assert (out.result, out.reason, out.event_reason) == (Result.SKIPPED, "template_matches", "RollbackSkipped")
    assert out.undo is None and "already matches revision 1" in out.message


def test_already_handled() -> None:
    d = deployment(failed=True)
    out = decide(
        d,
        [
            replicaset(1, "app:1.0.0"),
            replicaset(2, "app:2.0.0", {history.FAILED_AT: UPDATED, history.OUTCOME: "impossible (no_target) at t"}),
        ],
    )
    assert (out.result, out.reason) == (Result.NOTHING, "handled")
    older = decide(
        d,
        [
            replicaset(1, "app:1.0.0"),
            replicaset(
                2,
                "app:2.0.0",
                {history.FAILED_AT: "2026-11-26T09:00:00Z", history.OUTCOME: "impossible (no_target) at t"},
            ),
        ],
    )
    assert older.result == Result.SUCCESS and older.first_report


def test_a_rollout_reported_by_a_fast_signal_is_not_reported_again_when_it_times_out() -> None:
    # revision 4 re-applied a template rolled back before: a fast signal abandoned it, then the
    # controller's deadline ran out on the same deployments. One rollout, one failure.
    fast = {
        history.FAILED_AT: history.failure_payload("2026-11-26T09:58:00Z", 4),
        history.FAILED_REASON: "CrashLoopBackOff: pod web-x container app restarted 3 times",
        history.OUTCOME: "abandoned (reapplied) at t",
    }
    rs = [replicaset(1, "app:1.0.0"), replicaset(4, "app:2.0.0", fast)]
    out = decide(deployment(revision=4, failed=True), rs)
    assert (out.result, out.reason) == (Result.NOTHING, "handled")
    # the same ReplicaSet rolled out again by a later revision is a new rollout, and a new failure
    rs = [replicaset(1, "app:1.0.0"), replicaset(6, "app:2.0.0", fast)]
    assert decide(deployment(revision=6, failed=True), rs).first_report
    # two timeouts of one rollout (it progressed in between) are two failures, as before
    timeout = {**fast, history.FAILED_REASON: "ProgressDeadlineExceeded: ReplicaSet web-x has timed out"}
    rs = [replicaset(1, "app:1.0.0"), replicaset(4, "app:2.0.0", timeout)]
    assert decide(deployment(revision=4, failed=True), rs).first_report


def test_a_failure_skipped_while_paused_is_due_once_resumed_and_not_reported_twice() -> None:
    skipped = decide(deployment(failed=True, paused=True), [replicaset(1, "app:1.0.0"), replicaset(2, "app:2.0.0")])
    marks = {history.FAILED_AT: UPDATED, history.OUTCOME: decision.outcome(skipped, "t")}
    rs = [replicaset(1, "app:1.0.0"), replicaset(2, "app:2.0.0", marks)]
    assert decide(deployment(failed=True, paused=True), rs).result == Result.NOTHING  # nothing new to say
    resumed = decide(deployment(failed=True), rs)
    assert resumed.result == Result.SUCCESS and not resumed.first_report


def test_a_failure_planned_in_dry_run_is_due_once_the_mode_is_rollback() -> None:
    planned = decide(deployment(failed=True), [replicaset(1, "app:1.0.0"), replicaset(2, "app:2.0.0")], DRY)
    marks = {history.FAILED_AT: UPDATED, history.OUTCOME: decision.outcome(planned, "t")}
    rs = [replicaset(1, "app:1.0.0"), replicaset(2, "app:2.0.0", marks)]
    assert decide(deployment(failed=True), rs, DRY).result == Result.NOTHING
    assert decide(deployment(failed=True), rs).result == Result.SUCCESS


def test_known_bad_template_rolled_out_again_is_named() -> None:
    entry = ledger.Entry(
        rs_name("app:2.0.0"),
        rs_name("app:1.0.0"),
        "2026-11-26T09:05:00Z",
        "2026-11-26T09:06:00Z",
        "ProgressDeadlineExceeded",
    )
    d = deployment("app:2.0.0", revision=4, annotations={ledger.KEY: ledger.dump((entry,))})
    d["status"]["conditions"] = [
        {
            "type": "Progressing",
            "status": "True",
            "reason": "ReplicaSetUpdated",
            "message": f'ReplicaSet "{rs_name("app:2.0.0")}" is progressing.',
        }
    ]
    rs = [replicaset(3, "app:1.0.0", HEALTHY), replicaset(4, "app:2.0.0"), replicaset(2, "app:3.0.0")]
    message = decision.known_bad(d, rs, DEPLOYMENTS)
    assert message and rs_name("app:2.0.0") in message and "revert it at its source" in message
    # read before the rollback away from it, with the ReplicaSets after: not a rollout of it again
    assert decision.known_bad(d, [replicaset(5, "app:1.0.0", HEALTHY), replicaset(4, "app:2.0.0")], DEPLOYMENTS) is None
    assert "pull request" not in message
    with_pr = [rs[0], replicaset(4, "app:2.0.0", {gitcore.PR_MARK: "https://git.example/pr/7"}), rs[2]]
    assert "The revert pull request is open: https://git.example/pr/7" in decision.known_bad(d, with_pr, DEPLOYMENTS)
    d["metadata"]["annotations"].pop(ledger.KEY)  # kubectl undo replaced the Deployment's copy
    rs[0]["metadata"]["annotations"][ledger.KEY] = ledger.dump((entry,))
    assert decision.known_bad(d, rs, DEPLOYMENTS)
    rs[1] = replicaset(4, "app:2.0.0", {history.HEALTHY_AT: history.health_payload(4)})  # it worked later after all
    assert decision.known_bad(d, rs, DEPLOYMENTS) is None
    d["status"]["conditions"][0]["message"] = f'ReplicaSet "{rs_name("app:3.0.0")}" is progressing.'
    assert decision.known_bad(d, rs, DEPLOYMENTS) is None


def test_healthy_mark_only_for_the_replicaset_that_completed() -> None:
    d = deployment("app:2.0.0", complete=True, revision=2)
    rs = replicaset(2, "app:2.0.0")
    mark = decision.healthy_mark(d, rs, DEPLOYMENTS)
    assert mark == {history.HEALTHY_AT: history.bind(rs_name("app:2.0.0"), "revision 2 generation 2")}
    assert not decision.outlives_failure(mark)
    assert (
        decision.healthy_mark(d, replicaset(1, "app:1.0.0", name=rs_name("app:2.0.0")), DEPLOYMENTS) is None
    )  # other template
    assert decision.healthy_mark(d, None, DEPLOYMENTS) is None  # deleted meanwhile
    assert decision.healthy_mark(d, replicaset(2, "app:2.0.0", owner="other"), DEPLOYMENTS) is None
    assert (
        decision.healthy_mark(d, replicaset(2, "app:2.0.0", {history.HEALTHY_AT: "revision 2"}), DEPLOYMENTS) is None
    )  # known
    assert decision.healthy_mark(
        d, replicaset(2, "app:2.0.0", HEALTHY), DEPLOYMENTS
    )  # an earlier version's mark: rewritten once
    # a ReplicaSet reused by a later rollout (kubectl rollout undo): its completion in that revision is news
    reused = deployment("app:2.0.0", complete=True, revision=4)
    mark = decision.healthy_mark(reused, replicaset(4, "app:2.0.0", {history.HEALTHY_AT: "revision 2"}), DEPLOYMENTS)
    assert mark and history.parse_health(mark[history.HEALTHY_AT].partition(" ")[2]).revision == 4
    restored = ledger.Entry("web-x", rs_name("app:2.0.0"), "2026-11-26T09:05:00Z", "2026-11-26T09:10:00Z", revision=1)
    d["metadata"]["annotations"][ledger.KEY] = ledger.dump((restored,))
    # proven again after the rollback of revision 1 (a mark of an earlier version, read by its old rule)
    proven = decision.healthy_mark(d, replicaset(2, "app:2.0.0", HEALTHY), DEPLOYMENTS)
    assert proven == {history.HEALTHY_AT: history.bind(rs_name("app:2.0.0"), "revision 2 generation 2")}
    assert decision.healthy_mark(d, replicaset(2, "app:2.0.0", {history.HEALTHY_AT: "revision 2"}), DEPLOYMENTS) is None
    assert decision.recovered_since(d, rs_name("app:2.0.0")) == "2026-11-26T09:10:00Z"


def test_a_healthy_mark_names_the_revision_seen_complete_and_the_failure_of_it_outlived() -> None:
    # revision 2 timed out, was not rolled back (paused, say), and completed after all
    d = deployment("app:2.0.0", complete=True, revision=2)
    failed = replicaset(2, "app:2.0.0", {history.FAILED_AT: history.failure_payload("2026-11-26T09:05:00Z", 2)})
    mark = decision.healthy_mark(d, failed, DEPLOYMENTS)
    assert mark == {
        history.HEALTHY_AT: history.bind(rs_name("app:2.0.0"), "revision 2 generation 2 outlived 2026-11-26T09:05:00Z")
    }
    assert decision.outlives_failure(mark)
    # the ReplicaSet was reused by revision 3 since (read now): the mark is about revision 2, seen complete
    reused = replicaset(3, "app:2.0.0", {history.FAILED_AT: history.failure_payload("2026-11-26T09:05:00Z", 3)})
    later = decision.healthy_mark(d, reused, DEPLOYMENTS)
    assert later == {history.HEALTHY_AT: history.bind(rs_name("app:2.0.0"), "revision 2 generation 2")}
    assert not deployments.revisions(
        [{**reused, "metadata": {**reused["metadata"], "annotations": {**reused["metadata"]["annotations"], **later}}}]
    )[0].healthy  # revision 3's failure came after
    assert decision.still_complete(d, d, DEPLOYMENTS)
    assert not decision.still_complete(d, deployment("app:2.0.0", revision=2, failed=True), DEPLOYMENTS)


def test_a_metric_failure_is_never_outlived_by_the_completion() -> None:
    # its checks failed after it completed, and it was not rolled back (paused): completing again
    # (a restart, a scale) must not make it healthy, or it would become the preferred rollback target
    d = deployment("app:2.0.0", complete=True, revision=2)
    marks = {
        history.FAILED_AT: history.failure_payload("2026-11-26T09:05:00.5Z", 2),
        history.FAILED_REASON: "MetricCheckFailed: error-ratio 0.4 > 0.05 (3 consecutive)",
    }
    assert decision.healthy_mark(d, replicaset(2, "app:2.0.0", marks), DEPLOYMENTS) is None
    later = replicaset(
        3, "app:2.0.0", {**marks, history.FAILED_AT: history.failure_payload("2026-11-26T09:05:00.5Z", 2)}
    )
    assert decision.healthy_mark(deployment("app:2.0.0", complete=True, revision=3), later, DEPLOYMENTS)


def test_a_healthy_mark_never_names_a_revision_above_the_replicasets_own() -> None:
    # the Deployment's revision annotation is anyone's to write (an exported manifest re-applied): the
    # ReplicaSet's own number bounds it, or every later failure of the template would look older
    forged = deployment("app:2.0.0", complete=True, revision=99)
    mark = decision.healthy_mark(forged, replicaset(2, "app:2.0.0"), DEPLOYMENTS)
    assert mark == {history.HEALTHY_AT: history.bind(rs_name("app:2.0.0"), "revision 2 generation 2")}
    failed = replicaset(
        4,
        "app:2.0.0",
        {
            history.FAILED_AT: history.failure_payload("2026-11-26T09:05:00Z", 4),
            **{k: v.partition(" ")[2] for k, v in mark.items()},
        },
    )
    assert not deployments.revisions([failed])[0].healthy


def test_a_rollback_undone_before_the_controller_saw_it_does_not_disown_the_template() -> None:
    # 2.0.0 (revision 2) timed out at generation 2 and was rolled back to 1.0.0, but GitOps re-applied 2.0.0
    # before the controller synced: 2.0.0 stayed revision 2 and completed in it, at generation 4
    undone = ledger.Entry(rs_name("app:2.0.0"), rs_name("app:1.0.0"), UPDATED, NOW, revision=2, generation=2)
    seen = deployment(
        "app:2.0.0", revision=2, complete=True, generation=4, annotations={ledger.KEY: ledger.dump((undone,))}
    )
    failed = replicaset(2, "app:2.0.0", {history.FAILED_AT: history.failure_payload(UPDATED, 2)})
    mark = decision.healthy_mark(seen, failed, DEPLOYMENTS)
    assert mark == {
        history.HEALTHY_AT: history.bind(rs_name("app:2.0.0"), f"revision 2 generation 4 outlived {UPDATED}")
    }
    # the next release fails: back to 2.0.0, the release that ran before it, not two releases back
    proven = replicaset(
        2,
        "app:2.0.0",
        {history.FAILED_AT: history.failure_payload(UPDATED, 2), **{k: v.partition(" ")[2] for k, v in mark.items()}},
    )
    d = deployment("app:3.0.0", revision=3, failed=True, generation=5, annotations={ledger.KEY: ledger.dump((undone,))})
    out = decide(
        d,
        [
            replicaset(1, "app:1.0.0", {history.HEALTHY_AT: history.health_payload(1, "", 1)}),
            proven,
            replicaset(3, "app:3.0.0"),
        ],
    )
    assert out.result == Result.SUCCESS and out.target.name == rs_name("app:2.0.0")
    assert decision.known_bad(seen, [proven], DEPLOYMENTS) is None


def test_history_too_short() -> None:
    d = deployment()
    assert decision.history_too_short(d) is None
    d["spec"]["revisionHistoryLimit"] = 1
    assert "revisionHistoryLimit is 1" in decision.history_too_short(d)
    assert "deletes old ReplicaSets" in decision.history_too_short(d)
    assert "deletes old ControllerRevisions" in decision.history_too_short(d, "StatefulSet")


def test_stray_marks_are_removed_only_as_they_were_seen() -> None:
    d = deployment(annotations={history.HEALTHY_AT: "web-1 t", "autorollback.io/revert-pr": "web-1 https://x"})
    ops = decision.stray_marks(d)
    assert {"op": "test", "path": "/metadata/annotations/autorollback.io~1healthy-at", "value": "web-1 t"} in ops
    assert {"op": "remove", "path": "/metadata/annotations/autorollback.io~1revert-pr"} in ops
    assert decision.stray_marks(deployment()) == []


def test_a_rollout_the_controller_will_never_time_out_is_timed_by_the_operator() -> None:
    # The controller's first status write for revision 2 was refused; its next sync saw no progress
    # and kept revision 1's "successfully progressed" condition: DeploymentTimedOut returns false on it.
    stuck = deployment("app:2.0.0", revision=2, complete=True, blamed="app:1.0.0")
    stuck["status"].update(replicas=4, updatedReplicas=1, availableReplicas=3)
    rs = [replicaset(1, "app:1.0.0", HEALTHY, available=3), replicaset(2, "app:2.0.0")]
    assert deployments.complete_left_over(stuck) == rs_name("app:1.0.0")
    early = decision.decide(
        stuck,
        rs,
        ON,
        "2026-11-26T10:00:09Z",
        measured=decision.Measured(9, "2026-11-26T10:00:00Z"),
        workload=DEPLOYMENTS,
    )
    assert (early.result, early.reason) == (Result.NOTHING, "stale")
    assert "completed rollout" in early.message
    late = decision.decide(
        stuck,
        rs,
        ON,
        "2026-11-26T10:10:01Z",
        measured=decision.Measured(601, "2026-11-26T10:00:00Z"),
        workload=DEPLOYMENTS,
    )
    assert (late.result, late.target.number) == (Result.SUCCESS, 1)
    assert "will not time this rollout out" in late.failure.message
    assert late.failure.revision_name == rs_name("app:2.0.0") and late.failure.updated == "2026-11-26T10:00:00Z"


def test_a_completed_rollout_that_loses_pods_is_not_a_failure() -> None:
    done = deployment("app:2.0.0", revision=2, complete=True)
    done["status"]["availableReplicas"] = 2  # a node went away
    assert deployments.complete_left_over(done) == rs_name("app:2.0.0")
    rs = [replicaset(1, "app:1.0.0", HEALTHY), replicaset(2, "app:2.0.0", available=2)]
    out = decision.decide(
        done,
        rs,
        ON,
        "2026-11-26T11:00:00Z",
        measured=decision.Measured(3600, "2026-11-26T10:00:00Z"),
        workload=DEPLOYMENTS,
    )
    assert (out.result, out.reason) == (Result.NOTHING, "no_failure")
    # revision 1's condition left over (a Recreate rollout): revision 2 was seen complete, then lost pods
    recreated = deployment("app:2.0.0", revision=2, complete=True, blamed="app:1.0.0")
    recreated["status"]["availableReplicas"] = 0
    proven = [replicaset(1, "app:1.0.0", HEALTHY), replicaset(2, "app:2.0.0", {history.HEALTHY_AT: "revision 2"})]
    out = decision.decide(
        recreated,
        proven,
        ON,
        "2026-11-26T11:00:00Z",
        measured=decision.Measured(3600, "2026-11-26T10:00:00Z"),
        workload=DEPLOYMENTS,
    )
    assert (out.result, out.reason) == (Result.NOTHING, "no_failure")
    surge = deployment("app:2.0.0", revision=2, complete=True)
    surge["status"]["replicas"] = 4  # named the current ReplicaSet: decided "no failure" after one look
    rs = [replicaset(1, "app:1.0.0", HEALTHY), replicaset(2, "app:2.0.0", available=3)]
    out = decision.decide(
        surge,
        rs,
        ON,
        "2026-11-26T11:00:00Z",
        measured=decision.Measured(3600, "2026-11-26T10:00:00Z"),
        workload=DEPLOYMENTS,
    )
    assert (out.result, out.reason) == (Result.NOTHING, "no_failure")
    surge["spec"]["paused"] = True
    assert deployments.complete_left_over(surge) == ""


def test_a_recreate_rollout_under_a_left_over_condition_is_timed_by_the_operator() -> None:
    # Recreate scales the old pods away first, so replicas == updatedReplicas: the controller does not
    # even look at progress under revision 1's "successfully progressed" condition, ever.
    stuck = deployment("app:2.0.0", revision=2, complete=True, blamed="app:1.0.0")
    stuck["status"].update(replicas=3, updatedReplicas=3, readyReplicas=0, availableReplicas=0)
    assert deployments.complete_left_over(stuck) == rs_name("app:1.0.0")
    rs = [replicaset(1, "app:1.0.0", HEALTHY), replicaset(2, "app:2.0.0")]
    early = decision.decide(
        stuck, rs, ON, NOW, measured=decision.Measured(599, "2026-11-26T10:00:00Z"), workload=DEPLOYMENTS
    )
    assert (early.result, early.reason) == (Result.NOTHING, "stale")
    late = decision.decide(
        stuck, rs, ON, NOW, measured=decision.Measured(600, "2026-11-26T10:00:00Z"), workload=DEPLOYMENTS
    )
    assert (late.result, late.target.number) == (Result.SUCCESS, 1)
    # rolled back to revision 1: the condition naming its ReplicaSet is from before, not about the restored rollout
    entry = ledger.Entry(rs_name("app:2.0.0"), rs_name("app:1.0.0"), "2026-11-26T10:00:00Z", NOW, revision=2)
    restored = deployment("app:1.0.0", revision=3, complete=True, annotations={ledger.KEY: ledger.dump((entry,))})
    restored["status"].update(replicas=3, updatedReplicas=0, availableReplicas=0)
    rs = [replicaset(3, "app:1.0.0", HEALTHY), replicaset(2, "app:2.0.0", {history.OUTCOME: "success (x) at t"})]
    assert deployments.complete_left_over(restored) == rs_name("app:1.0.0")
    waiting = decision.decide(
        restored, rs, ON, NOW, measured=decision.Measured(1, "2026-11-26T10:10:00Z"), workload=DEPLOYMENTS
    )
    assert (waiting.result, waiting.reason) == (Result.NOTHING, "stale")
    assert "from before it was rolled back to" in waiting.message
    failed = decision.decide(
        restored, rs, ON, NOW, measured=decision.Measured(600, "2026-11-26T10:10:00Z"), workload=DEPLOYMENTS
    )
    assert (failed.result, failed.reason) == (Result.ABANDONED, "restored_revision_failed")
    # it completes: the counts say so under the same condition, and the mark proves it
    restored["status"].update(updatedReplicas=3, availableReplicas=3)
    mark = decision.healthy_mark(restored, rs[0], DEPLOYMENTS)
    assert mark and mark[history.HEALTHY_AT].startswith(rs_name("app:1.0.0") + " revision 3")


def test_a_reused_replicaset_is_proven_only_by_a_completion_in_its_current_revision() -> None:
    # Revision 1 (app:1.0.0) completed, then revision 2; a person undoes to app:1.0.0 (revision 3):
    # the controller keeps revision 2's condition and, under Recreate, never checks progress. Its pods crash.
    undone = deployment("app:1.0.0", revision=3, complete=True, blamed="app:2.0.0")
    undone["status"].update(replicas=3, updatedReplicas=3, availableReplicas=0)
    rs = [
        replicaset(3, "app:1.0.0", {history.HEALTHY_AT: "revision 1"}),
        replicaset(2, "app:2.0.0", {history.HEALTHY_AT: "revision 2"}),
    ]
    out = decision.decide(
        undone, rs, ON, NOW, measured=decision.Measured(600, "2026-11-26T10:00:00Z"), workload=DEPLOYMENTS
    )
    assert (out.result, out.target.number) == (Result.SUCCESS, 2)
    rs[0] = replicaset(3, "app:1.0.0", {history.HEALTHY_AT: "revision 3"})  # seen complete in revision 3
    out = decision.decide(
        undone, rs, ON, NOW, measured=decision.Measured(600, "2026-11-26T10:00:00Z"), workload=DEPLOYMENTS
    )
    assert (out.result, out.reason) == (Result.NOTHING, "no_failure")


def test_a_healthy_mark_follows_the_counts_when_the_condition_names_an_earlier_replicaset() -> None:
    d = deployment("app:2.0.0", revision=2, complete=True, blamed="app:1.0.0")
    mark = decision.healthy_mark(d, replicaset(2, "app:2.0.0"), DEPLOYMENTS)
    assert mark == {history.HEALTHY_AT: history.bind(rs_name("app:2.0.0"), "revision 2 generation 2")}
    assert (
        decision.healthy_mark(d, replicaset(1, "app:1.0.0", available=3), DEPLOYMENTS) is None
    )  # not the current template's


def test_an_old_rollback_to_the_same_template_does_not_start_the_clock() -> None:
    # Days ago autorollback restored app:1.0.0; since then 3.0.0 completed, and now a person undoes
    # back to 1.0.0: the controller's first look shows 3.0.0's condition. Only now counts.
    old = ledger.Entry(rs_name("app:2.0.0"), rs_name("app:1.0.0"), "2026-11-20T10:00:00Z", "2026-11-20T10:01:00Z")
    undone = deployment(
        "app:1.0.0", revision=5, complete=True, blamed="app:3.0.0", annotations={ledger.KEY: ledger.dump((old,))}
    )
    undone["status"].update(replicas=4, updatedReplicas=1, availableReplicas=3)
    rs = [replicaset(5, "app:1.0.0"), replicaset(4, "app:3.0.0", HEALTHY, available=3)]
    out = decision.decide(
        undone,
        rs,
        ON,
        "2026-11-26T10:00:01Z",
        measured=decision.Measured(1, "2026-11-26T10:00:00Z"),
        workload=DEPLOYMENTS,
    )
    assert (out.result, out.reason) == (Result.NOTHING, "stale")


def test_a_measured_timeout_is_one_failure_across_restarts() -> None:
    stuck = deployment("app:2.0.0", revision=2, complete=True, blamed="app:1.0.0")
    stuck["status"].update(replicas=4, updatedReplicas=1, availableReplicas=3)
    rs = [replicaset(1, "app:1.0.0", HEALTHY, available=3), replicaset(2, "app:2.0.0")]
    planned = decision.decide(
        stuck,
        rs,
        DRY,
        "2026-11-26T10:10:01Z",
        measured=decision.Measured(601, "2026-11-26T10:00:00Z"),
        workload=DEPLOYMENTS,
    )
    assert planned.result == Result.DRY_RUN and planned.first_report
    marks = {
        history.FAILED_AT: history.failure_payload(planned.failure.updated, 2),
        history.FAILED_REASON: f"{planned.failure.reason}: {planned.failure.message}",
        history.OUTCOME: decision.outcome(planned, "t"),
    }
    rs[1] = replicaset(2, "app:2.0.0", marks)
    # another process (a restart, a failover) measures again from later: still the same failure
    again = decision.decide(
        stuck,
        rs,
        DRY,
        "2026-11-26T10:30:01Z",
        measured=decision.Measured(601, "2026-11-26T10:20:00Z"),
        workload=DEPLOYMENTS,
    )
    assert (again.result, again.reason) == (Result.NOTHING, "handled")
    enabled = decision.decide(
        stuck,
        rs,
        ON,
        "2026-11-26T10:30:01Z",
        measured=decision.Measured(601, "2026-11-26T10:20:00Z"),
        workload=DEPLOYMENTS,
    )
    assert enabled.result == Result.SUCCESS and not enabled.first_report


def test_a_rollback_whose_report_was_lost_is_reported_even_after_a_dry_run_plan() -> None:
    d = deployment("app:1.1.0", revision=5, failed=True)
    rs = [
        replicaset(4, "app:1.0.0", HEALTHY),
        replicaset(
            5,
            "app:1.1.0",
            {
                history.FAILED_AT: history.failure_payload("2026-11-26T09:59:00Z", 5),
                history.FAILED_REASON: "CrashLoopBackOff: planned in dry-run",
                history.OUTCOME: "dry_run (dry_run) at t",
            },
        ),
    ]
    first = decide(d, rs)
    assert first.result == Result.SUCCESS and not first.first_report  # the plan said it already
    after = deployment(
        "app:1.0.0",
        revision=6,
        failed=True,
        generation=3,
        blamed="app:1.1.0",
        annotations={ledger.KEY: first.undo.body[2]["value"][ledger.KEY]},
    )
    late = decide(after, [rs[1], replicaset(6, "app:1.0.0", HEALTHY)])  # crashed right after the patch
    assert (late.result, late.undo) == (Result.SUCCESS, None)


def test_a_checkpoint_counts_only_for_its_replicaset_and_state() -> None:
    key = bytes(32)
    current = replicaset(2, "app:2.0.0")
    current["metadata"]["uid"] = "rs-uid-2"
    holder = decision.checkpoint_holder([current], current["spec"]["template"], DEPLOYMENTS)
    assert holder == decision.Checkpointed(rs_name("app:2.0.0"), "rs-uid-2", "")
    current["metadata"]["annotations"][decision.NO_PROGRESS] = decision.checkpoint(key, holder, "abc", 42.7)
    rs = [replicaset(1, "app:1.0.0"), current]
    template = deployment("app:2.0.0")["spec"]["template"]
    assert decision.checkpointed(rs, template, "abc", key, DEPLOYMENTS) == 42
    assert decision.checkpointed(rs, template, "other", key, DEPLOYMENTS) == 0  # progress since: another state
    assert (
        decision.checkpointed(rs, template, "abc", b"another key".ljust(32), DEPLOYMENTS) == 0
    )  # not the operator's key
    copied = replicaset(
        2,
        "app:2.0.0",
        annotations={
            decision.NO_PROGRESS: decision.checkpoint(
                key, decision.Checkpointed(rs_name("app:1.0.0"), "rs-uid-2", ""), "abc", 42
            )
        },
    )
    copied["metadata"]["uid"] = "rs-uid-2"
    assert decision.checkpointed([copied], template, "abc", key, DEPLOYMENTS) == 0  # a copy from another ReplicaSet
    assert decision.checkpointed(rs, deployment("app:3.0.0")["spec"]["template"], "abc", key, DEPLOYMENTS) == 0
    # the pre-signature format (what a tenant could write): nothing
    current["metadata"]["annotations"][decision.NO_PROGRESS] = f"{rs_name('app:2.0.0')} abc 10000000"
    assert decision.checkpointed(rs, template, "abc", key, DEPLOYMENTS) == 0


def test_the_rollback_that_restored_a_replicaset_is_found_in_the_ledger() -> None:
    restored = ledger.Entry(rs_name("app:2.0.0"), rs_name("app:1.0.0"), "2026-11-26T09:05:00Z", "t", revision=2)
    d = deployment("app:1.0.0", complete=True, revision=3, annotations={ledger.KEY: ledger.dump((restored,))})
    assert decision.restoring(d, rs_name("app:1.0.0")) == restored
    assert decision.restoring(d, rs_name("app:2.0.0")) is None
