"""Plain dicts shaped like what the API server returns, for the pure core's tests.

A ReplicaSet for image "app:1.0.0" is named web-<hash of the image>, as the controller names
them, and the Deployment's Progressing condition names the ReplicaSet of its image.
"""

import copy
import json
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


# --- StatefulSets and DaemonSets, shaped as the v1.34 controllers and API server write them
# (workload-kinds.md §2): a ControllerRevision's `data` is the template as stored, defaults filled in,
# every key sorted (the controllers re-marshal it through a map) and the replace directive first.

STS_UID = "7f1d2c3b-0a4e-4b5f-9c6d-1e2f3a4b5c6d"
DS_UID = "3e4d5c6b-7a8f-4e9d-8c1b-2a3f4e5d6c7b"
# hashes as the controllers encode them (rand.SafeEncodeString: no vowels, no 0, 1 or 3)
STS_HASHES = {"app:1.0.0": "6b9f7c8d5", "app:2.0.0": "7c6d9f5b48", "app:3.0.0": "59d8c6f7b4"}
DS_HASHES = {"agent:1.0.0": "6f8b4c9d7", "agent:2.0.0": "7d5c9b8f4", "agent:3.0.0": "85b7d6c9f"}


def sts_name(image: str) -> str:
    return f"web-{STS_HASHES[image]}"


def ds_hash(image: str) -> str:
    return DS_HASHES[image]


def stored_template(image: str, app: str = "web", written_by_133: bool = False) -> dict[str, Any]:
    """A pod template as the API server returns it (defaulted). Until 1.33 the template's metadata
    carried `creationTimestamp: null`; 1.34 no longer writes it (kubernetes/kubernetes#134773)."""
    meta: dict[str, Any] = {"labels": {"app": app}}
    if written_by_133:
        meta = {"creationTimestamp": None, "labels": {"app": app}}
    return {
        "metadata": meta,
        "spec": {
            "containers": [
                {
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "name": app,
                    "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }
            ],
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30,
        },
    }


def revision_data(template: dict[str, Any]) -> str:
    """`data` exactly as getPatch writes it: {"spec":{"template":{"$patch":"replace",...}}}, compact, sorted."""
    return json.dumps({"spec": {"template": {"$patch": "replace", **template}}}, sort_keys=True, separators=(",", ":"))


def _revision(kind: str, owner: str, uid: str, name: str, number: int, raw: str, labels: dict[str, str], ann):
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"cr-{name}",
            "resourceVersion": str(1000 + number),
            "creationTimestamp": f"2026-11-2{min(number, 9)}T08:00:00Z",
            "labels": labels,
            "annotations": ann,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": kind,
                    "name": owner,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "data": json.loads(raw),
        "revision": number,
    }


def sts_revision(
    number: int, image: str, *, written_by_133: bool = False, annotations: dict[str, str] | None = None, **marks: str
) -> dict[str, Any]:
    """A StatefulSet's ControllerRevision: `<sts>-<hash>`, the template's labels plus
    controller.kubernetes.io/hash, the StatefulSet's annotations as they were (copied at creation)."""
    name = sts_name(image)
    ann = {"autorollback.io/enabled": "true", **(annotations or {})}
    ann.update({f"autorollback.io/{k.replace('_', '-')}": history.bind(name, v) for k, v in marks.items()})
    raw = revision_data(stored_template(image, written_by_133=written_by_133))
    labels = {"app": "web", "controller.kubernetes.io/hash": STS_HASHES[image]}
    return _revision("StatefulSet", "web", STS_UID, name, number, raw, labels, ann)


