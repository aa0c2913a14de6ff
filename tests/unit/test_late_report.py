"""A rollback whose patch went through but whose report was lost is reported when the revision it
restored completes: decided from state that lasts (the failed ReplicaSet's marks), so a retry or
another process decides the same, whatever was written about the restored ReplicaSet meanwhile."""

import copy
from typing import Any

import pytest

from autorollback import config, decision, history, kube, ledger, reconcile
from autorollback.context import Context
from autorollback.vocab import Job, Result
from autorollback.workloads import deployment as deployments
from autorollback.workloads.deployment import DEPLOYMENTS

from factories import UPDATED, deployment, replicaset, rs_name

GOOD, BAD = rs_name("app:1.0.0"), rs_name("app:2.0.0")
LOST = ledger.Entry(BAD, GOOD, UPDATED, "2026-11-26T10:00:05Z", "ProgressDeadlineExceeded", revision=2)


def revision(rs: dict[str, Any]) -> history.Revision:
    return deployments.revisions([rs], (LOST,))[0]


def failure_marks(updated: str, number: int, outcome: str) -> dict[str, str]:
    return {
        history.FAILED_AT: history.failure_payload(updated, number),
        history.FAILED_REASON: "ProgressDeadlineExceeded: timed out",
        history.OUTCOME: outcome,
    }


def test_a_lost_rollback_is_reported_when_the_revision_it_restored_completes() -> None:
    restored = revision(replicaset(3, "app:1.0.0"))
    late = decision.late_report(LOST, revision(replicaset(2, "app:2.0.0")), restored)
    assert late is not None and late.result == Result.SUCCESS and late.first_report
    assert late.failing.name == BAD and late.target.name == GOOD and late.failure.updated == UPDATED
    # proven since that rollback (an earlier completion settled it; the shell reports before it marks):
    # e.g. the failed ReplicaSet was garbage-collected and re-created without marks, then undone to
    proven = revision(replicaset(7, "app:1.0.0", {history.HEALTHY_AT: history.health_payload(3)}))
    assert decision.late_report(LOST, revision(replicaset(6, "app:2.0.0")), proven) is None


def test_a_late_report_is_made_once_and_never_over_a_newer_record() -> None:
    restored = revision(replicaset(3, "app:1.0.0"))
    reported = failure_marks(UPDATED, 2, "success (ProgressDeadlineExceeded) at t")
    assert decision.late_report(LOST, revision(replicaset(2, "app:2.0.0", reported)), restored) is None
    # the template was re-applied (revision 4) and failed again: its marks are newer than the entry
    again = failure_marks("2026-11-26T11:00:00Z", 4, "abandoned (reapplied) at t")
    assert decision.late_report(LOST, revision(replicaset(4, "app:2.0.0", again)), restored) is None
    # the same failure, recorded but not as rolled back (paused, then resumed and rolled back): report
    paused = failure_marks(UPDATED, 2, "skipped (paused) at t")
    assert decision.late_report(LOST, revision(replicaset(2, "app:2.0.0", paused)), restored) is not None
    # an earlier failure of the template (revision 1 of it, say): older than the entry, report
    older = failure_marks("2026-11-26T08:00:00Z", 1, "success (ProgressDeadlineExceeded) at t")
    assert decision.late_report(LOST, revision(replicaset(2, "app:2.0.0", older)), restored) is not None
    # an entry of an earlier version (no revision): only over no record, or this same failure
    legacy = ledger.Entry(BAD, GOOD, UPDATED, "2026-11-26T10:00:05Z")
    restored_legacy = deployments.revisions([replicaset(3, "app:1.0.0")], (legacy,))[0]
    assert decision.late_report(legacy, revision(replicaset(2, "app:2.0.0")), restored_legacy) is not None
    assert decision.late_report(legacy, revision(replicaset(2, "app:2.0.0", older)), restored_legacy) is None


def test_a_later_failure_of_the_same_revision_is_not_overwritten() -> None:
    # the template was re-applied before the controller saw the rollback, so it stayed revision 2,
    # failed again and was abandoned: a failure of the same revision, decided after this rollback
    restored = revision(replicaset(3, "app:1.0.0"))
    abandoned = failure_marks("2026-11-26T10:30:00Z", 2, "abandoned (reapplied) at t")
    assert decision.late_report(LOST, revision(replicaset(2, "app:2.0.0", abandoned)), restored) is None
    # one of the same revision only planned (dry-run) or deferred (paused) came before it: report
    planned = failure_marks("2026-11-26T09:50:00Z", 2, "dry_run (CrashLoopBackOff) at t")
    assert decision.late_report(LOST, revision(replicaset(2, "app:2.0.0", planned)), restored) is not None


# --- the shell: _healthy, with the API faked ---------------------------------------------------------


