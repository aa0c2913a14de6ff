"""The rollback patch, built by the rules of `kubectl rollout undo --to-revision=N`."""
from typing import Any

from autorollback import ledger
from autorollback.config import PREFIX
from autorollback.history import MARKS, Revision, without_hash

CHANGE_CAUSE = "kubernetes.io/change-cause"
# kubectl keeps the Deployment's own values for these and never copies them from the ReplicaSet.
SKIP = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
})


def kubectl_annotations(deployment: dict[str, str], replicaset: dict[str, str]) -> dict[str, str]:
    """Exactly kubectl's: the Deployment's skip-list values, every other annotation from the ReplicaSet."""
    out = {k: v for k, v in deployment.items() if k in SKIP}
    out.update({k: v for k, v in replicaset.items() if k not in SKIP})
    return out


def is_configuration(key: str) -> bool:
    """The user's autorollback.io/* settings, as opposed to the state autorollback records."""
    return key.startswith(PREFIX) and key not in MARKS and key != ledger.KEY


def annotations(deployment: dict[str, str], target: Revision, change_cause: str,
                entries: tuple[ledger.Entry, ...]) -> dict[str, str]:
    """kubectl's annotations, plus the user's autorollback.io/* configuration and the ledger;
    no marks (they belong on ReplicaSets) and nothing of autorollback's copied from the ReplicaSet."""
    out = {k: v for k, v in kubectl_annotations(deployment, target.annotations).items()
           if not k.startswith(PREFIX)}
    out.update({k: v for k, v in deployment.items() if is_configuration(k)})
    out[ledger.KEY] = ledger.dump(entries)
    out[CHANGE_CAUSE] = change_cause
    return out


def patch(deployment: dict[str, Any], target: Revision, change_cause: str,
          entries: tuple[ledger.Entry, ...]) -> list[dict[str, Any]]:
    """One JSON Patch: the template, the annotations and the ledger entry that records this
    rollback. Replacing resourceVersion makes it fail with 409 if anyone wrote in between."""
    meta = deployment["metadata"]
    return [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
        {"op": "replace", "path": "/spec/template", "value": without_hash(target.template)},
        {"op": "replace", "path": "/metadata/annotations",
         "value": annotations(meta.get("annotations") or {}, target, change_cause, entries)},
    ]
