"""ControllerRevisions: the history of StatefulSets and DaemonSets, what their two adapters share. Pure.

Both controllers snapshot the pod template into a ControllerRevision they own (the template's labels,
so the workload's selector matches it; a controller ownerReference). Its `data` is the strategic
merge patch that restores the template, `{"spec":{"template":{"$patch":"replace", <the template as
the API server stored it>}}}`, and `revision` its number. A rollback reuses the revision holding the
same template and renumbers it max+1: the number orders rollouts, the name is the identity
(workload-kinds.md §2). The controller copies the workload's annotations onto a revision it creates
(the ledger's copies among them); marks are written onto the revision and bound to its name.

`kubectl rollout undo` sends that `data`, as stored, as a strategic merge patch of the workload
(§1.6): only spec.template is replaced, nothing else of the spec, and none of the workload's
annotations (change-cause included) are restored.

What neither controller has: a failed rollout (no progressDeadlineSeconds, no condition: autorollback
measures the deadline, `deadline_seconds`), a pause, a revision number on the workload, and pods of
one revision counted apart in status (so `Revision.available` is 0, see `revisions`).
"""

import copy
from typing import Any

from autorollback import config, ledger
from autorollback.history import Health, Revision
from autorollback.workloads.base import STRATEGIC_MERGE_PATCH, Failure, Undo
from autorollback.workloads.templates import semantic

REVISION_LABEL = "controller-revision-hash"  # apps/v1 ControllerRevisionHashLabelKey: a pod's revision
CHANGE_CAUSE = "kubernetes.io/change-cause"  # kubectl's; `kubectl rollout history` reads it off the revisions
DIRECTIVE, REPLACE = "$patch", "replace"  # the strategic merge patch's: replace the map as a whole
ROLLING_UPDATE, ON_DELETE = "RollingUpdate", "OnDelete"  # spec.updateStrategy.type (RollingUpdate: the default)


# --- the revisions


def template_of(revision: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template a ControllerRevision restores: its data's spec.template without the replace
    directive, which is what `kubectl rollout history --revision=N` shows (data applied to the
    workload, whose template it replaces whole). None: data of another shape (no controller writes it)."""
    data = revision.get("data")
    spec = data.get("spec") if isinstance(data, dict) else None
    template = spec.get("template") if isinstance(spec, dict) else None
    if not isinstance(template, dict):
        return None
    out = copy.deepcopy(template)
    out.pop(DIRECTIVE, None)
    return out


def revision_of(obj: dict[str, Any]) -> int | None:
    """A ControllerRevision's `revision` (int64); 0 for an object without one (the workloads carry no
    number: status.updateRevision is a name); None when it is not a whole number (ignored)."""
    number = obj.get("revision")
    if number is None:
        return 0
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < 2**63:
        return None
    return number


def revisions(history: list[dict[str, Any]], entries: tuple[ledger.Entry, ...] = ()) -> list[Revision]:
    """Newest first (by `revision`). A revision whose number or data cannot be read is ignored: it can
    be neither compared nor restored. `available` is 0: a ControllerRevision has no status, and the
    workload's counts its pods only as current or updated, never available per revision (so the target
    choice's fallback to a revision serving now does not apply to these kinds)."""
    out = []
    for cr in history:
        number, template = revision_of(cr), template_of(cr)
        if number is None or template is None:
            continue
        meta = cr["metadata"]
        out.append(
            Revision(
                number,
                meta["name"],
                template,
                dict(meta.get("annotations") or {}),
                created=meta.get("creationTimestamp") or "",
                ledger=entries,
            )
        )
    return sorted(out, key=lambda r: r.number, reverse=True)


