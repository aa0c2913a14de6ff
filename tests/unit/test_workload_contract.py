"""The workload seam's contract, kept by every adapter: the same decision, written once against
`Workload`, plans a rollback of any kind as that kind's undo (a JSON patch for Deployments, a
strategic merge patch of a ControllerRevision's data for StatefulSets), and that undo always
carries the resourceVersion precondition and the ledger entry in the same write.

The StatefulSet adapter here is a fake (the operator watches Deployments only): ControllerRevisions
as history, kubectl's undo of them. It is checked against the protocols structurally below."""

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from autorollback import config as annotations, decision, kube, ledger, state, workloads
from autorollback.context import Context
from autorollback.decision import Decision
from autorollback.history import Revision
from autorollback.signals import core as signals
from autorollback.signals.base import Facts, Judged
from autorollback.signals.deadline import MeasuredDeadline
from autorollback.vocab import Job, Reason, Result
from autorollback.workloads.base import (
    DEADLINE_EXCEEDED,
    JSON_PATCH,
    STRATEGIC_MERGE_PATCH,
    Api,
    Failure,
    Undo,
    Workload,
)
from autorollback.workloads.deployment import DEPLOYMENTS

from factories import deployment, replicaset, rs_name, template

NOW = "2026-11-26T10:05:00Z"
ON = annotations.parse({"autorollback.io/enabled": "true"})
DRY = annotations.parse({"autorollback.io/enabled": "true", "autorollback.io/mode": "dry-run"})
REVISION_HASH = "controller-revision-hash"
CHANGE_CAUSE = "kubernetes.io/change-cause"


# --- a StatefulSet-like adapter (kubectl's rules: rollback.go, history.go; the controller's getPatch)


