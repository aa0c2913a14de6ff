"""What the Deployment controller says about a rollout: failed, complete, or in progress.

Every Progressing message the controller writes names a ReplicaSet (`ReplicaSet "web-5d8f" has
timed out progressing.`). The condition outlives the generation it was written for: when the
template goes back to an existing ReplicaSet (every rollback), the controller keeps the old
condition until it sees progress. So a condition only describes the current template when the
ReplicaSet it names is the current new ReplicaSet; callers check that against the ReplicaSets.
"""
import re
from dataclasses import dataclass
from typing import Any

from autorollback.config import shown

DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
COMPLETE = "NewReplicaSetAvailable"
REVISION = "deployment.kubernetes.io/revision"
_INT64 = re.compile(r"[+-]?[0-9]+")  # ASCII digits only, no spaces or underscores, as Go parses
_NAMED = re.compile(r'[Rr]eplica ?[Ss]et "([a-z0-9][-a-z0-9.]{0,252})"')  # a DNS subdomain, as names are
SHOWN_IMAGES = 3  # containers named in a message; the rest are counted
SHOWN_IMAGE, SHOWN_MESSAGE = 120, 300  # characters


def condition(deployment: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (deployment.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return {}


def observed(deployment: dict[str, Any]) -> bool:
    status = deployment.get("status") or {}
    return status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)


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
    if not isinstance(raw, str) or not _INT64.fullmatch(raw) or not -2**63 <= int(raw) < 2**63:
        return None
    return int(raw)


@dataclass(frozen=True)
class Failure:
    replicaset: str  # the ReplicaSet the condition blames
    reason: str
    message: str
    updated: str  # lastUpdateTime: written anew for every timeout, unlike lastTransitionTime
    revision: int
    measured: bool = False  # a deadline autorollback measured itself: its time is not the API's

    @property
    def id(self) -> str:
        """Names this failure and no other: the blamed ReplicaSet and the time it was blamed."""
        return f"{self.replicaset} {self.updated}"


def failure(deployment: dict[str, Any]) -> Failure | None:
    """Progressing=False, ProgressDeadlineExceeded, written for the current generation or carried into it."""
    c = condition(deployment, "Progressing")
    if not (observed(deployment) and c.get("status") == "False" and c.get("reason") == DEADLINE_EXCEEDED):
        return None
    return Failure(replicaset=named_replicaset(c.get("message", "")), reason=DEADLINE_EXCEEDED,
                   message=shown(c.get("message", ""), SHOWN_MESSAGE), updated=c.get("lastUpdateTime") or c.get("lastTransitionTime") or "",
                   revision=revision_of(deployment) or 0)


def completed_replicaset(deployment: dict[str, Any]) -> str:
    """The ReplicaSet of a finished rollout ("" while none): like `kubectl rollout status` saying
    "successfully rolled out", plus the controller's own verdict. A rollout to zero replicas ran
    no pod, so it proves nothing."""
    if not observed(deployment) or paused(deployment):
        return ""
    status = deployment.get("status") or {}
    want = (deployment.get("spec") or {}).get("replicas", 1)
    c = condition(deployment, "Progressing")
    done = (want > 0
            and status.get("updatedReplicas", 0) >= want
            and status.get("replicas", 0) <= status.get("updatedReplicas", 0)
            and status.get("availableReplicas", 0) >= status.get("updatedReplicas", 0)
            and c.get("reason") == COMPLETE)
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
    under way ("" otherwise). When the controller's first look at a new template sees no progress
    (its first status write for it was refused: a conflict with another writer, an API outage), it
    keeps that condition, and then never times the rollout out (DeploymentTimedOut returns false on
    NewReplicaSetAvailable). Callers check whether the ReplicaSet named is the current template's."""
    if not observed(deployment) or paused(deployment):
        return ""
    c = condition(deployment, "Progressing")
    if c.get("status") != "True" or c.get("reason") != COMPLETE:
        return ""
    status = deployment.get("status") or {}
    want = (deployment.get("spec") or {}).get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    # old pods left: the only state in which the controller checks progress at all (syncRolloutStatus
    # skips it while replicas == updatedReplicas under this reason), so the only one it leaves untimed
    under_way = want > 0 and status.get("replicas", 0) > updated
    return named_replicaset(c.get("message", "")) if under_way else ""


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


def images(template: dict[str, Any]) -> str:
    containers = (template.get("spec") or {}).get("containers") or []
    named = [shown(str(c.get("image", "?")), SHOWN_IMAGE) for c in containers[:SHOWN_IMAGES]]
    if len(containers) > SHOWN_IMAGES:
        named.append(f"and {len(containers) - SHOWN_IMAGES} more")
    return ", ".join(named) or "no containers"
