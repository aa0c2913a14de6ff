"""Revision history: the ReplicaSets a Deployment controls, the operator's marks on them, and
the choice of the revision to roll back to.

Marks are annotations on the ReplicaSets themselves, so they survive restarts and describe
exactly one pod template. Times are RFC 3339 UTC timestamps.
"""
import copy
import datetime as dt
from dataclasses import dataclass
from typing import Any

from autorollback.annotations import PREFIX
from autorollback.rollout import revision_of

HEALTHY_AT = PREFIX + "healthy-at"  # the Deployment completed its rollout on this template
FAILED_AT = PREFIX + "failed-at"  # lastTransitionTime of the ProgressDeadlineExceeded it hit
FAILED_REASON = PREFIX + "failed-reason"
OUTCOME = PREFIX + "outcome"  # what the operator did about that failure
ROLLED_BACK_AT = PREFIX + "rolled-back-at"  # the operator rolled back away from this template
RESTORED_AT = PREFIX + "restored-at"  # the operator rolled back to this template
MARKS = (HEALTHY_AT, FAILED_AT, FAILED_REASON, OUTCOME, ROLLED_BACK_AT, RESTORED_AT)
HASH_LABEL = "pod-template-hash"


NEVER = dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def timestamp(text: str) -> dt.datetime:
    """An RFC 3339 time; missing or unreadable marks count as never."""
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return NEVER
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def without_hash(template: dict[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return t


def same_template(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return without_hash(a) == without_hash(b)


@dataclass(frozen=True)
class Revision:
    number: int
    name: str
    template: dict[str, Any]
    annotations: dict[str, str]

    def mark(self, key: str) -> str:
        return self.annotations.get(key, "")

    def at(self, key: str) -> dt.datetime:
        return timestamp(self.mark(key))

    def _after_healthy(self, key: str) -> bool:
        return self.at(key) > NEVER and self.at(key) >= self.at(HEALTHY_AT)

    @property
    def healthy(self) -> bool:
        return self.at(HEALTHY_AT) > max(NEVER, self.at(FAILED_AT))

    @property
    def failed(self) -> bool:
        return self._after_healthy(FAILED_AT)

    @property
    def rolled_back_and_unproven(self) -> bool:
        """The operator rolled back away from this template and it never became healthy since."""
        return self._after_healthy(ROLLED_BACK_AT)

    @property
    def restored_and_unproven(self) -> bool:
        """The operator rolled back to this template and it never became healthy since."""
        return self._after_healthy(RESTORED_AT)


def revisions(replicasets: list[dict[str, Any]]) -> list[Revision]:
    """Newest first; ReplicaSets with an unparsable revision are ignored, as kubectl does."""
    out = []
    for rs in replicasets:
        number = revision_of(rs)
        if number is None:
            continue
        out.append(Revision(number, rs["metadata"]["name"], rs["spec"]["template"],
                            dict(rs["metadata"].get("annotations") or {})))
    return sorted(out, key=lambda r: r.number, reverse=True)


def current(history: list[Revision], template: dict[str, Any]) -> Revision | None:
    return next((r for r in history if same_template(r.template, template)), None)


@dataclass(frozen=True)
class Target:
    revision: Revision | None
    why: str


def choose_target(history: list[Revision], template: dict[str, Any], revision: int) -> Target:
    """The newest older revision known healthy; else the newest older one not known to have failed."""
    older = [r for r in history if r.number < revision]
    if not older:
        return Target(None, "there is no older revision to go back to (this is the first revision, "
                            "or revisionHistoryLimit removed the older ReplicaSets)")
    healthy = next((r for r in older if r.healthy), None)
    if healthy:
        return Target(healthy, f"revision {healthy.number} is the newest known to have been healthy")
    untried = next((r for r in older if not r.failed), None)
    if untried:
        return Target(untried, f"no older revision is known healthy; revision {untried.number} is the "
                               "newest not known to have failed")
    numbers = ", ".join(str(r.number) for r in older)
    return Target(None, f"every older revision ({numbers}) is known to have failed")
