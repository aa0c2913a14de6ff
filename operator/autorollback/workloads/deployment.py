"""Deployments: the adapter of the workload seam (`base.Workload`), pure.

Its history is the ReplicaSets it controls (their pods carry the `pod-template-hash` of their
template); a rollback is kubectl's JSON patch of the template and annotations.

What the Deployment controller says about a rollout: failed, complete, or in progress.

Every Progressing message the controller writes names a ReplicaSet (`ReplicaSet "web-5d8f" has
timed out progressing.`). The condition outlives the generation it was written for: when the
template goes back to an existing ReplicaSet (every rollback), the controller keeps the old
condition until it sees progress. So a condition only describes the current template when the
ReplicaSet it names is the current new ReplicaSet; callers check that against the ReplicaSets.
"""

import copy
import re
from typing import Any

from autorollback import ledger, times
from autorollback.config import PREFIX, shown
from autorollback.history import MARKS, Health, Revision
from autorollback.ledger import Entry
from autorollback.workloads.base import DEADLINE_EXCEEDED, JSON_PATCH, SHOWN_MESSAGE, Failure, Undo
from autorollback.workloads.templates import semantic

COMPLETE = "NewReplicaSetAvailable"
REVISION = "deployment.kubernetes.io/revision"
KIND = "Deployment"
HASH_LABEL = "pod-template-hash"
_INT64 = re.compile(r"[+-]?[0-9]+")  # ASCII digits only, no spaces or underscores, as Go parses
_NAMED = re.compile(r'[Rr]eplica ?[Ss]et "([a-z0-9][-a-z0-9.]{0,252})"')  # a DNS subdomain, as names are


def condition(deployment: dict[str, Any], type_: str) -> dict[str, Any]:
    c: dict[str, Any]
    for c in (deployment.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return {}


def observed(deployment: dict[str, Any]) -> bool:
    status = deployment.get("status") or {}
    return bool(status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0))


def named_replicaset(message: str) -> str:
    """The ReplicaSet a Progressing message is about ("" when it names none)."""
    m = _NAMED.search(message or "")
    return m.group(1) if m else ""


def revision_of(obj: dict[str, Any]) -> int | None:
    """kubectl's and the controller's rule (strconv.ParseInt(v, 10, 64)): missing -> 0,
    unparsable -> None (ignored)."""
    raw = (obj["metadata"].get("annotations") or {}).get(REVISION)
    if raw is None:
        return 0
    if not isinstance(raw, str) or not _INT64.fullmatch(raw) or not -(2**63) <= int(raw) < 2**63:
        return None
    return int(raw)


def failure(deployment: dict[str, Any]) -> Failure | None:
    """Progressing=False, ProgressDeadlineExceeded, written for the current generation or carried into it."""
    c = condition(deployment, "Progressing")
    if not (observed(deployment) and c.get("status") == "False" and c.get("reason") == DEADLINE_EXCEEDED):
        return None
    return Failure(
        revision_name=named_replicaset(c.get("message", "")),
        reason=DEADLINE_EXCEEDED,
        message=shown(c.get("message", ""), SHOWN_MESSAGE),
        updated=c.get("lastUpdateTime") or c.get("lastTransitionTime") or "",
        revision=revision_of(deployment) or 0,
    )


def completed_replicaset(deployment: dict[str, Any]) -> str:
    """The ReplicaSet of a finished rollout ("" while none): like `kubectl rollout status` saying
    "successfully rolled out", plus the controller's own verdict. A rollout to zero replicas ran
    no pod, so it proves nothing."""
    if not observed(deployment) or paused(deployment):
        return ""
    status = deployment.get("status") or {}
    want = (deployment.get("spec") or {}).get("replicas", 1)
    c = condition(deployment, "Progressing")
    done = (
        want > 0
        and status.get("updatedReplicas", 0) >= want
        and status.get("replicas", 0) <= status.get("updatedReplicas", 0)
        and status.get("availableReplicas", 0) >= status.get("updatedReplicas", 0)
        and c.get("reason") == COMPLETE
    )
    return named_replicaset(c.get("message", "")) if done else ""


def declared_complete(deployment: dict[str, Any]) -> str:
    """The ReplicaSet whose rollout the controller's condition declares complete ("" while one is
    under way), whatever the counts say now: unlike completed_replicaset, pods that stop being
    available later do not reopen it (that is not a rollout failing)."""
    c = condition(deployment, "Progressing")
    if not observed(deployment) or c.get("reason") != COMPLETE:
        return ""
    return named_replicaset(c.get("message", ""))


