"""The workload seam's contract, kept by every adapter: the same decision, written once against
`Workload`, plans a rollback of any kind as that kind's undo (a JSON patch for Deployments, a
strategic merge patch of a ControllerRevision's data for StatefulSets and DaemonSets), and that undo
always carries the resourceVersion precondition and the ledger entry in the same write.

Every registered adapter (workloads.KINDS) runs here, on objects shaped as its controller writes them
(factories); that each keeps the protocols structurally is checked by mypy on `workloads.KINDS`."""

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from autorollback import config as annotations, decision, kube, ledger, state, workloads
from autorollback.context import Context
from autorollback.decision import Decision
from autorollback.signals import core as signals
from autorollback.signals.base import Facts, Judged
from autorollback.signals.deadline import MeasuredDeadline
from autorollback.vocab import Job, Reason, Result
from autorollback.workloads.base import (
    DEADLINE_EXCEEDED,
    JSON_PATCH,
    STRATEGIC_MERGE_PATCH,
    Failure,
    Undo,
    Workload,
)
from autorollback.workloads.daemonset import DAEMONSETS
from autorollback.workloads.deployment import DEPLOYMENTS
from autorollback.workloads.statefulset import STATEFULSETS

from factories import (
    daemonset,
    deployment,
    ds_hash,
    ds_revision,
    replicaset,
    rs_name,
    statefulset,
    stored_template,
    sts_name,
    sts_revision,
)

NOW = "2026-11-26T10:05:00Z"
ON = annotations.parse({"autorollback.io/enabled": "true"})
DRY = annotations.parse({"autorollback.io/enabled": "true", "autorollback.io/mode": "dry-run"})
CHANGE_CAUSE = "kubernetes.io/change-cause"


@dataclass(frozen=True)
class Kind:
    """A kind's adapter, a failing rollout of app:2.0.0 over a healthy app:1.0.0, and how to read its undo."""

    adapter: Workload
    content_type: str
    workload: dict[str, Any]
    history: list[dict[str, Any]]
    failing: str  # the name of the failing revision's history object
    restored: str
    good: str = "app:1.0.0"  # the images of the healthy and the failing template
    bad: str = "app:2.0.0"
    app: str = "web"
    # what `completed` names once the failing revision's rollout completes: its history object, except
    # a DaemonSet's (its revision's name cannot be known from the DaemonSet: daemonset.rollout)
    completed_as: str = ""

    @property
    def completed_name(self) -> str:
        return self.completed_as or self.failing

    def read_undo(self, undo: Undo) -> tuple[str, dict[str, Any], dict[str, str]]:
        """(resourceVersion precondition, template, annotations written), whatever the patch type."""
        if undo.content_type == JSON_PATCH:
            ops = {op["path"]: op for op in undo.body}
            assert all(op["op"] == "replace" for op in undo.body)
            return (
                ops["/metadata/resourceVersion"]["value"],
                ops["/spec/template"]["value"],
                ops["/metadata/annotations"]["value"],
            )
        assert undo.content_type == STRATEGIC_MERGE_PATCH
        meta, spec = undo.body["metadata"], undo.body["spec"]
        assert set(undo.body) == {"metadata", "spec"} and set(spec) == {"template"}  # only the template is replaced
        assert spec["template"]["$patch"] == "replace"
        return (
            meta["resourceVersion"],
            {k: v for k, v in spec["template"].items() if k != "$patch"},
            meta["annotations"],
        )


def deployments_kind() -> Kind:
    return Kind(
        DEPLOYMENTS,
        JSON_PATCH,
        deployment("app:2.0.0", revision=2),
        [replicaset(1, "app:1.0.0", available=3), replicaset(2, "app:2.0.0")],
        rs_name("app:2.0.0"),
        rs_name("app:1.0.0"),
    )


def statefulsets_kind() -> Kind:
    """web-<hash of 2.0.0> rolling out over web-<hash of 1.0.0>, stuck at its first pod (ordinal 2)."""
    return Kind(
        STATEFULSETS,
        STRATEGIC_MERGE_PATCH,
        statefulset("app:2.0.0"),
        [sts_revision(1, "app:1.0.0"), sts_revision(2, "app:2.0.0")],
        sts_name("app:2.0.0"),
        sts_name("app:1.0.0"),
    )


