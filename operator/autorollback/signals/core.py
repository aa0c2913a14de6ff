"""Is the rollout in progress plainly broken, judging by its new pods? Pure: no I/O.

Only the rollout in progress counts: pods of the current template's ReplicaSet (its
`pod-template-hash`) while that ReplicaSet has not completed a rollout. Old ReplicaSets' pods,
completed rollouts and Deployments without autorollback.io/fail-on never trigger.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from autorollback import ledger, times
from autorollback.config import FailFast, shown
from autorollback.signals.base import Facts, Verdict
from autorollback.workloads.base import SHOWN_MESSAGE, Failure, Workload, rollout_over

PULL = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
CREATE = {
    "CreateContainerConfigError": "CreateContainerConfigError",
    "CreateContainerError": "CreateContainerError",
    "RunContainerError": "CreateContainerError",
}
SHOWN_TERMINATION = 200  # characters of a container's last termination message


def watched(workload: dict[str, Any], fail_fast: FailFast, adapter: Workload) -> bool | None:
    """Whether the workload's pods are worth watching: fail-on set and a rollout under way, not
    paused (Workload.rollout_in_progress). None while the controller has not looked at the latest
    spec (an HPA scaling, say): keep whatever was decided before."""
    if not fail_fast.signals:
        return False
    return adapter.rollout_in_progress(workload)


@dataclass(frozen=True)
class PodSignals:
    """The verdict source of the fast signals (autorollback.io/fail-on) of the rollout in progress."""

    fail_fast: FailFast

    def verdict(self, facts: Facts) -> Verdict:
        assert facts.clocks is not None, "graces are timed on the workload's clocks"
        return judge(self.fail_fast, facts.workload, facts.history, facts.pods, facts.clocks, facts.now, facts.adapter)


def judge(
    fail_fast: FailFast,
    deployment: dict[str, Any],
    replicasets: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    clocks: times.Clocks,
    now: float,
    workload: Workload,
) -> Verdict:
    """evaluate() for the ReplicaSet the controller treats as the current template's."""
    entries = ledger.of([deployment, *replicasets])
    new = workload.update_revision(deployment, workload.revisions(replicasets, entries))
    if rollout_over(workload, deployment, new):
        clocks.forget(GRACES)
        return Verdict()  # its rollout completed: a pod that fails since is no failed rollout
    rs = next((r for r in replicasets if new is not None and r["metadata"]["name"] == new.name), None)
    return evaluate(fail_fast, deployment, rs, pods, clocks, now, workload)


GRACES = "fast"  # the Clocks group of the fast signals' graces


def evaluate(
    fail_fast: FailFast,
    deployment: dict[str, Any],
    new_rs: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    clocks: times.Clocks,
    now: float,
    workload: Workload,
) -> Verdict:
    """The first signal past its threshold, else when to look again. new_rs: the current template's ReplicaSet.

    A grace runs on this process's monotonic clock (now) from when it first saw that state
    (clocks), never from a kubelet's or the API server's timestamp: those are compared with nothing
    but each other. A state that ends and comes back is timed anew; after a restart, from the restart."""
    if not watched(deployment, fail_fast, workload) or new_rs is None:
        clocks.forget(GRACES)
        return Verdict()  # no rollout under way (one declared complete is not failing)
    meta = new_rs["metadata"]
    deadline = workload.failure(deployment)
    if deadline is not None and deadline.revision_name == meta["name"]:
        clocks.forget(GRACES)
        return Verdict()  # timed out already: the deadline path has this rollout
    new_pods = workload.pods_of(new_rs, pods)
    found = [s for s in _signals(fail_fast, new_rs, new_pods) if s.signal in fail_fast.signals]
    lasted = clocks.track(GRACES, [s.key for s in found if s.graced], now)
    due: list[float] = []
    for s in found:
        wait = fail_fast.grace - lasted[s.key] if s.graced else 0.0
        if wait <= 0:
            return Verdict(
                Failure(
                    revision_name=meta["name"],
                    reason=s.signal,
                    message=shown(s.message, SHOWN_MESSAGE),
                    updated=_began(new_rs, new_pods),
                    revision=workload.revision_of(new_rs) or 0,
                )
            )
        due.append(wait)
    return Verdict(recheck_in=min(due) if due else None)


@dataclass(frozen=True)
class SignalShown:
    """A signal a pod (or the ReplicaSet) shows now. key names that state (the pod's uid, the
    container, and the kubelet's or scheduler's own timestamps that tell one episode from the next):
    an identity, never a time compared with this process's clock."""

    signal: str
    key: str
    graced: bool  # counts once it has lasted the grace; else at once
    message: str


