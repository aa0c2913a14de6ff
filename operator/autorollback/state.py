"""What the operator remembers about each Deployment, and what a watch event asks it to do.

Pure and bounded: one small record per live Deployment that mentions autorollback, holding the
last thing done per concern (never a growing set), dropped when the Deployment is deleted or
no longer listed. Memory only saves API calls: everything here can be lost (restart,
failover) because the decisions rest on what is recorded in the cluster.
"""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from autorollback import decision, times
from autorollback.checks.alerts import ALERTS
from autorollback.checks.schedule import Running
from autorollback.checks.templates import CHECKS
from autorollback.config import Config
from autorollback.decision import stuck
from autorollback.signals import core as signals
from autorollback.vocab import Job
from autorollback.workloads.base import Workload

FAILURE = Job.FAILURE  # the name tests/e2e/test_concurrency.py hands a job by

OBSERVED = "observed"  # the Clocks group: when this process first saw a ProgressDeadlineExceeded


def digest(value: str) -> str:
    return hashlib.sha256(value.encode(errors="replace")).hexdigest()[:16]


def template_digest(deployment: dict[str, Any]) -> str:
    return digest(json.dumps((deployment.get("spec") or {}).get("template"), sort_keys=True))


def _failure_state(workload: dict[str, Any], adapter: Workload) -> str:
    """The failure the controller shows, or the rollout under way it will never time out (which the
    operator times itself), over the current template."""
    f = adapter.failure(workload)
    if f is not None:
        ident = f.id
    else:  # no condition will ever say the rollout failed: the operator measures the deadline
        ident = adapter.unfinished(workload)
        if not ident:
            return ""
    # The template too: after a rollback the same condition stands over another template, whose
    # progress (or lack of it) must be watched.
    return f"{ident}|template={template_digest(workload)}"


def failure_key(workload: dict[str, Any], config: Config, adapter: Workload) -> str:
    """What a failure's handling depends on: the failure itself, and the settings that defer it."""
    failure = _failure_state(workload, adapter)
    if not failure:
        return ""
    return f"{failure}|paused={adapter.paused(workload)}|dry_run={config.dry_run}|enabled={config.enabled}"


def stale_key(workload: dict[str, Any], adapter: Workload) -> str:
    """What the deadline autorollback measures itself runs over: the failure's state and the progress
    counts (any change restarts it, as progress restarts the controller's); not the settings."""
    return f"{_failure_state(workload, adapter)}|progress={adapter.progress(workload)}"


def fast_key(workload: dict[str, Any], config: Config, adapter: Workload) -> str:
    """What a fast verdict depends on besides the pods: the template, the status, the settings."""
    return digest(
        json.dumps(
            [
                (workload.get("spec") or {}).get("template"),
                workload.get("status"),
                sorted(config.fail_fast.signals),
                config.fail_fast.restarts,
                config.fail_fast.grace,
                config.dry_run,
                adapter.paused(workload),
            ],
            sort_keys=True,
        )
    )


def completion_key(workload: dict[str, Any], adapter: Workload) -> str:
    """One completed rollout: its revision (a Deployment's ReplicaSet) and the controller's word on it
    (kept while it stays complete), and the rollout's revision and template (under a leftover
    condition, another rollout, or the same template restored, completes with the same condition)."""
    return (
        f"{adapter.completed(workload)} {adapter.completion_token(workload)} "
        f"{adapter.rollout_revision(workload)} {template_digest(workload)}"
    )


def rollout_key(workload: dict[str, Any], adapter: Workload) -> str:
    """One rollout onto a template: the revision the controller gave it and the template itself.
    Not the Progressing condition: when a template returns to an existing ReplicaSet, the controller
    may keep the earlier "successfully progressed" condition for as long as it sees no progress."""
    return f"{adapter.rollout_revision(workload)} {template_digest(workload)}"


def bake_key(workload: dict[str, Any], config: Config, adapter: Workload) -> str:
    """What a bake's end depends on: the rollout, and the settings that defer a failure it found."""
    return f"{rollout_key(workload, adapter)}|paused={adapter.paused(workload)}|dry_run={config.dry_run}"