def _template_of(cr: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = copy.deepcopy(((cr.get("data") or {}).get("spec") or {}).get("template") or {})
    t.pop("$patch", None)
    return t


class FakeStatefulSets:
    """ControllerRevisions as history; the undo is the revision's `data` as a strategic merge patch,
    with metadata.resourceVersion (the precondition) and the ledger annotation in the same body."""

    kind = "StatefulSet"
    pod_label = REVISION_HASH

    def template(self, workload: dict[str, Any]) -> dict[str, Any]:
        t: dict[str, Any] = workload["spec"]["template"]
        return t

    def revisions(self, history: list[dict[str, Any]], entries: tuple[ledger.Entry, ...] = ()) -> list[Revision]:
        out = [
            Revision(
                int(cr.get("revision") or 0),
                cr["metadata"]["name"],
                _template_of(cr),
                dict(cr["metadata"].get("annotations") or {}),
                created=cr["metadata"].get("creationTimestamp") or "",
                ledger=entries,
            )
            for cr in history
        ]
        return sorted(out, key=lambda r: r.number, reverse=True)

    def current(self, revisions: list[Revision], template: dict[str, Any]) -> Revision | None:
        return next((r for r in revisions if self.same_template(r.template, template)), None)

    def same_template(self, a: dict[str, Any], b: dict[str, Any]) -> bool:
        return a == b

    def revision_of(self, obj: dict[str, Any]) -> int | None:
        return int(obj.get("revision") or 0)  # a StatefulSet carries none (status.updateRevision is a name)

    def failure(self, workload: dict[str, Any]) -> Failure | None:
        return None  # the StatefulSet controller reports no failed rollout

    def completed(self, workload: dict[str, Any]) -> str:
        s = workload.get("status") or {}
        done = s.get("updateRevision") == s.get("currentRevision") and s.get("readyReplicas", 0) >= workload[
            "spec"
        ].get("replicas", 1)
        return str(s.get("updateRevision") or "") if self.observed(workload) and done else ""

    def completion_token(self, workload: dict[str, Any]) -> str:
        return str((workload.get("status") or {}).get("observedGeneration") or "")

    def rollout_revision(self, workload: dict[str, Any]) -> str:
        return str((workload.get("status") or {}).get("updateRevision") or "")

    def left_over(self, workload: dict[str, Any]) -> str:
        return ""

    def unfinished(self, workload: dict[str, Any]) -> str:
        """A rolling update under way (kubectl's rollout status, workload-kinds.md §3.3 and §6 A): the
        controller never says it failed, so autorollback measures its deadline. Named by its revision."""
        s, spec = workload.get("status") or {}, workload["spec"]
        want = spec.get("replicas", 1)
        partition = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0
        under_way = s.get("updateRevision") != s.get("currentRevision") and (
            s.get("updatedReplicas", 0) < want - partition or s.get("readyReplicas", 0) < want
        )
        return f"{s.get('updateRevision')} unfinished" if self.observed(workload) and want > 0 and under_way else ""

    def deadline_seconds(self, workload: dict[str, Any]) -> int:
        return 600  # no spec.progressDeadlineSeconds: the operator's own default

    def progress(self, workload: dict[str, Any]) -> tuple[int, ...]:
        s = workload.get("status") or {}
        return tuple(int(s.get(k) or 0) for k in ("updatedReplicas", "readyReplicas", "availableReplicas"))

    def paused(self, workload: dict[str, Any]) -> bool:
        return False  # no spec.paused

    def observed(self, workload: dict[str, Any]) -> bool:
        s = workload.get("status") or {}
        return bool(s.get("observedGeneration", 0) >= workload["metadata"].get("generation", 0))

    def rollout_in_progress(self, workload: dict[str, Any]) -> bool | None:
        s = workload.get("status") or {}
        return s.get("updateRevision") != s.get("currentRevision") if self.observed(workload) else None

    def undo_patch(
        self,
        workload: dict[str, Any],
        target: Revision,
        change_cause: str,
        entries: tuple[ledger.Entry, ...],
    ) -> Undo:
        return Undo(
            STRATEGIC_MERGE_PATCH,
            {
                "metadata": {
                    "resourceVersion": workload["metadata"]["resourceVersion"],
                    "annotations": {ledger.KEY: ledger.dump(entries), CHANGE_CAUSE: change_cause},
                },
                "spec": {"template": {**target.template, "$patch": "replace"}},
            },
        )

    def pods_of(self, revision: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
        name = revision["metadata"]["name"]
        return [p for p in pods if (p["metadata"].get("labels") or {}).get(REVISION_HASH) == name]


@dataclass
class FakeStatefulSetApi:
    """Its I/O, in memory: the writes are recorded as sent."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    revisions: list[dict[str, Any]] = field(default_factory=list)
    sent: list[tuple[str, Any]] = field(default_factory=list)

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return self.objects[name]

    def history(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        return self.revisions

    def get_revision(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next((r for r in self.revisions if r["metadata"]["name"] == name), None)

    def pods(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        return []

    def mark_revision(
        self, namespace: str, name: str, annotations: dict[str, str | None], resource_version: str = ""
    ) -> None:
        precondition = {"resourceVersion": resource_version} if resource_version else {}
        self.sent.append(("application/merge-patch+json", {"metadata": {**precondition, "annotations": annotations}}))

    def patch(self, namespace: str, name: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        self.sent.append((JSON_PATCH, ops))
        return self.objects[name]

    def undo(self, namespace: str, name: str, undo: Undo) -> dict[str, Any]:
        self.sent.append((undo.content_type, undo.body))
        return self.objects[name]


STATEFULSETS = FakeStatefulSets()

# structurally what the seam asks for (checked by mypy when it is run on this file)
_sts: Workload = STATEFULSETS
_sts_api: Api = FakeStatefulSetApi()
_deployments: Workload = DEPLOYMENTS


def _deployment_api(client: kube.Client) -> Api:
    return kube.DeploymentApi(client)


# --- each kind as the contract tests see it


def sts_template(image: str) -> dict[str, Any]:
    return template(image)


def controller_revision(number: int, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": f"web-{number}",
            "annotations": {},
            "creationTimestamp": "2026-11-26T08:00:00Z",
            "ownerReferences": [{"uid": "s-uid", "controller": True}],
        },
        "revision": number,
        "data": {"spec": {"template": {**sts_template(image), "$patch": "replace"}}},
    }


def statefulset(image: str, current: str, update: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": "s-uid",
            "generation": 2,
            "resourceVersion": "42",
            "annotations": {"autorollback.io/enabled": "true"},
        },
        "spec": {"replicas": 3, "template": sts_template(image)},
        "status": {"observedGeneration": 2, "currentRevision": current, "updateRevision": update, "readyReplicas": 2},
    }


@dataclass(frozen=True)
class Kind:
    """A kind's adapter, a failing rollout of app:2.0.0 over a healthy app:1.0.0, and how to read its undo."""

    adapter: Workload
    content_type: str
    workload: dict[str, Any]
    history: list[dict[str, Any]]
    failing: str  # the name of the failing revision's history object
    restored: str

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
    return Kind(
        STATEFULSETS,
        STRATEGIC_MERGE_PATCH,
        statefulset("app:2.0.0", current="web-1", update="web-2"),
        [controller_revision(1, "app:1.0.0"), controller_revision(2, "app:2.0.0")],
        "web-2",
        "web-1",
    )


KINDS = [pytest.param(deployments_kind, id="Deployment"), pytest.param(statefulsets_kind, id="StatefulSet")]


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
    assert image(restored) == "app:1.0.0"
    assert "pod-template-hash" not in restored["metadata"]["labels"]
    entries = ledger.parse(written[ledger.KEY])  # the ledger entry, in the same write
    assert [(e.failed, e.restored, e.reason, e.revision) for e in entries] == [
        (kind.failing, kind.restored, "CrashLoopBackOff", 2)
    ]
    assert ledger.find(entries, d.failure.id) is not None
    assert written[CHANGE_CAUSE].startswith("autorollback: rolled back from revision 2 (app:2.0.0) to revision 1")


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


def test_the_fake_api_sends_the_undo_with_its_content_type() -> None:
    kind = statefulsets_kind()
    api = FakeStatefulSetApi({"web": kind.workload}, kind.history)
    undo = decide(kind).undo
    assert undo is not None
    api.undo("ns", "web", undo)
    assert api.sent == [(STRATEGIC_MERGE_PATCH, undo.body)]


def test_every_registered_kind_has_its_io() -> None:
    ctx = Context(None, None, b"")  # type: ignore[arg-type]  # no call is made
    for kind, adapter in workloads.KINDS.items():
        assert adapter.kind == kind
        assert ctx.api_for(kind) is not None


# --- the measured deadline of a kind whose controller never reports a failed rollout

SINCE = "2026-11-26T09:55:00Z"


def stuck_statefulset() -> dict[str, Any]:
    """web-2 rolling out and stuck: its first pod (the highest ordinal) never gets ready."""
    sts = statefulset("app:2.0.0", current="web-1", update="web-2")
    sts["status"].update(replicas=3, updatedReplicas=1, currentReplicas=2, availableReplicas=2)
    return sts


def measured_decide(
    workload: dict[str, Any], seconds: float, kind: Kind | None = None, config: annotations.Config = ON
) -> Decision:
    kind = kind or statefulsets_kind()
    return decision.decide(
        workload, kind.history, config, NOW, decision.Measured(seconds, SINCE), workload=kind.adapter
    )


def test_a_statefulset_stuck_past_its_deadline_is_rolled_back_by_its_undo() -> None:
    kind = statefulsets_kind()
    sts = stuck_statefulset()
    d = measured_decide(sts, 600)
    assert (d.result, d.reason) == (Result.SUCCESS, DEADLINE_EXCEEDED)
    assert d.failure is not None and d.failure.measured and d.failure.id == f"web-2 {SINCE}"
    assert d.failure.message.startswith(
        "StatefulSet revision web-2 made no progress for 600s (measured by autorollback"
    )
    assert (d.failing.name, d.target.name) == ("web-2", "web-1")
    assert d.undo is not None and d.undo.content_type == STRATEGIC_MERGE_PATCH
    version, restored, written = kind.read_undo(d.undo)
    assert version == "42" and image(restored) == "app:1.0.0"
    entries = ledger.parse(written[ledger.KEY])
    assert [(e.failed, e.restored, e.reason) for e in entries] == [("web-2", "web-1", DEADLINE_EXCEEDED)]
    # the same measurement seen again with the ledger the undo wrote: never undone twice
    again = copy.deepcopy(sts)
    again["metadata"]["annotations"][ledger.KEY] = written[ledger.KEY]
    twice = measured_decide(again, 900)
    assert (twice.result, twice.reason, twice.undo) == (Result.NOTHING, Reason.ROLLED_BACK, None)
    planned = measured_decide(sts, 600, config=DRY)
    assert planned.result == Result.DRY_RUN and planned.undo == d.undo


def test_a_statefulset_within_its_deadline_is_measured_not_rolled_back() -> None:
    for measured in (None, 599.0):  # not timed yet (the shell starts timing on STALE), or not long enough
        d = decision.decide(
            stuck_statefulset(),
            statefulsets_kind().history,
            ON,
            NOW,
            None if measured is None else decision.Measured(measured, SINCE),
            workload=STATEFULSETS,
        )
        assert (d.result, d.reason, d.undo, d.failure) == (Result.NOTHING, Reason.STALE, None, None)
        assert "web-2" in d.message and "600s" in d.message


def test_a_statefulset_rollout_that_is_not_under_way_is_never_timed() -> None:
    done = statefulset("app:2.0.0", current="web-2", update="web-2")
    done["status"].update(updatedReplicas=3, readyReplicas=3)
    lost_a_pod = copy.deepcopy(done)
    lost_a_pod["status"].update(readyReplicas=2)  # after its rollout completed: no rollout failing
    unobserved = stuck_statefulset()
    unobserved["metadata"]["generation"] = 3
    for sts in (done, lost_a_pod, unobserved):
        assert STATEFULSETS.unfinished(sts) == ""
        d = measured_decide(sts, 100_000)
        assert (d.result, d.reason, d.undo) == (Result.NOTHING, Reason.NO_FAILURE, None)


def test_a_deployment_under_way_is_left_to_its_controllers_deadline() -> None:
    """Unchanged for Deployments: without a leftover condition, the controller times the rollout out
    (ProgressDeadlineExceeded); a measurement handed in changes nothing."""
    kind = deployments_kind()
    assert DEPLOYMENTS.unfinished(kind.workload) == ""
    d = measured_decide(kind.workload, 100_000, kind)
    assert (d.result, d.reason, d.undo) == (Result.NOTHING, Reason.NO_FAILURE, None)


def test_the_measured_deadlines_keys_follow_the_kinds_rollout() -> None:
    sts = stuck_statefulset()
    moved = copy.deepcopy(sts)
    moved["status"]["readyReplicas"] = 3
    assert state.failure_key(sts, ON, STATEFULSETS).startswith("web-2 unfinished|template=")
    assert state.failure_key(moved, ON, STATEFULSETS) == state.failure_key(sts, ON, STATEFULSETS)  # decided once
    assert state.stale_key(moved, STATEFULSETS) != state.stale_key(sts, STATEFULSETS)  # progress restarts the clock
    done = statefulset("app:2.0.0", current="web-2", update="web-2")
    assert state.failure_key(done, ON, STATEFULSETS) == ""
    memo = state.Remembered("ns", "web", adapter=STATEFULSETS)
    assert Job.FAILURE in memo.observe(sts, ON)
    memo.failure_done = state.failure_key(sts, ON, STATEFULSETS)
    assert Job.FAILURE not in memo.observe(moved, ON)


# --- the keys the memory compares: what tells one rollout, and one completion, from the next


def completed_kind(kind: Kind) -> dict[str, Any]:
    """The kind's workload with its failing revision's rollout complete."""
    if kind.adapter is DEPLOYMENTS:
        return deployment("app:2.0.0", revision=2, complete=True)
    done = statefulset("app:2.0.0", current="web-2", update="web-2")
    done["status"].update(updatedReplicas=3, readyReplicas=3)
    return done


@pytest.mark.parametrize("make", KINDS)
def test_the_rollout_and_completion_keys_follow_the_kinds_rollout(make) -> None:
    kind = make()
    adapter, done = kind.adapter, completed_kind(kind)
    assert adapter.completed(done) == kind.failing
    assert state.completion_key(done, adapter).startswith(f"{kind.failing} ")
    assert state.rollout_key(done, adapter) == state.rollout_key(kind.workload, adapter)  # the same rollout, finished
    assert adapter.rollout_revision(done) != ""
    later = copy.deepcopy(done)  # completes again later (a leftover condition, or the same template restored)
    later["status"]["observedGeneration"] = later["metadata"]["generation"] = 3
    for c in later["status"].get("conditions") or []:
        c["lastUpdateTime"] = "2026-11-26T11:00:00Z"
    assert adapter.completion_token(later) != adapter.completion_token(done)
    assert state.completion_key(later, adapter) != state.completion_key(done, adapter)
    other = copy.deepcopy(done)  # a rollout onto another template
    other["spec"]["template"] = sts_template("app:3.0.0")
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
    unobserved["metadata"]["generation"] = 3
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
    assert (mem.opted_in("Deployment", "ns"), mem.opted_in("StatefulSet", "ns")) == (1, 2)
    assert (mem.opted_in("Deployment", "other"), mem.opted_in("StatefulSet", "other")) == (0, 1)


@pytest.mark.parametrize("make", KINDS)
def test_a_revert_takes_its_source_only_from_what_lists_the_kinds_workload(make) -> None:
    from autorollback.gitrevert import core as gitcore

    kind = make()
    workload = {**kind.workload, "apiVersion": "apps/v1", "kind": kind.adapter.kind}
    mine = {"group": "apps", "name": "web", "namespace": "ns"}
    other = "DaemonSet"
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
    ks["status"] = {"inventory": {"entries": [{"id": f"ns_web_apps_{kind.adapter.kind}"}]}}
    assert isinstance(gitcore.from_flux(ks, repository, workload), gitcore.Source)
    ks["status"] = {"inventory": {"entries": [{"id": f"ns_web_apps_{other}"}]}}
    assert isinstance(gitcore.from_flux(ks, repository, workload), str)
