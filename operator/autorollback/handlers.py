"""kopf handlers: a few lines each that gather facts, ask the core, and apply its answer.

Only @kopf.on.event: it writes nothing onto Deployments (no kopf annotations, no finalizers).
"""
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import kopf

from autorollback import annotations, health, logs, metrics, rollback, rollout

registry = kopf.OperatorRegistry()
log = logs.get(__name__)


@dataclass
class State:
    freshness: health.Freshness
    health: tuple[bool, str] = (True, "starting")
    opted_in: dict[str, str] = field(default_factory=dict)  # uid -> namespace
    reported: set[tuple[str, str, str]] = field(default_factory=set)  # (uid, key, bad value)
    # (uid, failure's lastTransitionTime, paused, dry-run): failures already dealt with in that state
    handled: set[tuple[str, str, bool, bool]] = field(default_factory=set)
    proven: set[tuple[str, int]] = field(default_factory=set)  # (uid, generation) marked healthy
    started: set[tuple[str, int]] = field(default_factory=set)  # (uid, generation) rollouts checked

    def forget(self, uid: str, namespace: str) -> None:
        self.count_opted_in(uid, namespace, False)
        self.reported = {r for r in self.reported if r[0] != uid}
        self.handled = {h for h in self.handled if h[0] != uid}
        self.proven = {p for p in self.proven if p[0] != uid}
        self.started = {p for p in self.started if p[0] != uid}

    def count_opted_in(self, uid: str, namespace: str, enabled: bool) -> None:
        if enabled == (uid in self.opted_in):
            return  # most watch events change nothing here
        if enabled:
            self.opted_in[uid] = namespace
        else:
            del self.opted_in[uid]
        metrics.opted_in.labels(namespace).set(sum(1 for ns in self.opted_in.values() if ns == namespace))


def _report_problems(state: State, deployment: dict[str, Any], config: annotations.Config) -> None:
    uid = deployment["metadata"]["uid"]
    for p in config.problems:
        if (uid, p.key, p.value) in state.reported:
            continue
        state.reported.add((uid, p.key, p.value))
        meta = deployment["metadata"]
        metrics.invalid_annotations.labels(meta["namespace"], meta["name"], p.key).inc()
        log.warning("invalid annotation", key=p.key, value=p.value, message=p.message(),
                    namespace=meta["namespace"], deployment=meta["name"])
        rollback.post(deployment, "Warning", "InvalidAnnotation", p.message())


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_via_client(**kwargs)


@kopf.on.event("apps", "v1", "deployments", registry=registry)
async def deployment_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    state: State = memo.state
    meta = body.metadata
    metrics.watch_events.inc()
    state.freshness.observe(meta.uid, meta.get("resourceVersion", ""), time.monotonic(), deleted=type == "DELETED")
    if type == "DELETED":
        state.forget(meta.uid, meta.namespace)
        return
    config = annotations.parse(meta.annotations)
    state.count_opted_in(meta.uid, meta.namespace, config.enabled)
    if not annotations.mentioned(meta.annotations):
        return
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", **dict(body)}
    if config.problems:
        await asyncio.to_thread(_report_problems, state, deployment, config)
    if not config.enabled:
        return
    generation = (meta.uid, meta.get("generation", 0))
    if rollout.failure(deployment):
        await asyncio.to_thread(rollback.handle_failure, deployment, config, state.handled)
    elif rollout.complete(deployment):
        if generation not in state.proven:
            await asyncio.to_thread(rollback.note_complete, deployment)
            state.proven.add(generation)
    elif generation not in state.started:
        state.started.add(generation)
        await asyncio.to_thread(rollback.warn_if_known_bad, deployment)