def stuck_key(workload: dict[str, Any]) -> str:
    """What finishing a StatefulSet's rollback depends on (decision.stuck): the rollback, and the
    status the controller writes as pods go, come back and become Ready ("" when there is none)."""
    entry = stuck.rollback_pending(workload)
    if entry is None:
        return ""
    s = workload.get("status") or {}
    counts = [s.get(k) for k in ("observedGeneration", "replicas", "readyReplicas", "updatedReplicas")]
    return digest(json.dumps([entry.id, s.get("updateRevision"), counts]))


@dataclass(frozen=True)
class HistoryRead:
    """A bake's last read of its workload's history objects (or pods)."""

    version: str  # the workload's resourceVersion then
    at: float  # monotonic
    objects: list[dict[str, Any]]


@dataclass
class BakeSlot:
    """The bake in progress in this process (shared with the worker that runs it, as the clocks are),
    its last read of the history, and the digest of what was last said about the checks' annotations."""

    running: Running | None = None
    said: str = ""
    history: HistoryRead | None = None
    pods: HistoryRead | None = None  # the metadata of its pods, read for an evaluation


@dataclass
class Remembered:
    """What the operator remembers about one Deployment (kopf's `memo` is another thing)."""

    namespace: str
    name: str
    body: dict[str, Any] | None = None  # the latest state the watch delivered
    enabled: bool = False
    failure_done: str = ""  # failure_key() last dealt with
    healthy_done: str = ""  # completion_key() of the last completion marked
    healthy_evidence: tuple[str, dict[str, Any]] | None = None  # (ReplicaSet, the state that showed it complete)
    known_bad_done: str = ""  # rollout_key() last checked for a known-bad template
    history_done: int | None = None  # revisionHistoryLimit last warned about
    on_delete_done: int | None = None  # the generation whose OnDelete strategy was last warned about
    problems_done: dict[str, str] = field(default_factory=dict)  # annotation key -> digest of the value reported
    api_failure_reported: str = ""  # failure_key() whose API trouble was already told in an Event
    clocks: times.Clocks = field(default_factory=times.Clocks)  # what this process times itself (monotonic)
    series: set[tuple[str, ...]] = field(default_factory=set)  # per-Deployment metric label values in use
    pods_seen: int = 0  # pod watch events for this Deployment so far
    fast_done: tuple[int, str] = (-1, "")  # (pods_seen, fast_key()) last judged with no grace period running
    adapter: Workload = field(kw_only=True)  # the adapter of its kind (workloads.KINDS), set by the handler
    bake_done: str = ""  # rollout_key() whose bake ended (or that has none)
    stuck_done: str = ""  # stuck_key() last dealt with (a StatefulSet's rollback finished, or waited on)
    bake: BakeSlot = field(default_factory=BakeSlot)

    def jobs(self, deployment: dict[str, Any], config: Config) -> set[Job]:
        """What this state of the Deployment asks for, given what was done already."""
        todo: set[Job] = set()
        if {p.key: digest(p.value) for p in config.problems} != self.problems_done and config.problems:
            todo.add(Job.PROBLEMS)
        if not config.enabled:
            return todo
        key = failure_key(deployment, config, self.adapter)
        if key and key != self.failure_done:
            todo.add(Job.FAILURE)
        if (
            signals.watched(deployment, config.fail_fast, self.adapter)
            and (self.pods_seen, fast_key(deployment, config, self.adapter)) != self.fast_done
        ):
            todo.add(Job.FAST)
        if self.healthy_evidence is not None:
            todo.add(Job.HEALTHY)
        if self.adapter.observed(deployment) and rollout_key(deployment, self.adapter) != self.known_bad_done:
            todo.add(Job.KNOWN_BAD)  # a rollout onto another template: is it one rolled back from?
        if (
            {CHECKS, ALERTS} & set((deployment.get("metadata") or {}).get("annotations") or {})
            and self.adapter.observed(deployment)
            and bake_key(deployment, config, self.adapter) != self.bake_done
        ):
            todo.add(Job.BAKE)  # metric checks on this rollout: until its bake ends
        if (
            self.adapter.kind == stuck.KIND
            and not config.dry_run
            and stuck.enabled((deployment.get("metadata") or {}).get("annotations"))
            and stuck_key(deployment) not in ("", self.stuck_done)
        ):
            todo.add(Job.STUCK)  # a StatefulSet's rollback observed: is it stuck on a broken pod?
        if decision.stray_marks(deployment):
            todo.add(Job.STRAYS)
        if self.adapter.on_delete(deployment) and deployment["metadata"].get("generation") != self.on_delete_done:
            todo.add(Job.ON_DELETE)
        limit = (deployment.get("spec") or {}).get("revisionHistoryLimit")
        if decision.history_too_short(deployment) and limit != self.history_done:
            todo.add(Job.HISTORY_LIMIT)
        return todo

    def observe(self, deployment: dict[str, Any], config: Config) -> set[Job]:
        """Take a watch event's state; return the jobs it asks for."""
        self.enabled = config.enabled
        self.body = deployment
        failure = self.adapter.failure(deployment) if config.enabled else None
        if failure is not None:  # reaction_seconds counts from here: when this process first saw it (one kept)
            self.clocks.track(OBSERVED, [failure.id], times.monotonic())
        if not config.problems:
            self.problems_done = {}
        completed = self.adapter.completed(deployment) if config.enabled else ""
        if completed and completion_key(deployment, self.adapter) != self.healthy_done:
            # Evidence is kept with the state that showed it: by the time a worker gets to it,
            # the next release may have begun, and "complete" is a moment, not a lasting state.
            self.healthy_evidence = (completed, deployment)
        return self.jobs(deployment, config)


