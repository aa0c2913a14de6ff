"""A StatefulSet left stuck by its own rollback, finished: which pods to delete, and when to stop. Pure.

With the default `OrderedReady` policy the StatefulSet controller processes the pods in ordinal order
and returns at the first one that is not Running and Ready, before it ever reaches the code that
replaces pods of another revision. A pod of the failed revision that never becomes Ready therefore
keeps the controller from carrying out the rollback: restoring the template changes updateRevision and
nothing else (Kubernetes' "Forced rollback", kubernetes/kubernetes#67250; workload-kinds.md §3.5).
`kubectl rollout undo` leaves it there; the documented repair is to delete the broken pods by hand.

This decides that repair from state that lasts, never from having seen the rollback patch:
- the rollback is the newest entry of the StatefulSet's own ledger, and the controller has observed it
  (status.observedGeneration >= metadata.generation, status.updateRevision is the revision it restored:
  a template changed since, by anyone, is not autorollback's to finish);
- the pods deleted are the failed revision's (controller-revision-hash is its name) that are not Ready,
  at or above the partition, controlled by this StatefulSet (ownerReference uid) and not terminating;
  a failed revision's pod that is Ready is left for the controller, which replaces it in its order;
- nothing unless the StatefulSet is opted in with `autorollback.io/mode: rollback` (dry-run, a
  StatefulSet's default, changes nothing), read again from the object as it is now;
- nothing for OnDelete (the controller replaces no pod: none was rolled back), nothing while the feature
  is off (`autorollback.io/delete-stuck-pods: "false"`, or the operator's `--no-delete-stuck-pods`);
- when the restored revision's pods are not Ready for the whole progress deadline (the shell measures
  how long no more of them became Ready, on its monotonic clock), the rollback is abandoned: nothing
  more is deleted, and the StatefulSet is left to people (the restored version may no longer run, e.g.
  on data the bad version migrated). The abandonment is recorded on the restored revision (`MARK`),
  so that it is told once and holds across restarts.

The pods the controller recreates come at the revision the rollback restored; whatever the failed
version wrote to their volumes stays there (PersistentVolumeClaims are never touched).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autorollback import config, history, ledger
from autorollback.config import PREFIX
from autorollback.workloads import controllerrevision as cr
from autorollback.workloads.statefulset import partition, replicas

KIND = "StatefulSet"  # the only kind whose controller waits on a broken pod after a rollback
ANNOTATION = PREFIX + "delete-stuck-pods"  # on the StatefulSet: "false" turns the deletion off
MARK = PREFIX + "stuck-pods"  # on the restored ControllerRevision: "abandoned <the rollback's id>"
ABANDONED = "abandoned"
OFF = "false"


@dataclass(frozen=True)
class Pod:
    """A pod to delete, with what the delete's preconditions need."""

    name: str
    uid: str
    resource_version: str
    ordinal: int


@dataclass(frozen=True)
class Finish:
    """What to do about the StatefulSet's last rollback now.

    entry: the rollback being finished (None: nothing to finish; `why` says so).
    delete: the stuck pods of the failed revision, highest ordinal first.
    waiting: the restored revision's pods that are not Ready (what the shell times against the deadline).
    progress: the state whose lasting is timed (it changes when one more restored pod is Ready).
    abandon: the restored revision failed too: tell it (once: `abandon_mark`), delete nothing.
    """

    entry: ledger.Entry | None
    why: str = ""
    delete: tuple[Pod, ...] = ()
    waiting: tuple[str, ...] = ()
    progress: str = ""
    abandon: bool = False
    abandoned_before: bool = False

    @property
    def abandon_mark(self) -> str:
        return f"{ABANDONED} {self.entry.id}" if self.entry is not None else ""


def enabled(annotations: Mapping[str, str] | None, default: bool = True) -> bool:
    """The feature for this StatefulSet: the operator's default (on unless --no-delete-stuck-pods),
    turned off by `autorollback.io/delete-stuck-pods: "false"` (any other value leaves the default)."""
    value = (annotations or {}).get(ANNOTATION)
    return False if isinstance(value, str) and value.strip().lower() == OFF else default