def statefulset(
    image: str = "app:2.0.0",
    *,
    current: str = "app:1.0.0",
    update: str | None = None,
    replicas: int = 3,
    updated: int = 1,
    ready: int = 2,
    available: int | None = None,
    created: int | None = None,
    partition: int | None = 0,
    strategy: str = "RollingUpdate",
    generation: int = 4,
    observed: int | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A StatefulSet rolling `image` out over `current` (by default: stuck at its first new pod, the
    highest ordinal, which is not Ready). `partition=None`: `rollingUpdate` not set at all."""
    update = update or image
    same = sts_name(update) == sts_name(current)
    rolling: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate" and partition is not None:
        rolling["rollingUpdate"] = {"partition": partition}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": STS_UID,
            "generation": generation,
            "resourceVersion": "5678",
            "creationTimestamp": "2026-11-20T08:00:00Z",
            "annotations": {"autorollback.io/enabled": "true", **(annotations or {})},
        },
        "spec": {
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "podManagementPolicy": "OrderedReady",
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "serviceName": "web",
            "template": stored_template(image),
            "updateStrategy": rolling,
        },
        "status": {
            "availableReplicas": ready if available is None else available,
            "collisionCount": 0,
            "currentReplicas": updated if same else (created if created is not None else replicas) - updated,
            "currentRevision": sts_name(current),
            "observedGeneration": generation if observed is None else observed,
            "readyReplicas": ready,
            "replicas": replicas if created is None else created,
            "updateRevision": sts_name(update),
            "updatedReplicas": updated,
        },
    }


def sts_pod(ordinal: int, image: str, *, terminating: bool = False, owner: str = STS_UID) -> dict[str, Any]:
    """A StatefulSet pod as a metadata-only list returns it: its revision's full name in controller-revision-hash."""
    meta: dict[str, Any] = {
        "name": f"web-{ordinal}",
        "namespace": "ns",
        "uid": f"pod-web-{ordinal}",
        "creationTimestamp": "2026-11-26T09:00:00Z",
        "labels": {
            "app": "web",
            "apps.kubernetes.io/pod-index": str(ordinal),
            "controller-revision-hash": sts_name(image),
            "statefulset.kubernetes.io/pod-name": f"web-{ordinal}",
        },
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": owner, "controller": True}
        ],
    }
    if terminating:
        meta["deletionTimestamp"] = "2026-11-26T10:00:00Z"
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}


TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def ds_revision(number: int, image: str, *, generation: int | None = None, **marks: str) -> dict[str, Any]:
    """A DaemonSet's ControllerRevision: `<ds>-<hash>`, the template's labels plus
    controller-revision-hash=<hash>, the DaemonSet's annotations (its template generation then)."""
    name = f"agent-{ds_hash(image)}"
    ann = {"autorollback.io/enabled": "true", TEMPLATE_GENERATION: str(generation or number)}
    ann.update({f"autorollback.io/{k.replace('_', '-')}": history.bind(name, v) for k, v in marks.items()})
    raw = revision_data(stored_template(image, app="agent"))
    labels = {"app": "agent", "controller-revision-hash": ds_hash(image)}
    return _revision("DaemonSet", "agent", DS_UID, name, number, raw, labels, ann)


def daemonset(
    image: str = "agent:2.0.0",
    *,
    desired: int = 2,
    updated: int = 1,
    available: int = 1,
    ready: int | None = None,
    template_generation: int = 2,
    generation: int = 2,
    observed: int | None = None,
    strategy: str = "RollingUpdate",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A DaemonSet on `desired` nodes rolling `image` out (by default: stuck at its first node, whose
    new pod is not available: maxUnavailable 1)."""
    update: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate":
        update["rollingUpdate"] = {"maxSurge": 0, "maxUnavailable": 1}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "agent",
            "namespace": "ns",
            "uid": DS_UID,
            "generation": generation,
            "resourceVersion": "9012",
            "creationTimestamp": "2026-11-20T08:00:00Z",
            "annotations": {
                TEMPLATE_GENERATION: str(template_generation),
                "autorollback.io/enabled": "true",
                **(annotations or {}),
            },
        },
        "spec": {
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "agent"}},
            "template": stored_template(image, app="agent"),
            "updateStrategy": update,
        },
        "status": {
            "currentNumberScheduled": desired,
            "desiredNumberScheduled": desired,
            "numberAvailable": available,
            "numberMisscheduled": 0,
            "numberReady": available if ready is None else ready,
            "numberUnavailable": desired - available,
            "observedGeneration": generation if observed is None else observed,
            "updatedNumberScheduled": updated,
        },
    }


def ds_pod(node: str, image: str, *, terminating: bool = False, owner: str = DS_UID) -> dict[str, Any]:
    """A DaemonSet pod as a metadata-only list returns it: its revision's hash (not name) in controller-revision-hash."""
    meta: dict[str, Any] = {
        "name": f"agent-{node}",
        "namespace": "ns",
        "uid": f"pod-agent-{node}",
        "creationTimestamp": "2026-11-26T09:00:00Z",
        "labels": {"app": "agent", "controller-revision-hash": ds_hash(image), "pod-template-generation": "2"},
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": owner, "controller": True}
        ],
    }
    if terminating:
        meta["deletionTimestamp"] = "2026-11-26T10:00:00Z"
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