@dataclass(slots=True)
class RememberedUpdate:
    """What one pass tells the memo it did (None: unchanged). A field that is not here is a TypeError
    or an AttributeError, never a silently new attribute."""

    failure_done: str | None = None
    fast_done: tuple[int, str] | None = None
    healthy_done: str | None = None
    healthy_evidence: tuple[str, dict[str, Any]] | None = None  # dealt with: cleared unless newer came meanwhile
    known_bad_done: str | None = None
    history_done: int | None = None  # the job runs only when the limit is set (history_too_short)
    on_delete_done: int | None = None
    problems_done: dict[str, str] | None = None
    api_failure_reported: str | None = None
    bake_done: str | None = None
    stuck_done: str | None = None

    def apply(self, memo: Remembered) -> None:
        if self.failure_done is not None:
            memo.failure_done = self.failure_done
        if self.fast_done is not None:
            memo.fast_done = self.fast_done
        if self.healthy_done is not None:
            memo.healthy_done = self.healthy_done
        if self.healthy_evidence is not None and memo.healthy_evidence is self.healthy_evidence:
            memo.healthy_evidence = None
        if self.known_bad_done is not None:
            memo.known_bad_done = self.known_bad_done
        if self.history_done is not None:
            memo.history_done = self.history_done
        if self.on_delete_done is not None:
            memo.on_delete_done = self.on_delete_done
        if self.problems_done is not None:
            memo.problems_done = self.problems_done
        if self.api_failure_reported is not None:
            memo.api_failure_reported = self.api_failure_reported
        if self.bake_done is not None:
            memo.bake_done = self.bake_done
        if self.stuck_done is not None:
            memo.stuck_done = self.stuck_done


@dataclass
class Memory:
    memos: dict[str, Remembered] = field(default_factory=dict)  # uid -> memo

    def get(self, uid: str, namespace: str, name: str, adapter: Workload) -> Remembered:
        memo = self.memos.get(uid)
        if memo is None:
            memo = self.memos[uid] = Remembered(namespace, name, adapter=adapter)
        return memo

    def forget(self, uid: str) -> Remembered | None:
        return self.memos.pop(uid, None)

    def opted_in(self, kind: str, namespace: str) -> int:
        """The opted-in workloads of one kind (Workload.kind) in one namespace."""
        return sum(1 for m in self.memos.values() if m.enabled and m.adapter.kind == kind and m.namespace == namespace)
