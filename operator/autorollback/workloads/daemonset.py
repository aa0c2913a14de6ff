"""DaemonSets: the adapter of the workload seam (`base.Workload`), pure.

Its history is the ControllerRevisions it controls (`controllerrevision`), named `<ds>-<hash>` and
labelled `controller-revision-hash=<hash>`; its pods carry that hash alone (not the name) in the same
label. The hash is of the Go struct of the template (ComputeHash), which is not reproduced here, and
the status names no revision: the revision of the template now is the one holding it (`current`),
which is also the highest-numbered once the controller has observed the spec (constructHistory
renumbers it max+1 on every sync: `update_revision`). workload-kinds.md §2.4, §3.6, §4.

What the controller says about a rollout is counts of nodes (desired, updated, ready, available,
unavailable), looking at the oldest pod of each node. It never says one failed: autorollback measures
the deadline (`unfinished`, `progress`, `deadline_seconds`). Nothing in the status remembers that a
rollout completed: a node whose pod stops being available later reads like a rollout not finished
(as `kubectl rollout status` reads it).
"""

from typing import Any

from autorollback.history import Revision
from autorollback.workloads import controllerrevision as cr
from autorollback.workloads.controllerrevision import count

KIND = "DaemonSet"
# written by the API server on every DaemonSet: its template generation, bumped by each template change
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def rollout_revision(ds: dict[str, Any]) -> str:
    """base.Workload.rollout_revision: the template generation as the API server wrote it ("" without
    one). It grows with every template change, a rollback's included, and nothing else changes it."""
    return str(((ds.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION, ""))


def rollout(ds: dict[str, Any]) -> str:
    """Names the rollout of the template now where a revision's name is asked for (`completed`) and
    cannot be known from the DaemonSet: `<ds>-template-generation-<N>` (the observed generation without
    the annotation). No ControllerRevision is named so (their hashes have no dashes): looking it up
    finds nothing, and the revision is `current` (or `update_revision`) of the history."""
    generation = rollout_revision(ds)
    if not generation.isdigit():
        generation = str(count(ds.get("status") or {}, "observedGeneration"))
    return f"{ds['metadata']['name']}-template-generation-{generation}"


def desired(ds: dict[str, Any]) -> int:
    return count(ds.get("status") or {}, "desiredNumberScheduled")


def rolled_out(ds: dict[str, Any]) -> bool:
    """Every node that should run the pod runs the updated one and it is available (`kubectl rollout
    status daemonset`: updated and available both reach desired). No node to run on proves nothing."""
    s, want = ds.get("status") or {}, desired(ds)
    return want > 0 and count(s, "updatedNumberScheduled") >= want and count(s, "numberAvailable") >= want


def completed(ds: dict[str, Any]) -> str:
    """base.Workload.completed: the template's rollout once `rolled_out` and observed ("" before),
    named by `rollout`: the name of its ControllerRevision cannot be known from the DaemonSet."""
    return rollout(ds) if cr.observed(ds) and rolled_out(ds) else ""


def under_way(ds: dict[str, Any]) -> bool:
    """A rolling update the controller is carrying out: observed, RollingUpdate, and a node still
    owed the updated pod (updatedNumberScheduled below desiredNumberScheduled). An updated pod that
    is not available is not enough: a DaemonSet at rest with one node NotReady looks the same, and
    rolling it back would be wrong (the status remembers no completion). The cost: a broken update
    on a single node is left to the pod signals of a watched rollout. Not with OnDelete (the
    controller replaces no pod by itself)."""
    s = ds.get("status") or {}
    return cr.observed(ds) and cr.rolling(ds) and count(s, "updatedNumberScheduled") < desired(ds)


def unfinished(ds: dict[str, Any]) -> str:
    """base.Workload.unfinished: a rollout `under_way`, named by `rollout` ("" when none)."""
    return f"{rollout(ds)} unfinished" if under_way(ds) else ""


def rollout_in_progress(ds: dict[str, Any]) -> bool | None:
    """base.Workload.rollout_in_progress: `under_way` (never with OnDelete); None until observed."""
    if not cr.observed(ds):
        return None
    return under_way(ds)


def updated_ready(ds: dict[str, Any]) -> bool:
    """base.Workload.updated_ready: a node runs the updated pod, and a node's pod is Ready (the status
    does not say whether it is the same one). Never with no node to run on."""
    s = ds.get("status") or {}
    return count(s, "updatedNumberScheduled") > 0 and count(s, "numberReady") > 0


def progress(ds: dict[str, Any]) -> tuple[int, ...]:
    """The counts whose change is progress (§6 A, and the nodes to run on: a node added or gone)."""
    s = ds.get("status") or {}
    keys = (
        "observedGeneration",
        "desiredNumberScheduled",
        "updatedNumberScheduled",
        "numberReady",
        "numberAvailable",
        "numberUnavailable",
    )
    return tuple(count(s, k) for k in keys)


def update_revision(ds: dict[str, Any], history: list[Revision]) -> Revision | None:
    """The revision of the template now on the controller's word: once it has observed the spec, the
    highest-numbered (constructHistory renumbers the revision holding the template max+1 before it
    writes the status). Before that, `current`."""
    if cr.observed(ds):
        return max(history, key=lambda r: r.number, default=None)
    return cr.current(history, template(ds))


def template(ds: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = ds["spec"]["template"]
    return t


def pod_label_value(revision: dict[str, Any]) -> str:
    """base.Workload.pod_label_value: the revision's own controller-revision-hash label (its hash)."""
    return str((revision["metadata"].get("labels") or {}).get(cr.REVISION_LABEL) or "")


def pods_of(revision: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The live pods of this revision: its hash (the revision's own controller-revision-hash label, not
    its name) in controller-revision-hash. Pods labelled only by the legacy pod-template-generation
    (from before DaemonSets had ControllerRevisions) are not found."""
    return cr.pods_labelled(revision, pod_label_value(revision), pods)


class DaemonSets(cr.ControllerRevisionKind):
    """The DaemonSet adapter (base.Workload)."""

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
    updated_ready = staticmethod(updated_ready)


DAEMONSETS = DaemonSets()