def complete_left_over(deployment: dict[str, Any]) -> str:
    """The ReplicaSet a "successfully progressed" condition names while the counts show a rollout
    unfinished ("" otherwise). When the controller's first look at a new template sees no progress
    (its first status write for it was refused: a conflict with another writer, an API outage), it
    keeps that condition, and then never times the rollout out: DeploymentTimedOut returns false on
    NewReplicaSetAvailable, and syncRolloutStatus does not even look while replicas == updatedReplicas
    (Recreate scales the old pods away first). Callers check whether the ReplicaSet named is the
    current template's, and whether that one was seen complete."""
    if not observed(deployment) or paused(deployment):
        return ""
    c = condition(deployment, "Progressing")
    if c.get("status") != "True" or c.get("reason") != COMPLETE:
        return ""
    status = deployment.get("status") or {}
    want = (deployment.get("spec") or {}).get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    unfinished = want > 0 and (
        updated < want or status.get("replicas", 0) > updated or status.get("availableReplicas", 0) < updated
    )
    return named_replicaset(c.get("message", "")) if unfinished else ""


def unfinished(deployment: dict[str, Any]) -> str:
    """base.Workload.unfinished: the leftover condition (complete_left_over), named by its ReplicaSet,
    its lastUpdateTime and its reason ("" when there is none: the controller times the rollout out)."""
    left = complete_left_over(deployment)
    if not left:
        return ""
    return f"{left} {condition(deployment, 'Progressing').get('lastUpdateTime')} {COMPLETE}"


def deadline_seconds(deployment: dict[str, Any]) -> int:
    """spec.progressDeadlineSeconds, or the API's default (600)."""
    return int(deployment["spec"].get("progressDeadlineSeconds") or 600)


def progress(deployment: dict[str, Any]) -> tuple[int, ...]:
    """The counts whose change the controller calls progress."""
    s = deployment.get("status") or {}
    return tuple(int(s.get(k) or 0) for k in ("updatedReplicas", "replicas", "readyReplicas", "availableReplicas"))


def progressing_replicaset(deployment: dict[str, Any]) -> str:
    """The ReplicaSet a rollout in progress is about, as far as the controller has said so."""
    c = condition(deployment, "Progressing")
    if c.get("status") != "True" or c.get("reason") == COMPLETE:
        return ""
    return named_replicaset(c.get("message", ""))


def paused(deployment: dict[str, Any]) -> bool:
    return bool((deployment.get("spec") or {}).get("paused"))


def rollout_in_progress(deployment: dict[str, Any]) -> bool | None:
    """base.Workload.rollout_in_progress: not paused, and the controller's condition does not declare
    the rollout complete (without a progress deadline there is no condition: the counts say)."""
    if paused(deployment):
        return False
    if not observed(deployment):
        return None
    if not condition(deployment, "Progressing"):  # no progress deadline: no condition at all
        return not completed_replicaset(deployment)
    return not declared_complete(deployment)


def completion_token(deployment: dict[str, Any]) -> str:
    """base.Workload.completion_token: the Progressing condition's lastUpdateTime ("None" without one)."""
    return str(condition(deployment, "Progressing").get("lastUpdateTime"))


def rollout_revision(deployment: dict[str, Any]) -> str:
    """base.Workload.rollout_revision: the revision annotation as written ("" without one)."""
    return str(((deployment.get("metadata") or {}).get("annotations") or {}).get(REVISION, ""))


# --- templates and revisions (the controller's and kubectl's rules)


