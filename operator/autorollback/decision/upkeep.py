"""Upkeep around the rollbacks: the healthy mark of a completed rollout, the marks kubectl undo
strays onto the Deployment, and warnings (a known-bad template rolled out again, a revision history
too short to roll back)."""

from typing import Any

from autorollback import history, ledger
from autorollback.decision.base import as_generation, revert_pr
from autorollback.decision.measured import NO_PROGRESS
from autorollback.decision.plan import HISTORY_NEEDED
from autorollback.decision.reports import restoring
from autorollback.gitrevert import core as gitcore
from autorollback.workloads.base import BAKE_FAILURES, Workload, history_object, images, template_of


def owned_replicaset(deployment: dict[str, Any], replicaset: dict[str, Any] | None) -> bool:
    refs = (replicaset or {}).get("metadata", {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") == deployment["metadata"]["uid"] for r in refs)


def healthy_mark(
    deployment: dict[str, Any], replicaset: dict[str, Any] | None, workload: Workload
) -> dict[str, str] | None:
    """The mark to write when the Deployment (as it was seen complete) completed its rollout on this
    ReplicaSet (as it is now); None: nothing to write. The mark names the revision that completed
    (the Deployment's, as seen complete: the ReplicaSet may have been reused by a later rollout
    since), the generation seen complete (status.observedGeneration) and the failure of that same
    revision it outlived.
    Before writing one that outlives a failure, the shell checks that the rollout is still complete
    (`outlives_failure`): a failure recorded after the completion was seen must not be outlived."""
    # the counts say the current template's pods are all there and available; the condition may
    # still name an earlier ReplicaSet (complete_left_over): the template tells which one completed
    if not (
        workload.completed(deployment)
        and replicaset
        and owned_replicaset(deployment, replicaset)
        and workload.same_template(template_of(workload, replicaset) or {}, workload.template(deployment))
    ):
        return None
    entries = ledger.parse((deployment["metadata"].get("annotations") or {}).get(ledger.KEY))
    rev = workload.revisions([replicaset], entries)
    if not rev:
        return None  # no revision number
    # the Deployment's number, as seen complete (the ReplicaSet may have been reused by a later rollout
    # since), but never above the ReplicaSet's own: the Deployment's annotation is anyone's to write
    # (a re-applied export), and a number too high would make every later failure look older
    number = min(workload.revision_of(deployment) or rev[0].number, rev[0].number)
    health = rev[0].health
    if (
        rev[0].healthy
        and not rev[0].restored_and_unproven
        and health is not None
        and not health.legacy
        and health.revision >= number
        and workload.covers(deployment, health)
    ):
        return None  # known healthy in this revision, since it last failed or was restored (and covering it)
    if rev[0].failed_in == number and rev[0].failed_reason in BAKE_FAILURES:
        return None  # its checks (or alerts) failed: completing does not outlive that
    outlived = rev[0].failure_id if rev[0].failed_in == number else ""
    seen = as_generation((deployment.get("status") or {}).get("observedGeneration"))
    return {
        history.HEALTHY_AT: history.bind(
            replicaset["metadata"]["name"],
            history.health_payload(number, outlived, seen, workload.partition(deployment)),
        )
    }


def outlives_failure(mark: dict[str, str]) -> bool:
    health = history.parse_health(mark[history.HEALTHY_AT].partition(" ")[2])
    return bool(health and health.outlived)


def still_complete(seen: dict[str, Any], now: dict[str, Any], workload: Workload) -> bool:
    """The rollout seen complete is complete now, in the same revision."""
    return workload.completed(now) == workload.completed(seen) and workload.revision_of(now) == workload.revision_of(
        seen
    )


def recovered_since(deployment: dict[str, Any], replicaset: str) -> str:
    """When autorollback restored this ReplicaSet, if that is the rollback this completion ends."""
    entry = restoring(deployment, replicaset)
    return entry.at if entry else ""


def known_bad(deployment: dict[str, Any], replicasets: list[dict[str, Any]], workload: Workload) -> str | None:
    """A warning when the template is one autorollback rolled back away from (and not proven since)."""
    entries = ledger.of([deployment, *replicasets])
    revs = workload.revisions(replicasets, entries)
    rs = workload.update_revision(deployment, revs)
    if rs is None or not rs.rolled_back_and_unproven or history.newer(revs, rs):
        return None  # (newer: the Deployment was read before the change its ReplicaSets show)
    name = rs.name
    entry = next(e for e in entries if e.failed == name)
    return (
        f"{history_object(workload.kind)} {name} ({images(rs.template)}) is being rolled out again, but autorollback "
        f"rolled back away from it at {entry.at} after it failed ({entry.reason or 'failed'}). If it fails "
        "again it will not be rolled back a second time: revert it at its source (Git, CI) instead of "
        f"re-applying it.{revert_pr(rs)}"
    )


def stray_marks(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """A JSON patch removing ReplicaSet marks from the Deployment (kubectl undo copies them there, and
    the controller would copy them over a reused ReplicaSet's own); each removal guarded by a test
    of its value, so that nothing newer is removed. Empty when there are none."""
    ann = deployment["metadata"].get("annotations") or {}
    ops: list[dict[str, Any]] = []
    for key in (*history.MARKS, gitcore.PR_MARK, NO_PROGRESS):
        if key in ann:
            path = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
            ops += [{"op": "test", "path": path, "value": ann[key]}, {"op": "remove", "path": path}]
    return ops


def on_delete_warning(workload: dict[str, Any], kind: str) -> str:
    """Why a workload whose pods are replaced only by hand (updateStrategy OnDelete) is never rolled back."""
    meta = workload["metadata"]
    return (
        f"spec.updateStrategy.type is OnDelete: the {kind} controller replaces a pod only when someone deletes "
        "it, so no rollout runs that could fail or be rolled back, and autorollback does neither. Use "
        f"RollingUpdate to have failed rollouts rolled back (kubectl patch {kind.lower()}/{meta['name']} "
        f'-n {meta["namespace"]} -p \'{{"spec":{{"updateStrategy":{{"type":"RollingUpdate"}}}}}}\').'
    )


def history_too_short(deployment: dict[str, Any], kind: str = "Deployment") -> str | None:
    limit = (deployment.get("spec") or {}).get("revisionHistoryLimit")
    if limit is None or limit >= HISTORY_NEEDED:
        return None
    return (
        f"spec.revisionHistoryLimit is {limit}: the controller deletes old {history_object(kind)}s as soon as a rollout "
        "completes, so after a completed rollout there may be no revision to roll back to. Set it to "
        f"{HISTORY_NEEDED} or more."
    )
