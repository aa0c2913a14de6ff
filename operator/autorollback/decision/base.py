"""A decision as data, and what its steps share: how revisions and outcomes are worded, and how a
generation is read."""

from dataclasses import dataclass
from typing import Any

from autorollback import history
from autorollback.gitrevert import core as gitcore
from autorollback.vocab import Reason, Result
from autorollback.workloads.base import Failure, Undo, images


@dataclass(frozen=True)
class Decision:
    result: Result
    reason: str  # machine-friendly, the metric's `reason` label: a Reason, or the failure's own reason
    message: str  # what the Event and the log line say
    failure: Failure | None = None
    failing: history.Revision | None = None
    target: history.Revision | None = None
    undo: Undo | None = None  # the rollback write (Workload.undo_patch); None: nothing to write
    first_report: bool = False  # this failure was never reported before: say RolloutFailed

    @property
    def event_reason(self) -> str:
        return {
            Result.SUCCESS: "RolledBack",
            Result.SKIPPED: "RollbackSkipped",
            Result.IMPOSSIBLE: "RollbackImpossible",
            Result.ABANDONED: "RollbackAbandoned",
            Result.FAILED: "RollbackFailed",
            Result.DRY_RUN: "RollbackPlanned",
        }[self.result]

    @property
    def event_type(self) -> str:
        return "Normal" if self.result in (Result.SUCCESS, Result.DRY_RUN) else "Warning"


def nothing(reason: Reason, message: str, failure: Failure | None = None) -> Decision:
    return Decision(Result.NOTHING, reason, message, failure=failure)


def describe(revision: int, template: dict[str, Any]) -> str:
    return f"revision {revision} ({images(template)})"


def change_cause(failing: str, target: str, failure: Failure) -> str:
    return f"autorollback: rolled back from {failing} to {target}: {failure.reason}"


PAUSED_OUTCOME = f"{Result.SKIPPED} ({Reason.PAUSED})"
CAPPED_OUTCOME = f"{Result.SKIPPED} ({Reason.CAPPED})"


def outcome(d: Decision, at: str) -> str:
    return f"{d.result} ({d.reason}) at {at}"


def revert_pr(rs: history.Revision) -> str:
    url = rs.mark(gitcore.PR_MARK)
    return f" The revert pull request is open: {url} (merge it)." if url.startswith("http") else ""


def as_generation(value: Any) -> int:
    """A generation as the API server gives it (0: none, or not a whole number)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63 else 0