def rollback_observed(
    sts: dict[str, Any], templates: tuple[dict[str, Any] | None, dict[str, Any] | None] = (None, None)
) -> ledger.Entry | None:
    """The StatefulSet's newest rollback (its own ledger) when the controller has observed it: the
    spec is observed and status.updateRevision is the revision the rollback restored (`restored_as`).
    That is the revision the ledger names, or a new one the controller created for the same template
    (`templates`: the update revision's and the restored revision's, as the shell read them): it
    compares a revision's bytes, and one written by an older Kubernetes (1.33's `creationTimestamp:
    null`) is re-created under a new name (workload-kinds.md §2.3, §6 D). None otherwise (no rollback;
    not observed yet; the template changed since: someone deployed after it)."""
    newest = _newest(sts)
    if newest is None:
        return None
    if restored_as(sts) == newest.restored:
        return newest
    update, restored = templates
    return newest if update is not None and restored is not None and cr.same_template(update, restored) else None


def rollback_pending(sts: dict[str, Any]) -> ledger.Entry | None:
    """The newest rollback when it may be observed (what finishing it depends on, without reading
    the revisions): `rollback_observed` by name; or, under another name, while the StatefulSet is not
    at rest (a pod not Ready, or the revisions apart): its revisions are then read and compared."""
    newest = _newest(sts)
    if newest is None:
        return None
    s = sts.get("status") or {}
    at_rest = s.get("updateRevision") == s.get("currentRevision") and cr.count(s, "readyReplicas") >= replicas(sts)
    return newest if restored_as(sts) == newest.restored or not at_rest else None


def _newest(sts: dict[str, Any]) -> ledger.Entry | None:
    """The newest rollback in the ledger, once the controller observed the spec and rolls out another
    revision than the one it rolled back away from."""
    entries = ledger.parse((sts["metadata"].get("annotations") or {}).get(ledger.KEY))
    if not entries or not cr.observed(sts):
        return None
    newest, update = entries[0], restored_as(sts)
    return None if not update or newest.failed in (newest.restored, update) else newest


def restored_as(sts: dict[str, Any]) -> str:
    """The revision the controller rolls out now (status.updateRevision): the restored one, once
    `rollback_observed`; its pods carry this name, and its marks are bound to it."""
    return str((sts.get("status") or {}).get("updateRevision") or "")


def ready(pod: dict[str, Any]) -> bool:
    """The pod's Ready condition is True (what the controller's isRunningAndReady reads, with Running)."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions if isinstance(c, dict))


def ordinal(sts: dict[str, Any], pod: dict[str, Any]) -> int | None:
    """The pod's ordinal, from its name `<statefulset>-<ordinal>` (None: not a name the controller gives)."""
    prefix = sts["metadata"]["name"] + "-"
    name = str(pod["metadata"].get("name") or "")
    tail = name[len(prefix) :] if name.startswith(prefix) else ""
    return int(tail) if tail.isdigit() and (tail == "0" or not tail.startswith("0")) else None


