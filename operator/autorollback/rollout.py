"""What the Deployment controller says about a rollout: failed, complete, or in progress."""
from dataclasses import dataclass
from typing import Any

DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
REVISION = "deployment.kubernetes.io/revision"


def _condition(deployment: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (deployment.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return {}


def _observed(deployment: dict[str, Any]) -> bool:
    status = deployment.get("status") or {}
    return status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)


def revision_of(obj: dict[str, Any]) -> int | None:
    """kubectl's rule: missing -> 0, unparsable -> None (ignored)."""
    raw = (obj["metadata"].get("annotations") or {}).get(REVISION)
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError:
        return None


@dataclass(frozen=True)
class Failure:
    revision: int
    reason: str
    message: str
    since: str  # the condition's lastTransitionTime: identifies this failure


def failure(deployment: dict[str, Any]) -> Failure | None:
    """The current generation's rollout ended in Progressing=False, ProgressDeadlineExceeded."""
    c = _condition(deployment, "Progressing")
    if not (_observed(deployment) and c.get("status") == "False" and c.get("reason") == DEADLINE_EXCEEDED):
        return None
    return Failure(revision=revision_of(deployment) or 0, reason=DEADLINE_EXCEEDED,
                   message=c.get("message", ""), since=c.get("lastTransitionTime") or "")


def complete(deployment: dict[str, Any]) -> bool:
    """Like `kubectl rollout status` saying "successfully rolled out", plus the controller's own verdict."""
    if not _observed(deployment):
        return False
    status = deployment.get("status") or {}
    want = (deployment.get("spec") or {}).get("replicas", 1)
    return (status.get("updatedReplicas", 0) >= want
            and status.get("replicas", 0) <= status.get("updatedReplicas", 0)
            and status.get("availableReplicas", 0) >= status.get("updatedReplicas", 0)
            and _condition(deployment, "Progressing").get("reason") == "NewReplicaSetAvailable")


def paused(deployment: dict[str, Any]) -> bool:
    return bool((deployment.get("spec") or {}).get("paused"))


def images(template: dict[str, Any]) -> str:
    containers = (template.get("spec") or {}).get("containers") or []
    return ", ".join(c.get("image", "?") for c in containers) or "no containers"
