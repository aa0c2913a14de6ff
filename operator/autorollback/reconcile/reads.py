"""Consistent reads: the Deployment and its ReplicaSets as they were at one moment, and whether the
Deployment is still at the state a decision was made on."""

import time
from typing import Any

from autorollback import kube
from autorollback.reconcile.work import Work

CONSISTENT_READS = 10  # tries at reading the Deployment unchanged around the list of its ReplicaSets


class Unsettled(Exception):
    """No consistent read could be had: the Deployment kept changing. Not an API error."""


def read(work: Work, wait_observed: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The Deployment and its ReplicaSets as they were at one moment (None: deleted): the Deployment
    read before and after the list of ReplicaSets, unchanged in between.

    wait_observed: first give the controller a moment to look at the latest generation (it does
    within milliseconds): before that, the status does not say whether a failure stands."""
    waits, reads = (20 if wait_observed else 0), 0
    while reads < CONSISTENT_READS:
        before = _get(work)
        if before is None:
            return None
        if waits and not work.workload.observed(before):
            waits -= 1
            time.sleep(0.1)
            continue
        replicasets = work.api.history(before)
        after = _get(work)
        if after is None:
            return None
        if _version(after) == _version(before):
            return after, replicasets
        reads += 1
    raise Unsettled(f"the {work.workload.kind} changed during each of {CONSISTENT_READS} reads")


def unchanged(work: Work, deployment: dict[str, Any]) -> bool | None:
    """Whether the Deployment is still at this state (None: it is gone)."""
    current = _get(work)
    return None if current is None else _version(current) == _version(deployment)


def _version(deployment: dict[str, Any]) -> str:
    return deployment["metadata"]["resourceVersion"]


def _get(work: Work) -> dict[str, Any] | None:
    """The Deployment now (None: deleted, or replaced by another of the same name)."""
    try:
        deployment = work.api.get(work.namespace, work.name)
    except kube.ApiError as e:
        if e.status == 404:
            return None
        raise
    return deployment if deployment["metadata"].get("uid") == work.uid else None
