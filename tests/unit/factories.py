"""Plain dicts shaped like what the API server returns, for the pure core's tests.

A ReplicaSet for image "app:1.0.0" is named web-<hash of the image>, as the controller names
them, and the Deployment's Progressing condition names the ReplicaSet of its image.
"""

import copy
import zlib
from typing import Any

from autorollback import history

UID = "d-uid"
UPDATED = "2026-11-26T10:00:00Z"


def pod_hash(image: str) -> str:
    return format(zlib.crc32(image.encode()), "x")


def rs_name(image: str) -> str:
    return f"web-{pod_hash(image)}"


def template(image: str = "app:1.0.0", **labels: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web", **labels}}, "spec": {"containers": [{"name": "app", "image": image}]}}


def replicaset(
    revision: int | str | None,
    image: str,
    marks: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    name: str | None = None,
    owner: str = UID,
    available: int = 0,
    created: str = "2026-11-26T08:00:00Z",
) -> dict[str, Any]:
    """`marks` are bound to this ReplicaSet; `annotations` are taken as they are."""
    name = name or rs_name(image)
    ann = dict(annotations or {})
    if revision is not None:
        ann["deployment.kubernetes.io/revision"] = str(revision)
    ann.update({k: history.bind(name, v) for k, v in (marks or {}).items()})
    return {
        "metadata": {
            "name": name,
            "annotations": ann,
            "creationTimestamp": created,
            "ownerReferences": [{"uid": owner, "controller": True}],
        },
        "spec": {"template": template(image, **{"pod-template-hash": pod_hash(image)})},
        "status": {"availableReplicas": available, "replicas": available},
    }


def deployment(
    image: str = "app:2.0.0",
    revision: int = 2,
    *,
    failed: bool = False,
    complete: bool = False,
    annotations: dict[str, str] | None = None,
    paused: bool = False,
    updated: str = UPDATED,
    generation: int = 2,
    blamed: str | None = None,
) -> dict[str, Any]:
    """`blamed`: the image whose ReplicaSet the condition names (default: this template's)."""
    ann = {"autorollback.io/enabled": "true", "deployment.kubernetes.io/revision": str(revision)}
    ann.update(annotations or {})
    named = rs_name(blamed or image)
    conditions = []
    if failed:
        conditions.append(
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": f'ReplicaSet "{named}" has timed out progressing.',
                "lastUpdateTime": updated,
                "lastTransitionTime": "2026-11-26T09:00:00Z",
            }
        )
    if complete:
        conditions.append(
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable",
                "message": f'ReplicaSet "{named}" has successfully progressed.',
                "lastUpdateTime": updated,
                "lastTransitionTime": updated,
            }
        )
    return {
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": UID,
            "generation": generation,
            "resourceVersion": "42",
            "annotations": ann,
        },
        "spec": {
            "replicas": 3,
            "paused": paused,
            "selector": {"matchLabels": {"app": "web"}},
            "template": copy.deepcopy(template(image)),
        },
        "status": {
            "observedGeneration": generation,
            "conditions": conditions,
            "replicas": 3,
            "updatedReplicas": 3 if complete else 1,
            "availableReplicas": 3 if complete else 0,
        },
    }
