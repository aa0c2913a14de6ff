"""The seam between the kind-neutral core and one kind of workload.

A workload kind (Deployment; StatefulSet and DaemonSet later) is known through an adapter: how it
keeps its history (ReplicaSets, ControllerRevisions), what its controller says about a rollout,
how `kubectl rollout undo` restores a revision, and which pods belong to a revision. The decision,
the loop guards and the ledger are written once against `Workload`; only the adapter knows the
kind. Adapters are pure; the I/O for a kind goes through `kube` (`Api`).
"""

from dataclasses import dataclass
from typing import Any, Protocol

from autorollback import ledger
from autorollback.config import shown
from autorollback.history import Health, Revision

DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"  # also the reason of a deadline autorollback measures
METRIC_CHECK_FAILED = "MetricCheckFailed"  # a bake's failure (checks.bake): found after the rollout completed
ALERT_FIRING = "AlertFiring"  # a bake's failure (checks.alerts): an alert named started firing
BAKE_FAILURES = (METRIC_CHECK_FAILED, ALERT_FIRING)  # found by a bake: never outlived by the completion
SHOWN_IMAGES = 3  # containers named in a message; the rest are counted
SHOWN_IMAGE, SHOWN_MESSAGE = 120, 300  # characters
JSON_PATCH = "application/json-patch+json"  # a Deployment's undo: kubectl's JSON patch
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"  # a ControllerRevision's `data`, as kubectl sends it


@dataclass(frozen=True)
class Failure:
    revision_name: str  # the history object of the revision blamed (a Deployment's ReplicaSet the condition names)
    reason: str
    message: str
    updated: str  # lastUpdateTime: written anew for every timeout, unlike lastTransitionTime
    revision: int
    measured: bool = False  # a deadline autorollback measured itself: its time is not the API's

    @property
    def id(self) -> str:
        """Names this failure and no other: the blamed revision and the time it was blamed."""
        return f"{self.revision_name} {self.updated}"


@dataclass(frozen=True)
class Undo:
    """The rollback write of one kind, as sent: the PATCH body and its content type. Whatever the
    type, the body carries the resourceVersion precondition and the ledger entries (one write)."""

    content_type: str  # JSON_PATCH (a list of operations) or STRATEGIC_MERGE_PATCH (an object)
    body: Any


def images(template: dict[str, Any]) -> str:
    containers = (template.get("spec") or {}).get("containers") or []
    named = [shown(str(c.get("image", "?")), SHOWN_IMAGE) for c in containers[:SHOWN_IMAGES]]
    if len(containers) > SHOWN_IMAGES:
        named.append(f"and {len(containers) - SHOWN_IMAGES} more")
    return ", ".join(named) or "no containers"


def history_object(kind: str) -> str:
    """What a kind keeps its revisions in, as messages name it."""
    return "ReplicaSet" if kind == "Deployment" else "ControllerRevision"


