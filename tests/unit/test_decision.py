from autorollback import annotations, decision, history, rollout
from factories import deployment, replicaset

ON = annotations.parse({"autorollback.io/enabled": "true"})
DRY = annotations.parse({"autorollback.io/enabled": "true", "autorollback.io/mode": "dry-run"})
HEALTHY = {history.HEALTHY_AT: "2026-11-26T09:00:00.000000Z"}


def decide(d, replicasets, config=ON):
    return decision.decide(d, replicasets, config, rollout.failure(d))


def test_rolls_back_to_the_last_healthy_revision() -> None:
    d = deployment("app:1.1.0", revision=5, failed=True)
    out = decide(d, [replicaset(4, "app:1.0.0", HEALTHY), replicaset(5, "app:1.1.0")])
    assert out.result == decision.SUCCESS and out.event_reason == "RolledBack" and out.event_type == "Normal"
    assert out.target.number == 4 and out.failing.number == 5
    cause = out.patch[2]["value"]["kubernetes.io/change-cause"]
    assert cause == ("autorollback: rolled back from revision 5 (app:1.1.0) to revision 4 (app:1.0.0): "
                     "ProgressDeadlineExceeded")


def test_dry_run_plans_the_same_patch() -> None:
    d = deployment("app:1.1.0", revision=5, failed=True)
    rs = [replicaset(4, "app:1.0.0", HEALTHY), replicaset(5, "app:1.1.0")]
    plan, real = decide(d, rs, DRY), decide(d, rs)
    assert plan.result == decision.DRY_RUN and plan.event_reason == "RollbackPlanned"
    assert plan.patch == real.patch
    assert "would roll back from revision 5 (app:1.1.0) to revision 4 (app:1.0.0)" in plan.message
    assert "nothing was changed" in plan.message


def test_paused_is_skipped_with_the_resume_command() -> None:
    out = decide(deployment(failed=True, paused=True), [replicaset(1, "app:1.0.0"), replicaset(2, "app:2.0.0")])
    assert (out.result, out.reason, out.event_reason) == (decision.SKIPPED, "paused", "RollbackSkipped")
    assert "kubectl rollout resume deployment/web -n ns" in out.message


def test_first_revision_is_impossible() -> None:
    out = decide(deployment("app:1.0.0", revision=1, failed=True), [replicaset(1, "app:1.0.0")])
    assert (out.result, out.event_reason) == (decision.IMPOSSIBLE, "RollbackImpossible")
    assert "no older revision" in out.message and "revisionHistoryLimit" in out.message


def test_restored_revision_failing_again_is_abandoned() -> None:
    restored = {history.HEALTHY_AT: "2026-11-26T09:00:00.000000Z", history.RESTORED_AT: "2026-11-26T09:10:00.000000Z"}
    d = deployment("app:1.0.0", revision=3, failed=True)
    out = decide(d, [replicaset(2, "app:2.0.0", {history.FAILED_AT: "2026-11-26T09:05:00Z"}),
                     replicaset(3, "app:1.0.0", restored)])
    assert (out.result, out.reason, out.event_reason) == (decision.ABANDONED, "restored_revision_failed",
                                                          "RollbackAbandoned")
    assert "manual intervention" in out.message and out.patch == []


def test_reapplied_known_bad_template_is_abandoned() -> None:
    d = deployment("app:2.0.0", revision=4, failed=True)
    out = decide(d, [replicaset(3, "app:1.0.0", HEALTHY),
                     replicaset(4, "app:2.0.0", {history.ROLLED_BACK_AT: "2026-11-26T09:10:00.000000Z"})])
    assert (out.result, out.reason) == (decision.ABANDONED, "reapplied")
    assert "re-applied" in out.message


def test_template_already_matching_is_skipped() -> None:
    # like kubectl's "skipped rollback (current template already matches revision N)"
    d = deployment("app:1.0.0", revision=2, failed=True)
    out = decide(d, [replicaset(1, "app:1.0.0", HEALTHY, name="web-old"), replicaset(2, "app:1.0.0")])
    assert (out.result, out.reason, out.event_reason) == (decision.SKIPPED, "template_matches", "RollbackSkipped")
    assert out.patch == [] and "already matches revision 1" in out.message


