"""StatefulSets: the adapter of the workload seam (`base.Workload`), pure.

Its history is the ControllerRevisions it controls (`controllerrevision`). A pod names its revision
by the revision's full name in `controller-revision-hash` (`web-7d4b9c8f6`, not the hash alone), and
so do status.updateRevision (the revision of the template now) and status.currentRevision (the
revision of the pods below the update: the last completed rollout's). The controller moves
currentRevision to updateRevision only once every replica is updated and Ready (completeRollingUpdate):
after a rollout completes the two are equal; with a partition, or OnDelete, they stay apart
(workload-kinds.md §2.2, §3).

What the controller says about a rollout is counts only: complete, under way, or never rolled by the
controller (OnDelete). It never says one failed: autorollback measures the deadline (`unfinished`,
`progress`, `deadline_seconds`). A RollingUpdate with a partition rolls the ordinals at or above it
and stops there on purpose: complete, not failing.
"""

from typing import Any

from autorollback.history import Health, Revision
from autorollback.workloads import controllerrevision as cr
from autorollback.workloads.controllerrevision import count

KIND = "StatefulSet"


def replicas(sts: dict[str, Any]) -> int:
    """spec.replicas (1 when not set, the API's default)."""
    want = (sts.get("spec") or {}).get("replicas", 1)
    return want if isinstance(want, int) and not isinstance(want, bool) else 1


def partition(workload: dict[str, Any]) -> int:
    """The RollingUpdate's partition: ordinals below it stay on the current revision (0 without one,
    as when `rollingUpdate` is not set at all)."""
    if not cr.rolling(workload):
        return 0
    p = (cr.strategy(workload).get("rollingUpdate") or {}).get("partition") or 0
    return p if isinstance(p, int) and not isinstance(p, bool) else 0


def needed(sts: dict[str, Any]) -> int:
    """How many pods the rollout puts on the update revision: those at ordinals at or above the
    partition; every pod once the update revision is the current one (no pod may stay on another)."""
    s = sts.get("status") or {}
    if s.get("updateRevision") == s.get("currentRevision"):
        return replicas(sts)
    return max(replicas(sts) - partition(sts), 0)


def rolled_out(sts: dict[str, Any]) -> bool:
    """The pods the rollout is for are on the update revision, and every pod is available: `kubectl
    rollout status` ("partitioned roll out complete" with a partition: every pod Ready), and available
    since 1.34 honours minReadySeconds (availableReplicas counts Ready pods only, so Ready is implied).
    An update revision that no pod is for proves nothing."""
    s, want, need = sts.get("status") or {}, replicas(sts), needed(sts)
    return need > 0 and count(s, "updatedReplicas") >= need and count(s, "availableReplicas") >= want


def completed(sts: dict[str, Any]) -> str:
    """base.Workload.completed: the update revision once `rolled_out` ("" before, and while the
    controller has not observed the spec). OnDelete too, once every pod was replaced by hand."""
    update = str((sts.get("status") or {}).get("updateRevision") or "")
    return update if update and cr.observed(sts) and rolled_out(sts) else ""


def under_way(sts: dict[str, Any]) -> bool:
    """A rolling update the controller is carrying out (observed, RollingUpdate, replicas wanted):
    - the update revision is not the current one and not `rolled_out`: pods at or above the
      partition are not all on it, or not every pod is available (kubectl's rule, with Ready; the
      status does not say whether the pod not Ready is one the rollout made or one below the partition);
    - or the update revision is the current one (a template restored to it; the first revision) and
      pods of another revision are still there (status.replicas counts every pod created,
      updatedReplicas those on the revision).
    Not under way: OnDelete; a partition that no pod is at or above; a rollout that completed and
    then lost a pod or scaled up (the revisions are equal and no pod of another one is left)."""
    s = sts.get("status") or {}
    update, current = s.get("updateRevision"), s.get("currentRevision")
    if not (cr.observed(sts) and cr.rolling(sts) and replicas(sts) > 0 and update and current):
        return False  # an empty revision is not written yet (a new StatefulSet): no mismatch
    if update != current:
        return needed(sts) > 0 and not rolled_out(sts)
    return count(s, "replicas") > count(s, "updatedReplicas")