class Workload(Protocol):
    """One kind of workload, as the core needs to know it. Objects are raw JSON."""

    kind: str  # as Kubernetes spells it: the `kind` metric label, Events' involvedObject
    pod_label: str  # the pod label that names a pod's revision (pod-template-hash, controller-revision-hash)
    counts_ready: bool  # its history objects count their ready pods (a ReplicaSet's status); else the pods say

    def template(self, workload: dict[str, Any]) -> dict[str, Any]:
        """The pod template the workload asks for now."""

    def revisions(self, history: list[dict[str, Any]], entries: tuple[ledger.Entry, ...] = ()) -> list[Revision]:
        """Its history objects as revisions, newest first."""

    def current(self, revisions: list[Revision], template: dict[str, Any]) -> Revision | None:
        """The revision the controller treats as the current template's."""

    def same_template(self, a: dict[str, Any], b: dict[str, Any]) -> bool:
        """Equal pod templates, by the controller's rule."""

    def revision_of(self, obj: dict[str, Any]) -> int | None:
        """The revision number an object carries (0: none; None: unreadable)."""

    def failure(self, workload: dict[str, Any]) -> Failure | None:
        """The failure the controller reports for the rollout, if any."""

    def completed(self, workload: dict[str, Any]) -> str:
        """The revision whose rollout is complete now ("" while none)."""

    def completion_token(self, workload: dict[str, Any]) -> str:
        """What tells one completion of a revision from a later one while it stays complete (the
        controller's word on it, kept as long as the rollout stays complete): compared, never parsed."""

    def rollout_revision(self, workload: dict[str, Any]) -> str:
        """The revision the controller gave the rollout the workload asks for now, as the controller
        wrote it ("" while none): compared, never parsed (`revision_of` reads a number)."""

    def left_over(self, workload: dict[str, Any]) -> str:
        """The revision a "complete" verdict left over from an earlier rollout names while another
        is under way, which the controller then never times out ("" otherwise)."""

    def unfinished(self, workload: dict[str, Any]) -> str:
        """A rollout under way that the controller will never time out, so that autorollback measures
        its deadline ("" when none): named by what it must stay the same for (besides `progress`) for
        the measurement to go on. A kind whose controller reports no failed rollout (StatefulSet,
        DaemonSet) answers from its status counts; a Deployment only under a leftover condition."""

    def deadline_seconds(self, workload: dict[str, Any]) -> int:
        """How long a rollout may make no progress before it has failed (the measured deadline's)."""

    def progress(self, workload: dict[str, Any]) -> tuple[int, ...]:
        """The counts whose change the controller calls progress."""

    def paused(self, workload: dict[str, Any]) -> bool:
        """Rollouts are held (nothing to roll back then)."""

    def observed(self, workload: dict[str, Any]) -> bool:
        """The controller has looked at the latest spec: before that, its status says nothing about it."""

    def rollout_in_progress(self, workload: dict[str, Any]) -> bool | None:
        """A rollout is under way and not paused (its pods are worth watching); None while the
        controller has not looked at the latest spec (an HPA scaling, say): nothing is known yet."""

    def undo_patch(
        self, workload: dict[str, Any], target: Revision, change_cause: str, entries: tuple[ledger.Entry, ...]
    ) -> Undo:
        """The rollback to `target` as one write: kubectl's rules, a resourceVersion precondition
        and the ledger `entries` in the same patch, with its content type."""

    def pods_of(self, revision: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The live pods of one history object (by `pod_label`)."""

    def pod_label_value(self, revision: dict[str, Any]) -> str:
        """The value of `pod_label` the pods of one history object carry ("" when it cannot be read):
        a ReplicaSet's pod-template-hash, a StatefulSet revision's full name, a DaemonSet revision's hash."""

    def update_revision(self, workload: dict[str, Any], history: list[Revision]) -> Revision | None:
        """The revision of the rollout the workload asks for now, on its controller's word where it gives
        one (a StatefulSet's status.updateRevision), else the one holding its template (`current`)."""

    def on_delete(self, workload: dict[str, Any]) -> bool:
        """The controller replaces no pod by itself (updateStrategy OnDelete): nothing is rolled out,
        so nothing is rolled back."""

    def partition(self, workload: dict[str, Any]) -> int:
        """Where the rollout stops on purpose: a StatefulSet's `rollingUpdate.partition` (its pods
        below that ordinal keep the current revision); 0 for the kinds that roll every pod."""

    def updated_ready(self, workload: dict[str, Any]) -> bool:
        """The workload's status allows a Ready pod of the update revision (some pod updated, some pod
        Ready): before that, reading the revision's pods to find one cannot succeed."""

    def covers(self, workload: dict[str, Any], health: Health) -> bool:
        """A completion of the update revision, recorded as `health`, still covers the rollout the
        workload shows now: false once the same revision is being rolled out to pods that completion
        did not include (a StatefulSet's partition lowered since)."""


class Api(Protocol):
    """The I/O of one kind (implemented in `kube`, the only module that calls the API)."""

    def get(self, namespace: str, name: str) -> dict[str, Any]: ...

    def history(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        """The history objects the workload controls, as kubectl's rollout history finds them."""

    def get_revision(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def pods(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        """The pods its selector matches, metadata only (Workload.pods_of says which revision's they are)."""

    def mark_revision(
        self, namespace: str, name: str, annotations: dict[str, str | None], resource_version: str = ""
    ) -> None:
        """Merge annotations (marks) onto a history object; None removes a key. With resource_version,
        only onto that version of it (a conflict, 409, otherwise)."""

    def patch(self, namespace: str, name: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        """A JSON patch of the workload itself."""

    def undo(self, namespace: str, name: str, undo: Undo) -> dict[str, Any]:
        """The rollback write (Workload.undo_patch), sent with its content type."""


def rollout_over(adapter: Workload, workload: dict[str, Any], revision: Revision | None) -> bool:
    """The rollout of `revision` (the update revision) was seen complete in this revision, and that
    completion covers what the workload shows now: a pod lost since is no failed rollout."""
    health = revision.health if revision is not None else None
    return (
        revision is not None
        and revision.healthy_in_this_revision
        and health is not None
        and adapter.covers(workload, health)
    )


def template_of(workload: Workload, history_object: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template one history object of `workload`'s kind holds (a ReplicaSet's spec.template, a
    ControllerRevision's data), None when the kind's adapter cannot read it."""
    revisions = workload.revisions([history_object])
    return revisions[0].template if revisions else None