def test_already_handled() -> None:
    d = deployment(failed=True, since="2026-11-26T10:00:00Z")
    f = rollout.failure(d)
    marked = history.revisions([replicaset(2, "app:2.0.0", {history.FAILED_AT: "2026-11-26T10:00:00Z",
                                                            history.OUTCOME: "success (x) at t"})])[0]
    older = history.revisions([replicaset(2, "app:2.0.0", {history.FAILED_AT: "2026-11-26T09:00:00Z"})])[0]
    assert decision.already_handled(marked, f, False, False) and not decision.already_handled(older, f, False, False)
    assert not decision.already_handled(None, f, False, False)


def test_a_failure_skipped_while_paused_is_due_once_resumed() -> None:
    f = rollout.failure(deployment(failed=True, since="2026-11-26T10:00:00Z"))
    skipped = decide(deployment(failed=True, paused=True), [replicaset(1, "app:1.0.0"), replicaset(2, "app:2.0.0")])
    marks = {history.FAILED_AT: "2026-11-26T10:00:00Z", history.OUTCOME: decision.outcome(skipped, "t")}
    rs = history.revisions([replicaset(2, "app:2.0.0", marks)])[0]
    assert decision.already_handled(rs, f, paused=True, dry_run=False)  # still paused: nothing new to say
    assert not decision.already_handled(rs, f, paused=False, dry_run=False)  # resumed: act now
    assert decision.seen_before(rs, f)  # but the failure itself is not reported twice


def test_known_bad_template_rolled_out_again_is_named() -> None:
    d = deployment("app:2.0.0", revision=4)
    bad = {history.FAILED_AT: "2026-11-26T09:05:00Z", history.ROLLED_BACK_AT: "2026-11-26T09:06:00.000000Z"}
    message = decision.known_bad(d, [replicaset(3, "app:1.0.0", HEALTHY), replicaset(4, "app:2.0.0", bad)])
    assert message and "revision 4 (app:2.0.0)" in message and "revert it at its source" in message
    assert decision.known_bad(deployment("app:1.0.0", revision=3), [replicaset(3, "app:1.0.0", HEALTHY)]) is None
    proven = {**bad, history.HEALTHY_AT: "2026-11-26T10:00:00.000000Z"}  # it worked later after all
    assert decision.known_bad(d, [replicaset(4, "app:2.0.0", proven)]) is None


def test_recheck_after_a_conflict() -> None:
    failed = deployment("app:2.0.0", failed=True)
    template = failed["spec"]["template"]
    assert decision.recheck(failed, template, ON) is None  # same template, still failing: decide again
    scaled = deployment("app:2.0.0", generation=3)
    scaled["status"]["observedGeneration"] = 2
    assert decision.recheck(scaled, template, ON) is None  # not observed yet is not "recovered"
    fixed = deployment("app:2.0.1")
    assert decision.recheck(fixed, template, ON).reason == "template_changed"
    off = annotations.parse({"autorollback.io/enabled": "false"})
    assert decision.recheck(failed, template, off).reason == "opted_out"
    assert decision.recheck(deployment("app:2.0.0", complete=True), template, ON).reason == "recovered"


def test_a_failure_planned_in_dry_run_is_due_once_the_mode_is_rollback() -> None:
    f = rollout.failure(deployment(failed=True, since="2026-11-26T10:00:00Z"))
    planned = decide(deployment(failed=True), [replicaset(1, "app:1.0.0"), replicaset(2, "app:2.0.0")], DRY)
    marks = {history.FAILED_AT: "2026-11-26T10:00:00Z", history.OUTCOME: decision.outcome(planned, "t")}
    rs = history.revisions([replicaset(2, "app:2.0.0", marks)])[0]
    assert decision.already_handled(rs, f, paused=False, dry_run=True)
    assert not decision.already_handled(rs, f, paused=False, dry_run=False)
