"""The one module that talks to the Kubernetes API (through the official client)."""
import datetime as dt
import json
import os
import uuid
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

TIMEOUT = 10  # seconds per API request

__all__ = ["ApiException", "ConnectError", "connect"]


class ConnectError(Exception):
    """No usable configuration, or the API server does not answer."""


def connect() -> None:
    """Load in-cluster or kubeconfig credentials and prove the API server answers."""
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
        else:
            config.load_kube_config()
    except (ConfigException, OSError) as e:
        raise ConnectError(
            f"no Kubernetes configuration found ({e}); set KUBECONFIG or run inside a cluster"
        ) from None
    host = client.Configuration.get_default_copy().host
    try:
        client.VersionApi().get_code(_request_timeout=TIMEOUT)
    except ApiException as e:
        if e.status not in (401, 403):  # the server answered: credentials are checked by the watch
            raise ConnectError(f"the Kubernetes API server at {host} answered {e.status} {e.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise ConnectError(f"cannot reach the Kubernetes API server at {host}: {reason}") from None


def api_message(e: ApiException) -> str:
    """The API server's own message from an error response, else the raw body."""
    try:
        return json.loads(e.body or "{}").get("message") or str(e.body or e.reason)
    except ValueError:
        return str(e.body or e.reason)


def _apps() -> client.AppsV1Api:
    return client.AppsV1Api()


def _core() -> client.CoreV1Api:
    return client.CoreV1Api()


def _plain(obj: Any) -> Any:
    return client.ApiClient().sanitize_for_serialization(obj)


def deployment_versions(namespaces: list[str]) -> dict[str, str]:
    """uid -> resourceVersion of every Deployment in scope (metadata is all we need)."""
    if namespaces:
        items = [d for ns in namespaces for d in _apps().list_namespaced_deployment(ns, _request_timeout=TIMEOUT).items]
    else:
        items = _apps().list_deployment_for_all_namespaces(_request_timeout=TIMEOUT).items
    return {d.metadata.uid: d.metadata.resource_version for d in items}


def get_deployment(namespace: str, name: str) -> dict[str, Any]:
    return _plain(_apps().read_namespaced_deployment(name, namespace, _request_timeout=TIMEOUT))


def replicasets_of(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """ReplicaSets controlled by the Deployment, exactly as kubectl's rollout history finds them."""
    meta = deployment["metadata"]
    labels = deployment["spec"]["selector"].get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    items = _apps().list_namespaced_replica_set(meta["namespace"], label_selector=selector,
                                               _request_timeout=TIMEOUT).items
    owned = []
    for rs in map(_plain, items):
        refs = rs["metadata"].get("ownerReferences") or []
        if any(r.get("controller") and r.get("uid") == meta["uid"] for r in refs):
            owned.append(rs)
    return owned


def patch_deployment(namespace: str, name: str, json_patch: list[dict[str, Any]]) -> dict[str, Any]:
    return _plain(_apps().patch_namespaced_deployment(name, namespace, json_patch, _request_timeout=TIMEOUT))


def annotate_replicaset(namespace: str, name: str, annotations: dict[str, str | None]) -> None:
    """Merge-patch annotations onto a ReplicaSet (None removes a key)."""
    body = {"metadata": {"annotations": annotations}}
    _apps().patch_namespaced_replica_set(name, namespace, body, _request_timeout=TIMEOUT)


def post_event(obj: dict[str, Any], type_: str, reason: str, message: str, component: str = "autorollback") -> None:
    """A core/v1 Event on obj, as `kubectl describe` shows them."""
    meta = obj["metadata"]
    now = dt.datetime.now(dt.timezone.utc)
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=f"{meta['name']}.{uuid.uuid4().hex[:16]}", namespace=meta["namespace"]),
        involved_object=client.V1ObjectReference(
            api_version=obj.get("apiVersion", "apps/v1"), kind=obj.get("kind", "Deployment"),
            name=meta["name"], namespace=meta["namespace"], uid=meta.get("uid"),
            resource_version=meta.get("resourceVersion"),
        ),
        type=type_, reason=reason, message=message[:1024],
        first_timestamp=now, last_timestamp=now, count=1,
        source=client.V1EventSource(component=component),
        reporting_component=component, reporting_instance=os.environ.get("POD_NAME", component),
    )
    _core().create_namespaced_event(meta["namespace"], event, _request_timeout=TIMEOUT)
