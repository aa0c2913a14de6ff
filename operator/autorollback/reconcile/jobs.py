"""One pass over a Deployment: runs the jobs its state asks for, in order, and merges what they did
into one PassResult; an API error worth another try sends the work back to the queue."""

from dataclasses import dataclass
from typing import Any

from autorollback import decision, kube, retry, state, telemetry, times, vocab
from autorollback.config import parse as parse_config
from autorollback.reconcile import attempt, bake, measure, recovery, report, stuck, upkeep
from autorollback.reconcile.reads import Unsettled
from autorollback.reconcile.work import PassResult, Work, log, who
from autorollback.signals import core as signals
from autorollback.signals.base import Facts
from autorollback.vocab import Job, Reason
from autorollback.workloads.base import Failure


def run(work: Work) -> PassResult:
    result = PassResult()
    for job, fn in (
        (Job.PROBLEMS, upkeep.problems),
        (Job.HISTORY_LIMIT, upkeep.history_limit),
        (Job.ON_DELETE, upkeep.on_delete),
        (Job.KNOWN_BAD, upkeep.known_bad),
        (Job.HEALTHY, recovery.healthy),
        (Job.FAILURE, _failure),
        (Job.FAST, _fast),
        (Job.BAKE, bake.bake),
        (Job.STUCK, stuck.finish),
        (Job.STRAYS, upkeep.strays),
    ):
        if job not in work.jobs:
            continue
        try:
            fn(work, result)
        except Unsettled as e:
            log.info(
                "the workload kept changing while it was read; looking again shortly",
                job=job,
                message=str(e),
                **who(work),
            )
            result.recheck(1.0)
        except kube.ApiError as e:
            telemetry.api_errors.labels(job, str(e.status)).inc()
            if retry.retryable(e.status):
                log.warning("API error, will try again", job=job, error=str(e), **who(work))
                result.retry = e
            else:
                log.error("API error that another try cannot fix; giving up on it", job=job, error=str(e), **who(work))
    return result


def _failure(work: Work, result: PassResult) -> None:
    """The Progressing condition's failure, and the measured deadline's clock."""
    outcome = attempt.rollback(work, result, None)
    if outcome is None:
        return
    _tell(work, outcome, result)
    deployment, replicasets = outcome.snapshot.deployment, outcome.snapshot.replicasets
    if outcome.decision.reason == Reason.STALE:  # the restored template may never progress: look again until it does
        measure.keep_timing(work, result, deployment, replicasets, outcome.measured, outcome.starting)
        return
    holder = decision.checkpoint_holder(replicasets, deployment["spec"]["template"], work.workload)
    measure.ended(work, holder.name if holder else "", holder.value if holder else "")
    result.done.failure_done = state.failure_key(
        deployment, parse_config(deployment["metadata"].get("annotations"), work.workload.kind), work.workload
    )


def _fast(work: Work, result: PassResult) -> None:
    """A fast failure signal of the new pods: decided and carried out like a deadline failure."""
    if result.patched:
        return  # the template changed under these pods: the next pass judges the new one
    seen = (work.pods_seen, state.fast_key(work.deployment, work.config, work.workload))
    signal = _PodSignal(work, result)
    outcome = attempt.rollback(work, result, signal)
    if outcome is not None:
        _tell(work, outcome, result)
    if not signal.grace_running:
        result.done.fast_done = seen


@dataclass
class _PodSignal:
    """The pods' verdict on each state decided on; a grace still running asks for another look."""

    work: Work
    result: PassResult
    grace_running: bool = False

    def __call__(self, deployment: dict[str, Any], replicasets: list[dict[str, Any]]) -> Failure | None:
        source = signals.PodSignals(
            parse_config(deployment["metadata"].get("annotations"), self.work.workload.kind).fail_fast
        )
        verdict = source.verdict(
            Facts(
                deployment,
                replicasets,
                self.work.pods,
                self.work.clocks,
                times.monotonic(),
                adapter=self.work.workload,
            )
        )
        if verdict.recheck_in is not None:
            self.grace_running = True
            self.result.recheck(verdict.recheck_in + 0.05)
        return verdict.failure


def _tell(work: Work, outcome: attempt.Outcome, result: PassResult) -> None:
    d = outcome.decision
    if d.result != vocab.Result.NOTHING:
        report.report(work, outcome.snapshot.deployment, d, result)
    else:
        log.debug("nothing to do about the failure", reason=d.reason, message=d.message, **who(work))