def _start(sts: dict[str, Any]) -> int:
    start = ((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0
    return start if isinstance(start, int) and not isinstance(start, bool) and start >= 0 else 0


def _ours(sts: dict[str, Any], pods: list[dict[str, Any]], revision: str) -> list[tuple[int, dict[str, Any]]]:
    """This StatefulSet's live pods of the revision, with their ordinals: controlled by it (uid), not
    terminating, named as the controller names them."""
    uid = sts["metadata"].get("uid") or ""
    out = []
    for p in pods:
        meta = p.get("metadata") or {}
        n = ordinal(sts, p)
        if (
            uid
            and revision
            and n is not None
            and cr.controller_uid(p) == uid
            and not meta.get("deletionTimestamp")
            and (meta.get("labels") or {}).get(cr.REVISION_LABEL) == revision
        ):
            out.append((n, p))
    return sorted(out, key=lambda item: item[0], reverse=True)


def stuck(sts: dict[str, Any], pods: list[dict[str, Any]], failed: str) -> tuple[Pod, ...]:
    """The failed revision's pods that hold the controller: not Ready, at or above the partition (its
    index, the ordinal less spec.ordinals.start, as the controller counts), highest ordinal first."""
    lowest = partition(sts) + _start(sts)
    return tuple(
        Pod(p["metadata"]["name"], p["metadata"].get("uid") or "", p["metadata"].get("resourceVersion") or "", n)
        for n, p in _ours(sts, pods, failed)
        if n >= lowest and not ready(p) and p["metadata"].get("uid")
    )


def waiting(sts: dict[str, Any], pods: list[dict[str, Any]], restored: str) -> tuple[tuple[str, ...], int]:
    """The restored revision's pods that are not Ready (names, highest ordinal first), and how many are."""
    ours = _ours(sts, pods, restored)
    return tuple(p["metadata"]["name"] for _, p in ours if not ready(p)), sum(1 for _, p in ours if ready(p))


def finish(
    sts: dict[str, Any],
    pods: list[dict[str, Any]],
    *,
    default: bool = True,
    restored_marks: Mapping[str, str] | None = None,
    not_ready_seconds: float = 0.0,
    deadline_seconds: float = 600.0,
    templates: tuple[dict[str, Any] | None, dict[str, Any] | None] = (None, None),
) -> Finish:
    """What to do now about the StatefulSet's last rollback (see the module's docstring).

    pods: the pods its selector matches (full objects: their Ready condition is read).
    default: the operator's setting (--delete-stuck-pods); the annotation turns it off per StatefulSet.
    restored_marks: the annotations of the restored ControllerRevision, as `restored_as` names it (its
    healthy mark, the abandonment mark).
    not_ready_seconds: how long the shell has seen `progress` last (restored pods not Ready, and no more
    of them becoming Ready), on its monotonic clock; the deadline is the StatefulSet's.
    templates: the update revision's and the restored revision's (`rollback_observed`).
    """
    if cr.on_delete(sts):
        return Finish(None, "OnDelete: the controller replaces no pod, so no rollback was carried out")
    annotations = sts["metadata"].get("annotations")
    settings = config.parse(annotations, KIND)
    if not settings.enabled or settings.dry_run:
        return Finish(None, "not opted in, or dry-run (a StatefulSet's default): autorollback changes nothing")
    if not enabled(annotations, default):
        return Finish(None, "deleting stuck pods is turned off")
    entry = rollback_observed(sts, templates)
    if entry is None:
        return Finish(None, "no rollback observed by the controller is the StatefulSet's latest change")
    restored = restored_as(sts)
    health = history.parse_health(history.bound(restored, (restored_marks or {}).get(history.HEALTHY_AT)))
    if health is not None and entry.generation and health.generation >= entry.generation:
        # level-triggered end: a restored pod not Ready months later is the deadline's and the fast
        # signals' to judge, never a reason to abandon this rollback
        return Finish(None, "the rollback is finished: the restored revision completed since")
    idle, ready_count = waiting(sts, pods, restored)
    progress = f"{entry.id} ready={ready_count}" if idle else ""
    if (restored_marks or {}).get(MARK) == f"{ABANDONED} {entry.id}":
        return Finish(entry, "abandoned already", waiting=idle, abandoned_before=True)
    if idle and not_ready_seconds >= deadline_seconds:
        return Finish(entry, "the restored revision's pods failed too", waiting=idle, progress=progress, abandon=True)
    return Finish(entry, "", stuck(sts, pods, entry.failed), idle, progress)


def deleted_message(sts: dict[str, Any], entry: ledger.Entry, pods: tuple[Pod, ...]) -> str:
    names = ", ".join(p.name for p in pods)
    return (
        f"deleted pod{'s' if len(pods) > 1 else ''} {names} of the failed revision {entry.failed}, not Ready, so that "
        f"the StatefulSet controller recreates {'them' if len(pods) > 1 else 'it'} at the restored revision "
        f"{restored_as(sts)} (with OrderedReady it waits for a broken pod forever: Kubernetes' Forced rollback). "
        "Deleted gracefully; the PersistentVolumeClaims stay: data the failed version wrote to the volumes is "
        f'still there. Turn this off with the annotation {ANNOTATION}: "false".'
    )


def abandoned_message(sts: dict[str, Any], entry: ledger.Entry, waiting: tuple[str, ...], seconds: float) -> str:
    return (
        f"the pods of the restored revision {restored_as(sts)} are not Ready either ({', '.join(waiting)}; no "
        f"progress for {int(seconds)}s, the progress deadline): not deleting any more pods of the failed revision "
        f"{entry.failed}. Manual intervention needed: the restored version may not run on what the failed one "
        "left (its data stays on the volumes); inspect the pods, then roll out a fix."
    )