def unfinished(sts: dict[str, Any]) -> str:
    """base.Workload.unfinished: a rollout `under_way`, named by its update revision ("" when none)."""
    return f"{sts['status']['updateRevision']} unfinished" if under_way(sts) else ""


def rollout_in_progress(sts: dict[str, Any]) -> bool | None:
    """base.Workload.rollout_in_progress: `under_way` (never with OnDelete); None until observed."""
    if not cr.observed(sts):
        return None
    return under_way(sts)


def rollout_revision(sts: dict[str, Any]) -> str:
    """base.Workload.rollout_revision: status.updateRevision as written ("" without one). A template
    restored to a revision it reuses names that revision again (the number changes, not the name)."""
    return str((sts.get("status") or {}).get("updateRevision") or "")


def covers(workload: dict[str, Any], health: Health) -> bool:
    """base.Workload.covers: a completion covers the rollout now if it was of every pod (the current
    revision is the update revision: the controller moved it once all were updated and Ready), or if
    the partition is where it was then, or higher: the completion covered the pods at or above it. With
    the partition lowered since, the same revision rolls out to pods the completion never covered,
    and that rollout is judged anew (its deadline, its pods' signals) until it completes in turn. A
    scale or any other spec change keeps the coverage: a new pod at or above the partition is one
    more of a revision proven there, as a Deployment's pods after a scale-up are."""
    s = workload.get("status") or {}
    return s.get("updateRevision") == s.get("currentRevision") or partition(workload) >= health.partition


def updated_ready(workload: dict[str, Any]) -> bool:
    """base.Workload.updated_ready: a pod on the update revision, and a pod Ready (the status does
    not say whether it is the same one). Neither while the partition holds every pod back, nor at 0."""
    s = workload.get("status") or {}
    return count(s, "updatedReplicas") > 0 and count(s, "readyReplicas") > 0


def progress(sts: dict[str, Any]) -> tuple[int, ...]:
    """The counts whose change is progress (§6 A; the update revision is in `unfinished`'s name)."""
    s = sts.get("status") or {}
    keys = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    return tuple(count(s, k) for k in keys)


def update_revision(sts: dict[str, Any], history: list[Revision]) -> Revision | None:
    """The revision of the template now on the controller's word: the one status.updateRevision names
    once the controller has observed the spec. It may be one `current` would not pick: a rollback to a
    revision whose bytes the controller no longer writes the same (one written by 1.33) makes it
    create a new, equal revision (§2.3). Before that, or if it is not among `history`, `current`."""
    name = (sts.get("status") or {}).get("updateRevision")
    named = next((r for r in history if name and r.name == name), None) if cr.observed(sts) else None
    return named or cr.current(history, template(sts))


def template(sts: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = sts["spec"]["template"]
    return t


def pod_label_value(revision: dict[str, Any]) -> str:
    """base.Workload.pod_label_value: the revision's full name (setPodRevision), not its hash."""
    return str(revision["metadata"]["name"])


def pods_of(revision: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The live pods of this revision: its full name in controller-revision-hash (setPodRevision)."""
    return cr.pods_labelled(revision, pod_label_value(revision), pods)


class StatefulSets(cr.ControllerRevisionKind):
    """The StatefulSet adapter (base.Workload)."""

    kind = KIND

    template = staticmethod(template)
    completed = staticmethod(completed)
    rollout_revision = staticmethod(rollout_revision)
    unfinished = staticmethod(unfinished)
    progress = staticmethod(progress)
    rollout_in_progress = staticmethod(rollout_in_progress)
    pods_of = staticmethod(pods_of)
    pod_label_value = staticmethod(pod_label_value)
    update_revision = staticmethod(update_revision)
    covers = staticmethod(covers)
    partition = staticmethod(partition)
    updated_ready = staticmethod(updated_ready)


STATEFULSETS = StatefulSets()