def daemonsets_kind() -> Kind:
    """agent:2.0.0 rolling out on two nodes over agent:1.0.0, stuck at its first node."""
    return Kind(
        DAEMONSETS,
        STRATEGIC_MERGE_PATCH,
        daemonset("agent:2.0.0"),
        [ds_revision(1, "agent:1.0.0"), ds_revision(2, "agent:2.0.0")],
        f"agent-{ds_hash('agent:2.0.0')}",
        f"agent-{ds_hash('agent:1.0.0')}",
        good="agent:1.0.0",
        bad="agent:2.0.0",
        app="agent",
        completed_as="agent-template-generation-2",
    )


KINDS = [
    pytest.param(deployments_kind, id="Deployment"),
    pytest.param(statefulsets_kind, id="StatefulSet"),
    pytest.param(daemonsets_kind, id="DaemonSet"),
]
# the kinds whose controller never reports a failed rollout: autorollback measures the deadline
MEASURED = [pytest.param(statefulsets_kind, id="StatefulSet"), pytest.param(daemonsets_kind, id="DaemonSet")]


def test_every_registered_adapter_keeps_the_contract_here() -> None:
    assert {make.values[0]().adapter.kind for make in KINDS} == set(workloads.KINDS)


def crash(kind: Kind) -> Failure:
    """A fast signal of the failing revision's pods (the failure every kind can have)."""
    return Failure(kind.failing, "CrashLoopBackOff", "container app restarted 3 times", "2026-11-26T10:00:00Z", 2)


def decide(kind: Kind, config: annotations.Config = ON, workload: dict[str, Any] | None = None) -> Decision:
    return decision.decide(
        workload or kind.workload, kind.history, config, NOW, sources=[Judged(crash(kind))], workload=kind.adapter
    )


def image(t: dict[str, Any]) -> str:
    return str(t["spec"]["containers"][0]["image"])


# --- the contract


@pytest.mark.parametrize("make", KINDS)
def test_a_failure_is_rolled_back_by_the_kinds_undo_in_one_conditional_write(make) -> None:
    kind = make()
    d = decide(kind)
    assert (d.result, d.reason) == (Result.SUCCESS, "CrashLoopBackOff")
    assert (d.failing.name, d.target.name, d.target.number) == (kind.failing, kind.restored, 1)
    assert d.undo is not None and d.undo.content_type == kind.content_type
    version, restored, written = kind.read_undo(d.undo)
    assert version == kind.workload["metadata"]["resourceVersion"]  # the precondition
    assert image(restored) == kind.good
    assert "pod-template-hash" not in restored["metadata"]["labels"]
    entries = ledger.parse(written[ledger.KEY])  # the ledger entry, in the same write
    assert [(e.failed, e.restored, e.reason, e.revision) for e in entries] == [
        (kind.failing, kind.restored, "CrashLoopBackOff", 2)
    ]
    assert ledger.find(entries, d.failure.id) is not None
    assert written[CHANGE_CAUSE].startswith(f"autorollback: rolled back from revision 2 ({kind.bad}) to revision 1")


@pytest.mark.parametrize("make", KINDS)
def test_dry_run_plans_the_same_undo(make) -> None:
    kind = make()
    planned, real = decide(kind, DRY), decide(kind)
    assert planned.result == Result.DRY_RUN and real.undo is not None and planned.undo == real.undo


@pytest.mark.parametrize("make", KINDS)
def test_a_failure_in_the_ledger_the_undo_wrote_is_never_undone_again(make) -> None:
    kind = make()
    _, _, written = kind.read_undo(decide(kind).undo)
    again = copy.deepcopy(kind.workload)  # the same template seen again, with the ledger the undo wrote
    again["metadata"]["annotations"][ledger.KEY] = written[ledger.KEY]
    d = decide(kind, workload=again)
    assert d.undo is None  # reported late at most (its report was never made), never written twice
    assert d.result == Result.NOTHING or (d.result, d.first_report) == (Result.SUCCESS, True)


@pytest.mark.parametrize("make", KINDS)
def test_nothing_older_is_impossible_and_writes_nothing(make) -> None:
    kind = make()
    only = [h for h in kind.history if h["metadata"]["name"] == kind.failing]
    d = decision.decide(kind.workload, only, ON, NOW, sources=[Judged(crash(kind))], workload=kind.adapter)
    assert (d.result, d.reason, d.undo) == (Result.IMPOSSIBLE, Reason.NO_TARGET, None)


@pytest.mark.parametrize("make", KINDS)
def test_the_measured_deadline_source_names_the_kinds_current_revision(make) -> None:
    kind = make()
    source = MeasuredDeadline(600, "2026-11-26T10:00:00Z", "another revision")
    verdict = source.verdict(Facts(kind.workload, kind.history, adapter=kind.adapter))
    assert verdict is not None and verdict.failure is not None
    assert (verdict.failure.revision_name, verdict.failure.reason, verdict.failure.measured) == (
        kind.failing,
        DEADLINE_EXCEEDED,
        True,
    )
    assert MeasuredDeadline(599, "x", "y").verdict(Facts(kind.workload, kind.history, adapter=kind.adapter)) is None


