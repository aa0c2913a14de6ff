"""Plain dicts shaped like what the API server returns, for the pure core's tests."""
import copy
from typing import Any

UID = "d-uid"


def template(image: str = "app:1.0.0", **labels: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web", **labels}},
            "spec": {"containers": [{"name": "app", "image": image}]}}


def replicaset(revision: int | str | None, image: str, marks: dict[str, str] | None = None,
               annotations: dict[str, str] | None = None, name: str | None = None,
               owner: str = UID) -> dict[str, Any]:
    ann = dict(annotations or {})
    if revision is not None:
        ann["deployment.kubernetes.io/revision"] = str(revision)
    ann.update(marks or {})
    return {
        "metadata": {"name": name or f"web-{image.replace(':', '-').replace('.', '')}", "annotations": ann,
                     "ownerReferences": [{"uid": owner, "controller": True}]},
        "spec": {"template": template(image, **{"pod-template-hash": f"h{abs(hash(image)) % 1000}"})},
    }


def deployment(image: str = "app:2.0.0", revision: int = 2, *, failed: bool = False, complete: bool = False,
               annotations: dict[str, str] | None = None, paused: bool = False,
               since: str = "2026-11-26T10:00:00Z", generation: int = 2) -> dict[str, Any]:
    ann = {"autorollback.io/enabled": "true", "deployment.kubernetes.io/revision": str(revision)}
    ann.update(annotations or {})
    conditions = []
    if failed:
        conditions.append({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                           "message": 'ReplicaSet "web-x" has timed out progressing.', "lastTransitionTime": since})
    if complete:
        conditions.append({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                           "lastTransitionTime": since})
    return {
        "metadata": {"name": "web", "namespace": "ns", "uid": UID, "generation": generation,
                     "resourceVersion": "42", "annotations": ann},
        "spec": {"replicas": 3, "paused": paused, "selector": {"matchLabels": {"app": "web"}},
                 "template": copy.deepcopy(template(image))},
        "status": {"observedGeneration": generation, "conditions": conditions, "replicas": 3,
                   "updatedReplicas": 3 if complete else 1, "availableReplicas": 3 if complete else 0},
    }
