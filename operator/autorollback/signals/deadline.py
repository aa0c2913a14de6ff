"""Deadline sources: the controller's progress deadline, and the one autorollback measures when
the controller will not time a rollout out (a Deployment's leftover condition; a kind whose controller
reports no failed rollout). Pure."""

from dataclasses import dataclass

from autorollback.signals.base import Facts, Verdict
from autorollback.workloads.base import DEADLINE_EXCEEDED, Failure, history_object


class ControllerDeadline:
    """The controller's verdict: Progressing=False, ProgressDeadlineExceeded."""

    def verdict(self, facts: Facts) -> Verdict | None:
        failure = facts.adapter.failure(facts.workload)
        return Verdict(failure) if failure is not None else None


@dataclass(frozen=True)
class MeasuredDeadline:
    """The kind's deadline (Workload.deadline_seconds) without progress, as this process measured it
    (decision.Measured); `shown`: what the controller's condition still shows instead ("": the kind's
    controller reports no failed rollout at all)."""

    seconds: float
    since: str
    shown: str

    def verdict(self, facts: Facts) -> Verdict | None:
        adapter = facts.adapter
        current = adapter.current(adapter.revisions(facts.history), adapter.template(facts.workload))
        deadline = adapter.deadline_seconds(facts.workload)
        if current is None or self.seconds < deadline:
            return None
        return Verdict(
            Failure(
                revision_name=current.name,
                reason=DEADLINE_EXCEEDED,
                revision=current.number,
                updated=self.since,
                measured=True,
                message=(
                    f"{history_object(adapter.kind)} {current.name} made no progress for {deadline}s (measured by "
                    "autorollback: the "
                    f"controller still shows {self.shown} and will not time this rollout out)"
                    if self.shown
                    else (
                        f"{adapter.kind} revision {current.name} made no progress for {deadline}s (measured by "
                        f"autorollback: the {adapter.kind} controller never times a rollout out)"
                    )
                ),
            )
        )