@dataclass
class Recorder:
    """The API client as each kind's I/O calls it for the rollback write: what is sent, as sent."""

    sent: list[tuple[str, str, Any, str]] = field(default_factory=list)

    def request(self, method: str, path: str, body: Any = None, content_type: str = "", **_: Any) -> dict[str, Any]:
        self.sent.append((method, path, body, content_type))
        return {}

    def patch_deployment(self, namespace: str, name: str, body: Any, content_type: str = JSON_PATCH) -> dict[str, Any]:
        return self.request("PATCH", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", body, content_type)


@pytest.mark.parametrize("make", KINDS)
def test_the_kinds_io_sends_the_undo_with_its_content_type(make) -> None:
    kind = make()
    client = Recorder()
    undo = decide(kind).undo
    assert undo is not None
    meta = kind.workload["metadata"]
    kube.api_for(client, kind.adapter.kind).undo(meta["namespace"], meta["name"], undo)  # type: ignore[arg-type]
    plural = kind.adapter.kind.lower() + "s"
    assert client.sent == [
        ("PATCH", f"/apis/apps/v1/namespaces/ns/{plural}/{meta['name']}", undo.body, kind.content_type)
    ]


def test_every_registered_kind_has_its_io() -> None:
    ctx = Context(None, None, b"")  # type: ignore[arg-type]  # no call is made
    for kind, adapter in workloads.KINDS.items():
        assert adapter.kind == kind
        assert ctx.api_for(kind) is not None


# --- the measured deadline of a kind whose controller never reports a failed rollout

SINCE = "2026-11-26T09:55:00Z"


def measured_decide(
    workload: dict[str, Any], seconds: float | None, kind: Kind, config: annotations.Config = ON
) -> Decision:
    measured = None if seconds is None else decision.Measured(seconds, SINCE)
    return decision.decide(workload, kind.history, config, NOW, measured, workload=kind.adapter)


def progressed(kind: Kind, workload: dict[str, Any]) -> dict[str, Any]:
    """The same rollout, one more pod Ready: progress, and still under way."""
    moved = copy.deepcopy(workload)
    moved["status"]["numberReady" if kind.adapter is DAEMONSETS else "readyReplicas"] += 1
    return moved


def completed_kind(kind: Kind) -> dict[str, Any]:
    """The kind's workload with its failing revision's rollout complete."""
    if kind.adapter is DEPLOYMENTS:
        return deployment("app:2.0.0", revision=2, complete=True)
    if kind.adapter is DAEMONSETS:
        return daemonset("agent:2.0.0", desired=2, updated=2, available=2)
    return statefulset("app:2.0.0", current="app:2.0.0", updated=3, ready=3)


def not_under_way(kind: Kind) -> list[dict[str, Any]]:
    """States of the kind in which no rollout is under way: never timed, whatever was measured."""
    unobserved = copy.deepcopy(kind.workload)
    unobserved["metadata"]["generation"] += 1
    if kind.adapter is DAEMONSETS:
        return [
            completed_kind(kind),
            daemonset("agent:2.0.0", strategy="OnDelete", updated=0, available=2),
            daemonset("agent:2.0.0", desired=0, updated=0, available=0),
            unobserved,
        ]
    return [
        completed_kind(kind),
        statefulset("app:2.0.0", current="app:2.0.0", updated=3, ready=2),  # lost a pod after it completed
        statefulset("app:2.0.0", partition=2, updated=1, ready=3),  # stopped at its partition on purpose
        statefulset("app:2.0.0", strategy="OnDelete", updated=0, ready=3),
        unobserved,
    ]


@pytest.mark.parametrize("make", MEASURED)
def test_a_rollout_stuck_past_its_deadline_is_rolled_back_by_the_kinds_undo(make) -> None:
    kind = make()
    d = measured_decide(kind.workload, 600, kind)
    assert (d.result, d.reason) == (Result.SUCCESS, DEADLINE_EXCEEDED)
    assert d.failure is not None and d.failure.measured and d.failure.id == f"{kind.failing} {SINCE}"
    assert d.failure.message.startswith(
        f"{kind.adapter.kind} revision {kind.failing} made no progress for 600s (measured by autorollback"
    )
    assert (d.failing.name, d.target.name) == (kind.failing, kind.restored)
    assert d.undo is not None and d.undo.content_type == STRATEGIC_MERGE_PATCH
    version, restored, written = kind.read_undo(d.undo)
    assert version == kind.workload["metadata"]["resourceVersion"] and image(restored) == kind.good
    assert d.undo.body["spec"] == kind.history[0]["data"]["spec"]  # kubectl's patch: the revision's data as stored
    entries = ledger.parse(written[ledger.KEY])
    assert [(e.failed, e.restored, e.reason) for e in entries] == [(kind.failing, kind.restored, DEADLINE_EXCEEDED)]
    # the same measurement seen again with the ledger the undo wrote: never undone twice
    again = copy.deepcopy(kind.workload)
    again["metadata"]["annotations"][ledger.KEY] = written[ledger.KEY]
    twice = measured_decide(again, 900, kind)
    assert (twice.result, twice.reason, twice.undo) == (Result.NOTHING, Reason.ROLLED_BACK, None)
    planned = measured_decide(kind.workload, 600, kind, config=DRY)
    assert planned.result == Result.DRY_RUN and planned.undo == d.undo


@pytest.mark.parametrize("make", MEASURED)
def test_a_rollout_within_its_deadline_is_measured_not_rolled_back(make) -> None:
    kind = make()
    slow = copy.deepcopy(kind.workload)
    slow["metadata"]["annotations"][annotations.PROGRESS_DEADLINE] = "1200"
    for workload, measured, deadline in ((kind.workload, None, 600), (kind.workload, 599.0, 600), (slow, 900, 1200)):
        # not timed yet (the shell starts timing on STALE), or not long enough
        d = measured_decide(workload, measured, kind)
        assert (d.result, d.reason, d.undo, d.failure) == (Result.NOTHING, Reason.STALE, None, None)
        assert kind.failing in d.message and f"{deadline}s" in d.message


@pytest.mark.parametrize("make", MEASURED)
def test_a_rollout_that_is_not_under_way_is_never_timed(make) -> None:
    kind = make()
    for workload in not_under_way(kind):
        assert kind.adapter.unfinished(workload) == ""
        d = measured_decide(workload, 100_000, kind)
        assert d.result == Result.NOTHING and d.undo is None
        assert d.reason == (Reason.UNSUPPORTED if kind.adapter.on_delete(workload) else Reason.NO_FAILURE)


def test_a_deployment_under_way_is_left_to_its_controllers_deadline() -> None:
    """Unchanged for Deployments: without a leftover condition, the controller times the rollout out
    (ProgressDeadlineExceeded); a measurement handed in changes nothing."""
    kind = deployments_kind()
    assert DEPLOYMENTS.unfinished(kind.workload) == ""
    d = measured_decide(kind.workload, 100_000, kind)
    assert (d.result, d.reason, d.undo) == (Result.NOTHING, Reason.NO_FAILURE, None)


@pytest.mark.parametrize("make", MEASURED)
def test_the_measured_deadlines_keys_follow_the_kinds_rollout(make) -> None:
    kind = make()
    adapter, stuck = kind.adapter, kind.workload
    moved = progressed(kind, stuck)
    assert state.failure_key(stuck, ON, adapter).startswith(f"{adapter.unfinished(stuck)}|template=")
    assert state.failure_key(moved, ON, adapter) == state.failure_key(stuck, ON, adapter)  # decided once
    assert state.stale_key(moved, adapter) != state.stale_key(stuck, adapter)  # progress restarts the clock
    assert state.failure_key(completed_kind(kind), ON, adapter) == ""
    memo = state.Remembered("ns", "web", adapter=adapter)
    assert Job.FAILURE in memo.observe(stuck, ON)
    memo.failure_done = state.failure_key(stuck, ON, adapter)
    assert Job.FAILURE not in memo.observe(moved, ON)


# --- the keys the memory compares: what tells one rollout, and one completion, from the next


@pytest.mark.parametrize("make", KINDS)
def test_the_rollout_and_completion_keys_follow_the_kinds_rollout(make) -> None:
    kind = make()
    adapter, done = kind.adapter, completed_kind(kind)
    assert adapter.completed(done) == kind.completed_name
    assert state.completion_key(done, adapter).startswith(f"{kind.completed_name} ")
    assert state.rollout_key(done, adapter) == state.rollout_key(kind.workload, adapter)  # the same rollout, finished
    assert adapter.rollout_revision(done) != ""
    later = copy.deepcopy(done)  # completes again later (a leftover condition, or the same template restored)
    later["status"]["observedGeneration"] = later["metadata"]["generation"] = 3
    for c in later["status"].get("conditions") or []:
        c["lastUpdateTime"] = "2026-11-26T11:00:00Z"
    assert adapter.completion_token(later) != adapter.completion_token(done)
    assert state.completion_key(later, adapter) != state.completion_key(done, adapter)
    other = copy.deepcopy(done)  # a rollout onto another template
    other["spec"]["template"] = stored_template(kind.good.replace("1.0.0", "3.0.0"), app=kind.app)
    assert state.rollout_key(other, adapter) != state.rollout_key(done, adapter)
    paused = copy.deepcopy(kind.workload)
    paused["spec"]["paused"] = True
    assert (state.fast_key(paused, ON, adapter) != state.fast_key(kind.workload, ON, adapter)) is adapter.paused(paused)


def test_the_deployment_keys_read_the_revision_annotation_and_the_conditions_update() -> None:
    done = deployment("app:2.0.0", revision=7, complete=True, updated="2026-11-26T10:03:00Z")
    assert DEPLOYMENTS.rollout_revision(done) == "7"
    assert DEPLOYMENTS.completion_token(done) == "2026-11-26T10:03:00Z"
    bare = deployment("app:2.0.0")
    del bare["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    assert (DEPLOYMENTS.rollout_revision(bare), DEPLOYMENTS.completion_token(bare)) == ("", "None")


@pytest.mark.parametrize("make", KINDS)
def test_the_pods_are_watched_while_the_kinds_rollout_is_under_way(make) -> None:
    kind = make()
    fail_on = annotations.parse({"autorollback.io/fail-on": "CrashLoopBackOff"}).fail_fast
    unobserved = copy.deepcopy(kind.workload)
    unobserved["metadata"]["generation"] += 1
    assert signals.watched(kind.workload, fail_on, kind.adapter) is True
    assert signals.watched(completed_kind(kind), fail_on, kind.adapter) is False
    assert signals.watched(unobserved, fail_on, kind.adapter) is None  # keep what was decided before
    assert signals.watched(kind.workload, annotations.FailFast(), kind.adapter) is False  # no fail-on


def test_the_opted_in_workloads_are_counted_per_kind_and_namespace() -> None:
    mem = state.Memory()
    mem.get("d", "ns", "web", DEPLOYMENTS).enabled = True
    mem.get("s", "ns", "web", STATEFULSETS).enabled = True
    mem.get("s2", "ns", "db", STATEFULSETS).enabled = True
    mem.get("s3", "other", "db", STATEFULSETS).enabled = True
    mem.get("a", "ns", "agent", DAEMONSETS).enabled = True
    assert (mem.opted_in("Deployment", "ns"), mem.opted_in("StatefulSet", "ns"), mem.opted_in("DaemonSet", "ns")) == (
        1,
        2,
        1,
    )
    assert (mem.opted_in("Deployment", "other"), mem.opted_in("StatefulSet", "other")) == (0, 1)


@pytest.mark.parametrize("make", KINDS)
def test_a_revert_takes_its_source_only_from_what_lists_the_kinds_workload(make) -> None:
    from autorollback.gitrevert import core as gitcore

    kind = make()
    name = kind.workload["metadata"]["name"]
    workload = {**kind.workload, "apiVersion": "apps/v1", "kind": kind.adapter.kind}
    mine = {"group": "apps", "name": name, "namespace": "ns"}
    other = next(k for k in workloads.KINDS if k != kind.adapter.kind)
    app = {
        "metadata": {"name": "shop", "namespace": "argocd"},
        "spec": {"source": {"repoURL": "https://github.com/a/b.git", "path": "deploy"}},
        "status": {"resources": [{**mine, "kind": kind.adapter.kind}]},
    }
    assert isinstance(gitcore.from_argo(app, workload), gitcore.Source)
    app["status"]["resources"] = [{**mine, "kind": other}]
    assert gitcore.from_argo(app, workload) == (
        f"Argo CD Application argocd/shop does not list this {kind.adapter.kind} among its resources: not using it"
    )
    repository = {"spec": {"url": "https://github.com/a/b.git", "ref": {"branch": "main"}}}
    ks = {"metadata": {"name": "shop", "namespace": "ns"}, "spec": {"path": "deploy"}}
    ks["status"] = {"inventory": {"entries": [{"id": f"ns_{name}_apps_{kind.adapter.kind}"}]}}
    assert isinstance(gitcore.from_flux(ks, repository, workload), gitcore.Source)
    ks["status"] = {"inventory": {"entries": [{"id": f"ns_{name}_apps_{other}"}]}}
    assert isinstance(gitcore.from_flux(ks, repository, workload), str)
