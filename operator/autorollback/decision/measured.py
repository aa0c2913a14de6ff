"""The deadline autorollback measures when the controller will not time a rollout out (its condition
is left over from another template): how long, and where the measurement is checkpointed so that the
next process resumes it."""

from dataclasses import dataclass
from typing import Any

from autorollback import checkpoints
from autorollback.config import PREFIX
from autorollback.workloads.base import Workload

NO_PROGRESS = PREFIX + "no-progress"  # checkpoint of a deadline autorollback measures (checkpoints.mark)


@dataclass(frozen=True)
class Measured:
    """How long the current template has made no progress under a condition about another one, as
    this process measured it on its monotonic clock (resumed from a checkpoint after a restart)."""

    seconds: float
    since: str  # this process's wall-clock stamp of its start: recorded (marks, ledger) as the failure's id


@dataclass(frozen=True)
class Checkpointed:
    """The current template's ReplicaSet, where a measured deadline is checkpointed, and the
    NO_PROGRESS value it carries now (as written by anyone: verified by checkpoints.resumed)."""

    name: str
    uid: str
    value: str


def checkpoint_holder(
    replicasets: list[dict[str, Any]], template: dict[str, Any], workload: Workload
) -> Checkpointed | None:
    """Where the measurement of the current template's lack of progress is checkpointed (None: no
    ReplicaSet of that template yet)."""
    rs = workload.current(workload.revisions(replicasets), template)
    raw = next((r for r in replicasets if rs is not None and r["metadata"]["name"] == rs.name), None)
    if raw is None:
        return None
    meta = raw["metadata"]
    return Checkpointed(meta["name"], meta.get("uid") or "", (meta.get("annotations") or {}).get(NO_PROGRESS, ""))


def checkpoint(key: bytes, holder: Checkpointed, state_digest: str, seconds: float) -> str:
    """The NO_PROGRESS mark: elapsed seconds of one no-progress state, bound to its ReplicaSet (name
    and uid) and signed with the operator's key."""
    return checkpoints.mark(key, holder.name, holder.uid, state_digest, seconds)


def checkpointed(
    replicasets: list[dict[str, Any]], template: dict[str, Any], state_digest: str, key: bytes, workload: Workload
) -> float:
    """Seconds a previous process measured for this state on the current template's ReplicaSet
    (0: none). A mark of another state, one copied from another ReplicaSet, or one not signed with
    this key (a tenant's, another process's without the shared key) counts for nothing."""
    holder = checkpoint_holder(replicasets, template, workload)
    if holder is None:
        return 0.0
    return checkpoints.resumed(key, holder.value, holder.name, holder.uid, state_digest)
