"""Deadline sources: the controller's progress deadline, and the one autorollback measures when
the controller will not time a rollout out (a leftover condition). Pure."""

from dataclasses import dataclass

from autorollback.signals.base import Facts, Verdict
from autorollback.workloads.base import DEADLINE_EXCEEDED, Failure


class ControllerDeadline:
    """The controller's verdict: Progressing=False, ProgressDeadlineExceeded."""

    def verdict(self, facts: Facts) -> Verdict | None:
        failure = facts.kind.failure(facts.workload)
        return Verdict(failure) if failure is not None else None


@dataclass(frozen=True)
class MeasuredDeadline:
    """progressDeadlineSeconds without progress, as this process measured it (decision.Measured);
    `shown`: what the controller's condition still shows instead."""

    seconds: float
    since: str
    shown: str

    def verdict(self, facts: Facts) -> Verdict | None:
        kind = facts.kind
        current = kind.current(kind.revisions(facts.history), kind.template(facts.workload))
        deadline = kind.deadline_seconds(facts.workload)
        if current is None or self.seconds < deadline:
            return None
        return Verdict(
            Failure(
                replicaset=current.name,
                reason=DEADLINE_EXCEEDED,
                revision=current.number,
                updated=self.since,
                measured=True,
                message=(
                    f"ReplicaSet {current.name} made no progress for {deadline}s (measured by autorollback: the "
                    f"controller still shows {self.shown} and will not time this rollout out)"
                ),
            )
        )
