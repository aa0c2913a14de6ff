"""What to do about a Deployment: the whole decision, as data, with no I/O.

`decide` goes through the rollback protocol's pure steps, each ending in a Decision or handing the
next step what it needs: `classify` (which failure stands, if any), `guards` (loops and deferrals),
`plan` (the target and the rollback patch). Beside them: `base` (the Decision and its wording),
`measured` (the deadline autorollback measures, and its checkpoint), `reports` (what was reported,
and the report of a rollback whose report was lost), `upkeep` (marks and warnings).
"""

from collections.abc import Sequence
from typing import Any

from autorollback.config import Config
from autorollback.decision import classify, guards, plan
from autorollback.decision.base import Decision, change_cause, describe, nothing, outcome
from autorollback.decision.measured import (
    NO_PROGRESS,
    Checkpointed,
    Measured,
    checkpoint,
    checkpoint_holder,
    checkpointed,
)
from autorollback.decision.reports import late_report, ledger_failure, restoring, rollback_reported
from autorollback.decision.upkeep import (
    healthy_mark,
    history_too_short,
    known_bad,
    on_delete_warning,
    outlives_failure,
    recovered_since,
    still_complete,
    stray_marks,
)
from autorollback.signals.base import Facts, Source
from autorollback.signals.deadline import ControllerDeadline
from autorollback.vocab import Reason
from autorollback.workloads.base import Workload

__all__ = [
    "NO_PROGRESS",
    "Checkpointed",
    "Decision",
    "Measured",
    "change_cause",
    "checkpoint",
    "checkpoint_holder",
    "checkpointed",
    "decide",
    "describe",
    "healthy_mark",
    "history_too_short",
    "known_bad",
    "late_report",
    "ledger_failure",
    "on_delete_warning",
    "outcome",
    "outlives_failure",
    "recovered_since",
    "restoring",
    "rollback_reported",
    "still_complete",
    "stray_marks",
]


def decide(
    deployment: dict[str, Any],
    replicasets: list[dict[str, Any]],
    config: Config,
    now: str,
    measured: Measured | None = None,
    sources: Sequence[Source] = (ControllerDeadline(),),
    *,
    workload: Workload,
    capped: str = "",
) -> Decision:
    """The rollback decision for the Deployment as it is now, with its ReplicaSets.

    now: this process's wall clock, only written down (the ledger's `at`), never compared here.
    measured: how long the operator has seen the current template make no progress under a
    condition carried over from an earlier one (the controller keeps it until it sees progress).
    sources: what says the rollout failed, asked in order: the first failure one of them sees stands for
    the rest (a fast signal of the current template's pods, autorollback.io/fail-on, judged by the
    shell: `[signals.base.Judged(failure), ControllerDeadline()]`; the controller's condition alone
    by default).
    workload: the adapter of its kind (workloads.KINDS), chosen by the shell.
    capped: why no more metric-triggered rollbacks are allowed now (the shell's checks.cap): a failure
    that would be rolled back is reported instead."""
    facts = Facts(deployment, replicasets, adapter=workload)
    shown = classify.what_is_shown(facts, sources)
    if not config.enabled:
        return nothing(Reason.OPTED_OUT, f"the {workload.kind} is not opted in", shown.failure)
    if workload.on_delete(deployment):  # whatever source says it failed (a metric check, too)
        return nothing(
            Reason.UNSUPPORTED,
            f"the {workload.kind}'s updateStrategy is OnDelete: it is never rolled back",
            shown.failure,
        )
    standing = classify.standing_failure(facts, shown, measured)
    if isinstance(standing, Decision):
        return standing
    refused = guards.refusal(deployment, standing, config.dry_run, workload)
    if refused is not None:
        return refused
    return plan.rollback(deployment, standing, config.dry_run, now, workload, capped)