def same_template(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal pod templates. Both controllers compare the bytes of `data` (the StatefulSet controller
    since v1.34.2 also the latest revision semantically, after defaulting: §2.3); Go's serialization
    cannot be reproduced here and changed in 1.34 (`creationTimestamp: null` is no longer written), so
    the templates are compared as the API's Semantic equality compares them (§6 C)."""
    return bool(semantic(_undirected(a)) == semantic(_undirected(b)))


def _undirected(template: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in template.items() if k != DIRECTIVE}


def current(history: list[Revision], template: dict[str, Any]) -> Revision | None:
    """The controllers' rule: of the revisions holding this template, the one with the highest number
    (the StatefulSet controller takes the last of FindEqualRevisions, sorted by number; the DaemonSet
    controller's dedupCurHistories keeps the highest). A revision the controller has not created yet
    (a new template, not observed) is None."""
    return max((r for r in history if same_template(r.template, template)), key=lambda r: r.number, default=None)


# --- the workload


def observed(workload: dict[str, Any]) -> bool:
    """The controller has looked at the latest spec (`kubectl rollout status` waits for it)."""
    status = workload.get("status") or {}
    return bool(status.get("observedGeneration", 0) >= workload["metadata"].get("generation", 0))


def strategy(workload: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = (workload.get("spec") or {}).get("updateStrategy") or {}
    return s


def on_delete(workload: dict[str, Any]) -> bool:
    """spec.updateStrategy.type OnDelete: the controller replaces no pod by itself (only those deleted
    by hand), so no rollout is ever under way for autorollback to roll back; the shell says so in an
    Event instead (as `kubectl rollout status` refuses such a workload)."""
    return strategy(workload).get("type") == ON_DELETE


def rolling(workload: dict[str, Any]) -> bool:
    """The controller rolls the pods itself: RollingUpdate (also when the type is not set: the API's
    default). An unknown type (a newer API's) is not taken for one."""
    return strategy(workload).get("type") in (None, ROLLING_UPDATE)


def deadline_seconds(workload: dict[str, Any]) -> int:
    """autorollback.io/progress-deadline-seconds (config.progress_deadline): 600 without it or when
    it is invalid. Neither kind has spec.progressDeadlineSeconds."""
    return config.progress_deadline((workload.get("metadata") or {}).get("annotations"))


def completion_token(workload: dict[str, Any]) -> str:
    """base.Workload.completion_token: status.observedGeneration. No condition keeps the controller's
    word on a completion; the generation it was seen at changes with every spec change (a template
    restored completes again at a later one) and stays while nothing changes."""
    return str((workload.get("status") or {}).get("observedGeneration"))


def failure(workload: dict[str, Any]) -> Failure | None:
    """Neither controller reports a failed rollout (no condition is ever set: §3.1)."""
    return None


def paused(workload: dict[str, Any]) -> bool:
    """Neither kind can pause a rollout (no spec.paused)."""
    return False


def left_over(workload: dict[str, Any]) -> str:
    """No condition, so none left over from an earlier rollout."""
    return ""


def no_partition(workload: dict[str, Any]) -> int:
    """base.Workload.partition: a DaemonSet rolls every pod (a StatefulSet's adapter reads its own)."""
    return 0


def covers(workload: dict[str, Any], health: Health) -> bool:
    """base.Workload.covers: a rollout of every pod (a DaemonSet's; a StatefulSet's override says
    when a partition narrows it)."""
    return True


def count(status: dict[str, Any], key: str) -> int:
    value = status.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- pods


def controller_uid(obj: dict[str, Any]) -> str:
    """The uid of the object's controller ownerReference ("" without one)."""
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return next((str(r.get("uid") or "") for r in refs if r.get("controller")), "")


def pods_labelled(revision: dict[str, Any], value: str, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The live pods whose controller-revision-hash is `value` and whose controller is the revision's
    (the workload): not being deleted, and not another workload's whose selector overlaps."""
    owner = controller_uid(revision)
    return [
        p
        for p in pods
        if value
        and (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == value
        and not p["metadata"].get("deletionTimestamp")
        and (not owner or controller_uid(p) == owner)
    ]


# --- the rollback


def restore(target: Revision) -> dict[str, Any]:
    """kubectl's patch: the target revision's data, `{"spec":{"template":{"$patch":"replace", ...}}}`
    as the controllers write it (the directive first, where Go's sorted map keys put it)."""
    return {"spec": {"template": {DIRECTIVE: REPLACE, **copy.deepcopy(target.template)}}}


def undo(workload: dict[str, Any], target: Revision, change_cause: str, entries: tuple[ledger.Entry, ...]) -> Undo:
    """The rollback as one strategic merge patch (base.Workload.undo_patch): kubectl's (`restore`),
    plus metadata.resourceVersion (the API server refuses the patch with 409 if the workload changed
    since it was read) and, merged into the workload's annotations, the ledger and the change-cause.
    kubectl restores no annotation for these kinds: the others are left as they are."""
    return Undo(
        STRATEGIC_MERGE_PATCH,
        {
            "metadata": {
                "resourceVersion": workload["metadata"]["resourceVersion"],
                "annotations": {ledger.KEY: ledger.dump(entries), CHANGE_CAUSE: change_cause},
            },
            **restore(target),
        },
    )


class ControllerRevisionKind:
    """What every kind keeping its history in ControllerRevisions shares of base.Workload; a kind's
    adapter adds its `kind`, template, rollout and pods."""

    pod_label = REVISION_LABEL
    counts_ready = False  # a ControllerRevision has no status: whether a pod of it is Ready, its pods say

    revisions = staticmethod(revisions)
    current = staticmethod(current)
    same_template = staticmethod(same_template)
    revision_of = staticmethod(revision_of)
    failure = staticmethod(failure)
    completion_token = staticmethod(completion_token)
    left_over = staticmethod(left_over)
    deadline_seconds = staticmethod(deadline_seconds)
    paused = staticmethod(paused)
    observed = staticmethod(observed)
    undo_patch = staticmethod(undo)
    on_delete = staticmethod(on_delete)
    covers = staticmethod(covers)
    partition = staticmethod(no_partition)
