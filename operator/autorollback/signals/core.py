"""Is the rollout in progress plainly broken, judging by its new pods? Pure: no I/O.

Only the rollout in progress counts: pods of the current template's ReplicaSet (its
`pod-template-hash`) while that ReplicaSet has not completed a rollout. Old ReplicaSets' pods,
completed rollouts and Deployments without autorollback.io/fail-on never trigger.
"""
import datetime as dt
from dataclasses import dataclass
from typing import Any

from autorollback import history, rollout, times
from autorollback.annotations import FailFast, shown

HASH = "pod-template-hash"
PULL = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
CREATE = {"CreateContainerConfigError": "CreateContainerConfigError", "CreateContainerError": "CreateContainerError",
          "RunContainerError": "CreateContainerError"}
SHOWN_TERMINATION = 200  # characters of a container's last termination message


@dataclass(frozen=True)
class Verdict:
    failure: rollout.Failure | None = None
    recheck_in: float | None = None  # seconds until a grace period runs out (look again then)


def completed(deployment: dict[str, Any]) -> str:
    """The ReplicaSet whose rollout the controller declared complete ("" while one is under way).
    Pods that stop being available later do not reopen it: that is not a rollout failing."""
    c = rollout.condition(deployment, "Progressing")
    if not rollout.observed(deployment) or c.get("reason") != rollout.COMPLETE:
        return ""
    return rollout.named_replicaset(c.get("message", ""))


def watched(deployment: dict[str, Any], fail_fast: FailFast) -> bool | None:
    """Whether the Deployment's pods are worth watching: fail-on set and a rollout under way, not
    paused. None while the controller has not looked at the latest spec (an HPA scaling, say): keep
    whatever was decided before."""
    if not fail_fast.signals or rollout.paused(deployment):
        return False
    if not rollout.observed(deployment):
        return None
    if not rollout.condition(deployment, "Progressing"):  # no progress deadline: no condition at all
        return not rollout.completed_replicaset(deployment)
    return not completed(deployment)


def judge(fail_fast: FailFast, deployment: dict[str, Any], replicasets: list[dict[str, Any]],
          pods: list[dict[str, Any]], now: dt.datetime) -> Verdict:
    """evaluate() for the ReplicaSet the controller treats as the current template's."""
    new = history.current(history.revisions(replicasets), deployment["spec"]["template"])
    rs = next((r for r in replicasets if new is not None and r["metadata"]["name"] == new.name), None)
    return evaluate(fail_fast, deployment, rs, pods, now)