def _began(rs: dict[str, Any], pods: list[dict[str, Any]]) -> str:
    """When this rollout onto the ReplicaSet began, as the API recorded it: its oldest live pod's
    creation (a re-applied template gets new pods, so a new failure id), else the ReplicaSet's
    ReplicaFailure condition, else the ReplicaSet's creation. The same whichever signal shows first."""
    stamps = [p["metadata"].get("creationTimestamp") or "" for p in pods]
    stamps += [
        c.get("lastTransitionTime") or ""
        for c in (rs.get("status") or {}).get("conditions") or []
        if c.get("type") == "ReplicaFailure"
    ][: 0 if stamps else 1]
    stamps = [t for t in stamps if times.parse(t) > times.NEVER]
    return min(stamps, key=times.parse) if stamps else rs["metadata"].get("creationTimestamp") or ""


def _signals(ff: FailFast, rs: dict[str, Any], pods: list[dict[str, Any]]) -> Iterator["SignalShown"]:
    """Everything wrong with the new ReplicaSet's pods, as SignalShown states."""
    for c in (rs.get("status") or {}).get("conditions") or []:
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True" and c.get("reason") == "FailedCreate":
            yield SignalShown(
                "FailedCreate",
                f"FailedCreate {rs['metadata']['name']} {c.get('lastTransitionTime')}",
                True,
                f"ReplicaSet {rs['metadata']['name']} cannot create pods: {c.get('message', '')}",
            )
    for pod in pods:
        name = pod["metadata"]["name"]
        uid = pod["metadata"].get("uid") or name
        status = pod.get("status") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        scheduled = conditions.get("PodScheduled") or {}
        if (
            scheduled.get("status") == "False"
            and scheduled.get("reason") == "Unschedulable"
            and not status.get("nominatedNodeName")
        ):  # a preemption under way will place it
            yield SignalShown(
                "Unschedulable",
                f"Unschedulable {uid} {scheduled.get('lastTransitionTime')}",
                True,
                f"pod {name} cannot be scheduled: {scheduled.get('message', '')}",
            )
        statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
        for cs in statuses:
            restarts = cs.get("restartCount") or 0
            waiting = (cs.get("state") or {}).get("waiting") or {}
            last = (cs.get("lastState") or {}).get("terminated") or (cs.get("state") or {}).get("terminated") or {}
            where = f"pod {name} container {cs.get('name')}"
            container = f"{uid} {cs.get('name')}"
            ended = f"exit code {last.get('exitCode')}, reason {last.get('reason') or 'none'}" + (
                f", message {shown(last['message'], SHOWN_TERMINATION)}" if last.get("message") else ""
            )
            if not cs.get("ready"):  # restarts of a container that is up and ready again are history
                if last.get("reason") == "OOMKilled" and restarts >= ff.restarts:
                    yield SignalShown(
                        "OOMKilled",
                        f"OOMKilled {container}",
                        False,
                        f"{where} was OOMKilled and restarted {restarts} times ({ended})",
                    )
                if restarts >= ff.restarts:
                    yield SignalShown(
                        "CrashLoopBackOff",
                        f"CrashLoopBackOff {container}",
                        False,
                        f"{where} restarted {restarts} times ({ended})",
                    )
                elif waiting.get("reason") == "CrashLoopBackOff" and restarts > 0:
                    # each exit starts the grace again: the kubelet's time of the last exit tells them apart
                    yield SignalShown(
                        "CrashLoopBackOff",
                        f"CrashLoopBackOff {container} {restarts} {last.get('finishedAt')}",
                        True,
                        f"{where} is in CrashLoopBackOff after {restarts} restarts ({ended})",
                    )
            reason = waiting.get("reason")
            if reason in PULL:  # ErrImagePull and ImagePullBackOff alternate: one state
                yield SignalShown(
                    "ImagePullBackOff",
                    f"ImagePullBackOff {container}",
                    True,
                    f"{where}: {reason}: {waiting.get('message', '')}",
                )
            if reason in CREATE:
                yield SignalShown(
                    CREATE[reason],
                    f"{CREATE[reason]} {container}",
                    True,
                    f"{where}: {reason}: {waiting.get('message', '')}",
                )
        # NotReady: every container started (startup probes passed) yet the pod is not ready
        containers = status.get("containerStatuses") or []
        ready = conditions.get("ContainersReady") or conditions.get("Ready") or {}
        if (
            status.get("phase") == "Running"
            and containers
            and ready.get("status") == "False"
            and all("running" in (cs.get("state") or {}) and cs.get("started", True) for cs in containers)
        ):
            # a container started again, or the pod was Ready in between: a new episode
            starts = " ".join(f"{cs.get('name')}@{cs['state']['running'].get('startedAt')}" for cs in containers)
            yield SignalShown(
                "NotReady",
                f"NotReady {uid} {ready.get('lastTransitionTime')} {starts}",
                True,
                f"pod {name} is running but not Ready: {ready.get('message', '')}",
            )