def without_hash(template: dict[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return t


def same_template(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal pod templates, ignoring the pod-template-hash label (kubectl's and the controller's rule)."""
    return bool(semantic(without_hash(a)) == semantic(without_hash(b)))


def revisions(replicasets: list[dict[str, Any]], ledger: tuple[Entry, ...] = ()) -> list[Revision]:
    """Newest first; ReplicaSets with an unparsable revision are ignored, as kubectl does."""
    out = []
    for rs in replicasets:
        number = revision_of(rs)
        if number is None:
            continue
        meta = rs["metadata"]
        out.append(
            Revision(
                number,
                meta["name"],
                rs["spec"]["template"],
                dict(meta.get("annotations") or {}),
                created=meta.get("creationTimestamp") or "",
                available=int((rs.get("status") or {}).get("availableReplicas") or 0),
                ledger=ledger,
            )
        )
    return sorted(out, key=lambda r: r.number, reverse=True)


def current(history: list[Revision], template: dict[str, Any]) -> Revision | None:
    """The controller's FindNewReplicaSet: the oldest ReplicaSet with this template."""
    same = [r for r in history if same_template(r.template, template)]
    return min(same, key=lambda r: (times.parse(r.created), r.name), default=None)


# --- the rollback patch, built by the rules of `kubectl rollout undo --to-revision=N`

CHANGE_CAUSE = "kubernetes.io/change-cause"
# kubectl keeps the Deployment's own values for these and never copies them from the ReplicaSet.
SKIP = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        "deployment.kubernetes.io/revision",
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)


def kubectl_annotations(deployment: dict[str, str], replicaset: dict[str, str]) -> dict[str, str]:
    """Exactly kubectl's: the Deployment's skip-list values, every other annotation from the ReplicaSet."""
    out = {k: v for k, v in deployment.items() if k in SKIP}
    out.update({k: v for k, v in replicaset.items() if k not in SKIP})
    return out


def is_configuration(key: str) -> bool:
    """The user's autorollback.io/* settings, as opposed to the state autorollback records."""
    return key.startswith(PREFIX) and key not in MARKS and key != ledger.KEY


def annotations(
    deployment: dict[str, str], target: Revision, change_cause: str, entries: tuple[ledger.Entry, ...]
) -> dict[str, str]:
    """kubectl's annotations, plus the user's autorollback.io/* configuration and the ledger;
    no marks (they belong on ReplicaSets) and nothing of autorollback's copied from the ReplicaSet."""
    out = {k: v for k, v in kubectl_annotations(deployment, target.annotations).items() if not k.startswith(PREFIX)}
    out.update({k: v for k, v in deployment.items() if is_configuration(k)})
    out[ledger.KEY] = ledger.dump(entries)
    out[CHANGE_CAUSE] = change_cause
    return out


def patch(
    deployment: dict[str, Any], target: Revision, change_cause: str, entries: tuple[ledger.Entry, ...]
) -> list[dict[str, Any]]:
    """One JSON Patch: the template, the annotations and the ledger entry that records this
    rollback. Replacing resourceVersion makes it fail with 409 if anyone wrote in between."""
    meta = deployment["metadata"]
    return [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
        {"op": "replace", "path": "/spec/template", "value": without_hash(target.template)},
        {
            "op": "replace",
            "path": "/metadata/annotations",
            "value": annotations(meta.get("annotations") or {}, target, change_cause, entries),
        },
    ]


def undo(deployment: dict[str, Any], target: Revision, change_cause: str, entries: tuple[ledger.Entry, ...]) -> Undo:
    """The rollback write (base.Workload.undo_patch): `patch`, sent as a JSON patch."""
    return Undo(JSON_PATCH, patch(deployment, target, change_cause, entries))


def pods_of(replicaset: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The live pods of this ReplicaSet: those with its pod-template-hash, not being deleted."""
    template_hash = (
        (((replicaset.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels", {}).get(HASH_LABEL)
    )
    return [
        p
        for p in pods
        if template_hash
        and (p["metadata"].get("labels") or {}).get(HASH_LABEL) == template_hash
        and not p["metadata"].get("deletionTimestamp")
    ]


def pod_label_value(replicaset: dict[str, Any]) -> str:
    """base.Workload.pod_label_value: the ReplicaSet's pod-template-hash (its template's, as `pods_of`
    reads it; else its own labels', which carry the same)."""
    template = ((replicaset.get("spec") or {}).get("template") or {}).get("metadata") or {}
    own = (replicaset.get("metadata") or {}).get("labels") or {}
    return str((template.get("labels") or {}).get(HASH_LABEL) or own.get(HASH_LABEL) or "")


def on_delete(deployment: dict[str, Any]) -> bool:
    """A Deployment has no OnDelete strategy (Recreate and RollingUpdate both roll out)."""
    return False


def updated_ready(deployment: dict[str, Any]) -> bool:
    """base.Workload.updated_ready: a ReplicaSet counts its own ready pods (never read from pods)."""
    return True


def partition(deployment: dict[str, Any]) -> int:
    """base.Workload.partition: a Deployment rolls every pod."""
    return 0


def covers(deployment: dict[str, Any], health: Health) -> bool:
    """base.Workload.covers: a Deployment's rollout is of every replica at once (a new template is a
    new revision), so a completion in this revision covers it."""
    return True


class Deployments:
    """The Deployment adapter (base.Workload)."""

    kind = KIND
    pod_label = HASH_LABEL
    counts_ready = True  # a ReplicaSet's status.readyReplicas

    def template(self, workload: dict[str, Any]) -> dict[str, Any]:
        template: dict[str, Any] = workload["spec"]["template"]
        return template

    revisions = staticmethod(revisions)
    current = staticmethod(current)
    same_template = staticmethod(same_template)
    revision_of = staticmethod(revision_of)
    failure = staticmethod(failure)
    completed = staticmethod(completed_replicaset)
    completion_token = staticmethod(completion_token)
    rollout_revision = staticmethod(rollout_revision)
    left_over = staticmethod(complete_left_over)
    unfinished = staticmethod(unfinished)
    deadline_seconds = staticmethod(deadline_seconds)
    progress = staticmethod(progress)
    paused = staticmethod(paused)
    observed = staticmethod(observed)
    rollout_in_progress = staticmethod(rollout_in_progress)
    undo_patch = staticmethod(undo)
    pods_of = staticmethod(pods_of)
    pod_label_value = staticmethod(pod_label_value)
    on_delete = staticmethod(on_delete)
    covers = staticmethod(covers)
    partition = staticmethod(partition)
    updated_ready = staticmethod(updated_ready)

    def update_revision(self, workload: dict[str, Any], history: list[Revision]) -> Revision | None:
        """base.Workload.update_revision: the controller's FindNewReplicaSet (`current`)."""
        return current(history, self.template(workload))


DEPLOYMENTS = Deployments()