def evaluate(fail_fast: FailFast, deployment: dict[str, Any], new_rs: dict[str, Any] | None,
             pods: list[dict[str, Any]], now: dt.datetime) -> Verdict:
    """The first signal past its threshold, else when to look again. new_rs: the current template's ReplicaSet."""
    if not watched(deployment, fail_fast) or new_rs is None:
        return Verdict()
    meta = new_rs["metadata"]
    if completed(deployment) == meta["name"]:
        return Verdict()
    deadline = rollout.failure(deployment)
    if deadline is not None and deadline.replicaset == meta["name"]:
        return Verdict()  # timed out already: the deadline path has this rollout
    template_hash = (((new_rs.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels", {}).get(HASH)
    new_pods = [p for p in pods if template_hash and (p["metadata"].get("labels") or {}).get(HASH) == template_hash
                and not p["metadata"].get("deletionTimestamp")]
    due: list[float] = []
    for signal, at, message in _signals(fail_fast, new_rs, new_pods):
        if signal not in fail_fast.signals:
            continue
        wait = (at - now).total_seconds()
        if wait <= 0:
            return Verdict(rollout.Failure(
                replicaset=meta["name"], reason=signal, message=shown(message, rollout.SHOWN_MESSAGE),
                updated=_began(new_rs, new_pods), revision=rollout.revision_of(new_rs) or 0))
        due.append(wait)
    return Verdict(recheck_in=min(due) if due else None)


def _began(rs: dict[str, Any], pods: list[dict[str, Any]]) -> str:
    """When this rollout onto the ReplicaSet began, as the API recorded it: its oldest live pod's
    creation (a re-applied template gets new pods, so a new failure id), else the ReplicaSet's
    ReplicaFailure condition, else the ReplicaSet's creation. The same whichever signal shows first."""
    stamps = [p["metadata"].get("creationTimestamp") or "" for p in pods]
    stamps += [c.get("lastTransitionTime") or "" for c in (rs.get("status") or {}).get("conditions") or []
               if c.get("type") == "ReplicaFailure"][:0 if stamps else 1]
    stamps = [t for t in stamps if times.parse(t) > times.NEVER]
    return min(stamps, key=times.parse) if stamps else rs["metadata"].get("creationTimestamp") or ""


def _signals(ff: FailFast, rs: dict[str, Any], pods: list[dict[str, Any]]):
    """(signal, when it counts, what to say) for everything wrong with the new ReplicaSet's pods."""
    grace = dt.timedelta(seconds=ff.grace)
    for c in (rs.get("status") or {}).get("conditions") or []:
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True" and c.get("reason") == "FailedCreate":
            yield ("FailedCreate", times.parse(c.get("lastTransitionTime")) + grace,
                   f"ReplicaSet {rs['metadata']['name']} cannot create pods: {c.get('message', '')}")
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        created = times.parse(pod["metadata"].get("creationTimestamp"))
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        scheduled = conditions.get("PodScheduled") or {}
        if (scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable"
                and not status.get("nominatedNodeName")):  # a preemption under way will place it
            yield ("Unschedulable", times.parse(scheduled.get("lastTransitionTime")) + grace,
                   f"pod {name} cannot be scheduled: {scheduled.get('message', '')}")
        # pulls and container creation start once the pod is on a node
        placed = max(created, times.parse(scheduled.get("lastTransitionTime"))) if scheduled.get("status") == "True" \
            else created
        statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
        for cs in statuses:
            restarts = cs.get("restartCount") or 0
            waiting = ((cs.get("state") or {}).get("waiting") or {})
            last = ((cs.get("lastState") or {}).get("terminated") or
                    (cs.get("state") or {}).get("terminated") or {})
            where = f"pod {name} container {cs.get('name')}"
            ended = (f"exit code {last.get('exitCode')}, reason {last.get('reason') or 'none'}"
                     + (f", message {shown(last['message'], SHOWN_TERMINATION)}" if last.get("message") else ""))
            if not cs.get("ready"):  # restarts of a container that is up and ready again are history
                if last.get("reason") == "OOMKilled" and restarts >= ff.restarts:
                    yield "OOMKilled", created, f"{where} was OOMKilled and restarted {restarts} times ({ended})"
                if restarts >= ff.restarts:
                    yield "CrashLoopBackOff", created, f"{where} restarted {restarts} times ({ended})"
                elif waiting.get("reason") == "CrashLoopBackOff" and restarts > 0:
                    yield ("CrashLoopBackOff", max(created, times.parse(last.get("finishedAt"))) + grace,
                           f"{where} is in CrashLoopBackOff after {restarts} restarts ({ended})")
            reason = waiting.get("reason")
            if reason in PULL:
                yield "ImagePullBackOff", placed + grace, f"{where}: {reason}: {waiting.get('message', '')}"
            if reason in CREATE:
                yield CREATE[reason], placed + grace, f"{where}: {reason}: {waiting.get('message', '')}"
        # NotReady: every container started (startup probes passed) yet the pod is not ready
        containers = status.get("containerStatuses") or []
        ready = conditions.get("ContainersReady") or conditions.get("Ready") or {}
        if (status.get("phase") == "Running" and containers and ready.get("status") == "False"
                and all("running" in (cs.get("state") or {}) and cs.get("started", True) for cs in containers)):
            started = max([times.parse(ready.get("lastTransitionTime")), times.parse(status.get("startTime")),
                           *(times.parse(cs["state"]["running"].get("startedAt")) for cs in containers)])
            yield "NotReady", started + grace, f"pod {name} is running but not Ready: {ready.get('message', '')}"