class FakeApi:
    """The Deployment and its ReplicaSets; `fail` makes the next GETs of a ReplicaSet fail (503)."""

    def __init__(self, d: dict[str, Any], replicasets: list[dict[str, Any]]) -> None:
        self.d, self.rs = d, {r["metadata"]["name"]: r for r in replicasets}
        self.fail: dict[str, int] = {}
        self.events: list[str] = []
        self.once: set[str] = set()

    def get_replicaset(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self.fail.get(name):
            self.fail[name] -= 1
            raise kube.ApiError(503, "ServiceUnavailable", f"injected: GET {name}")
        return copy.deepcopy(self.rs.get(name))

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.d)

    def annotate_replicaset(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        ann = self.rs[name]["metadata"]["annotations"]
        for k, v in annotations.items():
            ann.pop(k, None) if v is None else ann.__setitem__(k, v)

    def post_event(
        self, obj: dict[str, Any], type_: str, reason: str, message: str, component: str = "", once: str = ""
    ) -> None:
        if once and once in self.once:
            raise kube.ApiError(409, "Conflict", "told already")
        self.once.add(once)
        self.events.append(reason)


class NoGit:
    """Git revert is not configured: the worker takes nothing."""

    def submit(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def api() -> FakeApi:
    """The rollback 2 -> 1 was patched (revision 3 restores app:1.0.0), then the process stopped: no
    Events, no marks on the failed ReplicaSet. Revision 3 has just completed."""
    d = deployment("app:1.0.0", revision=3, complete=True, generation=3, annotations={ledger.KEY: ledger.dump((LOST,))})
    fake = FakeApi(
        d,
        [
            replicaset(3, "app:1.0.0", {history.HEALTHY_AT: history.health_payload(1)}, available=3),
            replicaset(2, "app:2.0.0"),
        ],
    )
    return fake


def healthy_pass(fake: FakeApi) -> reconcile.PassResult:
    d = fake.get_deployment("ns", "web")
    ctx = Context(fake, NoGit(), b"key")  # type: ignore[arg-type]  # the Client's calls, faked
    work = reconcile.Work(
        ctx=ctx,
        uid="d-uid",
        namespace="ns",
        name="web",
        deployment=d,
        config=config.parse(d["metadata"]["annotations"]),
        jobs={Job.HEALTHY},
        workload=DEPLOYMENTS,
        healthy_evidence=(GOOD, d),
    )
    return reconcile.run(work)


def test_a_lost_rollback_is_reported_on_the_retry_after_its_report_failed(api: FakeApi) -> None:
    api.fail[BAD] = 1  # the late report's read of the failed ReplicaSet fails
    first = healthy_pass(api)
    assert first.retry is not None and api.events == []
    assert revision(api.rs[GOOD]).health == history.Health(1)  # not marked before the report is made
    healthy_pass(api)  # the retry
    assert api.events == ["RolloutFailed", "RolledBack"]
    assert revision(api.rs[GOOD]).health == history.Health(3, generation=3)
    assert revision(api.rs[BAD]).failure_id == UPDATED
    healthy_pass(api)  # the same completion seen again: told once
    assert api.events == ["RolloutFailed", "RolledBack"]


def test_a_late_report_leaves_a_newer_failure_of_the_template_alone(api: FakeApi) -> None:
    # meanwhile the template was re-applied (revision 4), failed and was abandoned; a person undid to 1.0.0
    again = failure_marks("2026-11-26T11:00:00Z", 4, "abandoned (reapplied) at t")
    api.rs[BAD] = replicaset(4, "app:2.0.0", again)
    api.d = deployment(
        "app:1.0.0", revision=5, complete=True, generation=7, annotations={ledger.KEY: ledger.dump((LOST,))}
    )
    healthy_pass(api)
    assert api.events == []
    assert revision(api.rs[BAD]).mark(history.FAILED_AT) == history.failure_payload("2026-11-26T11:00:00Z", 4)


def test_a_late_report_names_the_revision_that_failed(api: FakeApi) -> None:
    # meanwhile the template was re-applied as revision 4 and completed: the rollback was of revision 2
    api.rs[BAD] = replicaset(4, "app:2.0.0", {history.HEALTHY_AT: history.health_payload(4)})
    api.d = deployment(
        "app:1.0.0", revision=5, complete=True, generation=7, annotations={ledger.KEY: ledger.dump((LOST,))}
    )
    api.rs[GOOD] = replicaset(5, "app:1.0.0", available=3)
    late = decision.late_report(LOST, revision(api.rs[BAD]), revision(api.rs[GOOD]))
    assert late.failing.number == 2 and late.message.startswith("rolled back from revision 2 (app:2.0.0) to revision 5")
    healthy_pass(api)
    assert api.events == ["RolloutFailed", "RolledBack"]
    assert revision(api.rs[BAD]).failed_in == 2 and revision(api.rs[BAD]).healthy  # proven in revision 4 since
