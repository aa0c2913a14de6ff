"""The one module that talks to the Kubernetes API.

Objects are read and written as raw JSON, byte for byte what the API server sent: a typed
client model silently drops fields it does not know, and the operator writes pod templates
back. The official client is used for what it is good at: loading kubeconfig or in-cluster
credentials (with token refresh) and building the TLS connection pool, shared by every call.
"""

import dataclasses
import datetime as dt
import hashlib
import json
import os
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import urllib3
from kubernetes import client, config
from kubernetes.client import rest
from kubernetes.config.config_exception import ConfigException

from autorollback.workloads.base import Api, Undo

TIMEOUT = 10  # seconds per API request
POOL = 32  # connections kept to the API server
FIELD_MANAGER = "autorollback"
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
RESOURCES = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}  # apps/v1, by kind

__all__ = ["ApiError", "Client", "ConnectError", "DaemonSetApi", "DeploymentApi", "StatefulSetApi", "connect"]


class ConnectError(Exception):
    """No usable configuration, or the API server does not answer."""


@dataclass
class ApiError(Exception):
    status: int  # 0: no answer (connection refused, reset, timed out)
    reason: str
    message: str
    retry_after: float | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.message}" if self.status else f"no answer: {self.message}"


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Client:
    """The connection to the API server (credentials and one TLS pool, shared by every call).

    guard: may this process write? Leader election's `leads()` (`guarded()`): a replica that is not
    (or no longer sure to be) the leader writes nothing. Without election, always."""

    configuration: client.Configuration
    pool: urllib3.PoolManager
    guard: Callable[[], bool] = _always

    def guarded(self, guard: Callable[[], bool]) -> "Client":
        """The same connection, writing only while guard() says so."""
        return dataclasses.replace(self, guard=guard)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        unguarded: bool = False,
        timeout: urllib3.Timeout | None = None,
    ) -> Any:
        """One API request; the answer's JSON as sent. Raises ApiError for anything but 2xx."""
        if method != "GET" and not unguarded and not self.guard():
            raise ApiError(0, "NotLeader", "this replica does not hold the leader Lease: it writes nothing")
        headers = self._headers(accept)
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        _count(method)
        url = self.configuration.host.rstrip("/") + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        try:
            r = self.pool.request(
                method,
                url,
                body=data,
                headers=headers,
                retries=False,
                preload_content=True,
                timeout=timeout or urllib3.Timeout(connect=TIMEOUT, read=TIMEOUT),
            )
        except urllib3.exceptions.HTTPError as e:
            raise ApiError(0, "", str(getattr(e, "reason", None) or e)) from None
        if not 200 <= r.status < 300:
            raise _error(r)
        return json.loads(r.data) if r.data else None

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": f"autorollback/{FIELD_MANAGER}"}
        for auth in self.configuration.auth_settings().values():  # the client's own rules; refreshes expiring tokens
            if auth.get("in") == "header" and auth.get("value"):
                headers[auth["key"]] = auth["value"]
        return headers

    def watch(self, path: str, query: dict[str, Any], idle: float, stopped: Any) -> Iterator[dict[str, Any]]:
        """The events of one watch request, as sent; ends when the server closes it, when it stays
        silent for idle seconds (the caller watches again from the last version), or once stopped is set."""
        _count("WATCH")
        url = (
            self.configuration.host.rstrip("/")
            + path
            + "?"
            + urllib.parse.urlencode({**query, "watch": "true", "timeoutSeconds": 300})
        )
        try:
            r = self.pool.request(
                "GET",
                url,
                headers=self._headers("application/json"),
                retries=False,
                preload_content=False,
                timeout=urllib3.Timeout(connect=TIMEOUT, read=idle),
            )
        except urllib3.exceptions.HTTPError as e:
            raise ApiError(0, "", str(getattr(e, "reason", None) or e)) from None
        try:
            if not 200 <= r.status < 300:
                raise _error(r, r.read())  # read whole: r.data is empty after it
            buffer = b""
            while not stopped.is_set():
                try:
                    chunk = r.read1(65536)  # what has arrived, without waiting for 64 KiB
                except urllib3.exceptions.ReadTimeoutError:
                    return
                except urllib3.exceptions.HTTPError as e:
                    raise ApiError(0, "", str(e)) from None
                if not chunk:
                    return
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        finally:
            r.close()  # a stream read only in part must never go back to the pool as it is
            r.release_conn()

    def workload_versions(self, namespaces: list[str], kinds: Iterable[str] = tuple(RESOURCES)) -> dict[str, str]:
        """uid -> resourceVersion of every workload in scope of the watched kinds (--kinds; all of
        RESOURCES by default): metadata only, in pages."""
        out: dict[str, str] = {}
        for resource in (RESOURCES[kind] for kind in kinds):
            for ns in namespaces or [None]:
                token = None
                while True:
                    page = self.request(
                        "GET", _workloads(resource, ns), query={"limit": 500, "continue": token}, accept=METADATA_ONLY
                    )
                    for item in page.get("items") or []:
                        out[item["metadata"]["uid"]] = item["metadata"].get("resourceVersion", "")
                    token = (page.get("metadata") or {}).get("continue")
                    if not token:
                        break
        return out

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return self.request("GET", f"{_deployments(namespace)}/{name}")

    def replicasets_of(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        """ReplicaSets controlled by the Deployment, exactly as kubectl's rollout history finds them."""
        meta = deployment["metadata"]
        page = self.request(
            "GET",
            f"/apis/apps/v1/namespaces/{meta['namespace']}/replicasets",
            query={"labelSelector": selector(deployment["spec"].get("selector") or {})},
        )
        return [rs for rs in page.get("items") or [] if controlled_by(rs, meta["uid"])]

    def pods_of(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        """The metadata of the pods the workload's selector matches (whose revision they are is the
        adapter's to say, from their labels): a metadata-only list, a fraction of full pods' cost."""
        meta = workload["metadata"]
        page = self.request(
            "GET",
            f"/api/v1/namespaces/{meta['namespace']}/pods",
            query={"labelSelector": selector(workload["spec"].get("selector") or {})},
            accept=METADATA_ONLY,
        )
        return list(page.get("items") or [])

    def pods_full(self, workload: dict[str, Any], revision: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """The pods the workload's selector matches, whole (their status: Ready or not); with `revision`
        (a pod label and its value), only that revision's."""
        meta = workload["metadata"]
        labels = selector(workload["spec"].get("selector") or {})
        if revision is not None:
            labels = ",".join(p for p in (labels, f"{revision[0]}={revision[1]}") if p)
        page = self.request("GET", f"/api/v1/namespaces/{meta['namespace']}/pods", query={"labelSelector": labels})
        return list(page.get("items") or [])

    def delete_pod(self, namespace: str, name: str, uid: str, resource_version: str) -> None:
        """Delete one pod gracefully: its own terminationGracePeriodSeconds (no override, never forced),
        and only that pod as it was read (preconditions uid and resourceVersion: 409 if it was recreated
        or changed since; 404 if it is gone)."""
        preconditions = {"uid": uid, **({"resourceVersion": resource_version} if resource_version else {})}
        self.request(
            "DELETE",
            f"/api/v1/namespaces/{namespace}/pods/{name}",
            body={"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": preconditions},
        )

    def get_replicaset(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", f"/apis/apps/v1/namespaces/{namespace}/replicasets/{name}")
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def patch_deployment(
        self, namespace: str, name: str, body: Any, content_type: str = "application/json-patch+json"
    ) -> dict[str, Any]:
        """A JSON patch of a Deployment (or a body of another patch type, with its content type)."""
        return self.request(
            "PATCH",
            f"{_deployments(namespace)}/{name}",
            body=body,
            query={"fieldManager": FIELD_MANAGER},
            content_type=content_type,
        )

    def annotate_replicaset(
        self, namespace: str, name: str, annotations: dict[str, str | None], resource_version: str = ""
    ) -> None:
        """Merge-patch annotations onto a ReplicaSet (None removes a key); with resource_version, only
        onto that version of it (409 otherwise)."""
        precondition = {"resourceVersion": resource_version} if resource_version else {}
        self.request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{namespace}/replicasets/{name}",
            body={"metadata": {**precondition, "annotations": annotations}},
            query={"fieldManager": FIELD_MANAGER},
            content_type="application/merge-patch+json",
        )

    def post_event(
        self,
        obj: dict[str, Any],
        type_: str,
        reason: str,
        message: str,
        component: str = "autorollback",
        once: str = "",
    ) -> None:
        """A core/v1 Event on obj, as `kubectl describe` shows them. With `once`, the Event's name is
        derived from it, so a second report of the same thing (another replica, after a handover) is
        refused by the API server (409) and not told twice."""
        meta = obj["metadata"]
        suffix = (
            hashlib.sha256(f"{meta.get('uid')} {once}".encode()).hexdigest()[:16] if once else uuid.uuid4().hex[:16]
        )
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{suffix}", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", "apps/v1"),
                "kind": obj.get("kind", "Deployment"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": os.environ.get("POD_NAME", component),
        }
        try:
            self.request("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=event)
        except ApiError as e:
            if not (once and e.status == 409):
                raise


def connect() -> Client:
    """Load in-cluster or kubeconfig credentials and prove the API server answers."""
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
        else:
            config.load_kube_config()
    except (ConfigException, OSError) as e:
        raise ConnectError(f"no Kubernetes configuration found ({e}); set KUBECONFIG or run inside a cluster") from None
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = POOL
    api = Client(cfg, rest.RESTClientObject(cfg).pool_manager)
    try:
        api.request("GET", "/version")
    except ApiError as e:
        if e.status == 0:
            raise ConnectError(f"cannot reach the Kubernetes API server at {cfg.host}: {e.message}") from None
        if e.status not in (401, 403):  # the server answered: credentials are checked by the watch
            raise ConnectError(f"the Kubernetes API server at {cfg.host} answered {e}") from None
    return api


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers.get("Retry-After"))
    except (TypeError, ValueError):
        return None


def _uncounted(verb: str) -> None:
    pass


# counts each request by verb: the operator sets it (telemetry, on /metrics); the status CLI, installed
# without prometheus-client, counts nothing
count: Callable[[str], None] = _uncounted


def _count(verb: str) -> None:
    count(verb)


def _error(r: Any, data: bytes | None = None) -> ApiError:
    """data: the body, once read by the caller (default: r.data, preloaded)."""
    body = (r.data if data is None else data) or b""
    try:
        status = json.loads(body or b"{}")
        message = status.get("message") if isinstance(status, dict) else None
    except ValueError:
        message = None
    return ApiError(r.status, r.reason or "", message or body.decode(errors="replace")[:500], _retry_after(r.headers))


def _workloads(resource: str, namespace: str | None) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/{resource}" if namespace else f"/apis/apps/v1/{resource}"


def _deployments(namespace: str | None) -> str:
    return _workloads("deployments", namespace)


def controlled_by(obj: dict[str, Any], uid: str) -> bool:
    """The object's controller ownerReference names this uid (metav1.IsControlledBy, as kubectl checks it)."""
    return any(r.get("controller") and r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])


def selector(label_selector: dict[str, Any]) -> str:
    """A LabelSelector as the API's query string: matchLabels and matchExpressions."""
    parts = [f"{k}={v}" for k, v in sorted((label_selector.get("matchLabels") or {}).items())]
    for e in label_selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], ",".join(e.get("values") or [])
        parts.append(
            {
                "In": f"{key} in ({values})",
                "NotIn": f"{key} notin ({values})",
                "Exists": key,
                "DoesNotExist": f"!{key}",
            }[op]
        )
    return ",".join(parts)


@dataclass(frozen=True)
class DeploymentApi:
    """The I/O of the Deployment adapter (workloads.base.Api): its ReplicaSets are its history."""

    api: Client

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return self.api.get_deployment(namespace, name)

    def history(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        return self.api.replicasets_of(workload)

    def get_revision(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.get_replicaset(namespace, name)

    def pods(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        return self.api.pods_of(workload)

    def mark_revision(
        self, namespace: str, name: str, annotations: dict[str, str | None], resource_version: str = ""
    ) -> None:
        if resource_version:
            self.api.annotate_replicaset(namespace, name, annotations, resource_version)
        else:
            self.api.annotate_replicaset(namespace, name, annotations)

    def patch(self, namespace: str, name: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        return self.api.patch_deployment(namespace, name, ops)

    def undo(self, namespace: str, name: str, undo: Undo) -> dict[str, Any]:
        """The rollback write (Workload.undo_patch), with its content type (a JSON patch for Deployments)."""
        return self.api.patch_deployment(namespace, name, undo.body, content_type=undo.content_type)


@dataclass(frozen=True)
class ControllerRevisionApi:
    """The I/O of a kind whose history is ControllerRevisions (workloads.base.Api), on `resource`:
    the workload's own collection under apps/v1."""

    api: Client
    resource: ClassVar[str]  # "statefulsets", "daemonsets"

    def _path(self, namespace: str, name: str = "") -> str:
        return f"/apis/apps/v1/namespaces/{namespace}/{self.resource}" + (f"/{name}" if name else "")

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return self.api.request("GET", self._path(namespace, name))

    def history(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        """kubectl's rollout history (controlledHistory): the ControllerRevisions in the namespace that
        the workload's selector matches (they carry its pod template's labels), then only those whose
        controller is this workload."""
        meta = workload["metadata"]
        page = self.api.request(
            "GET",
            f"/apis/apps/v1/namespaces/{meta['namespace']}/controllerrevisions",
            query={"labelSelector": selector(workload["spec"].get("selector") or {})},
        )
        return [cr for cr in page.get("items") or [] if controlled_by(cr, meta["uid"])]

    def get_revision(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.api.request("GET", f"/apis/apps/v1/namespaces/{namespace}/controllerrevisions/{name}")
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def pods(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        return self.api.pods_of(workload)

    def mark_revision(
        self, namespace: str, name: str, annotations: dict[str, str | None], resource_version: str = ""
    ) -> None:
        """Merge-patch annotations onto a ControllerRevision (None removes a key; its `data` is immutable,
        its metadata is not); with resource_version, only onto that version of it (409 otherwise)."""
        precondition = {"resourceVersion": resource_version} if resource_version else {}
        self.api.request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{namespace}/controllerrevisions/{name}",
            body={"metadata": {**precondition, "annotations": annotations}},
            query={"fieldManager": FIELD_MANAGER},
            content_type="application/merge-patch+json",
        )

    def patch(self, namespace: str, name: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        """A JSON patch of the workload."""
        return self._patch(namespace, name, ops, "application/json-patch+json")

    def undo(self, namespace: str, name: str, undo: Undo) -> dict[str, Any]:
        """The rollback write (Workload.undo_patch), with its content type (a strategic merge patch)."""
        return self._patch(namespace, name, undo.body, undo.content_type)

    def _patch(self, namespace: str, name: str, body: Any, content_type: str) -> dict[str, Any]:
        return self.api.request(
            "PATCH",
            self._path(namespace, name),
            body=body,
            query={"fieldManager": FIELD_MANAGER},
            content_type=content_type,
        )


class StatefulSetApi(ControllerRevisionApi):
    resource = "statefulsets"


class DaemonSetApi(ControllerRevisionApi):
    resource = "daemonsets"


APIS: dict[str, Callable[[Client], Api]] = {  # the kinds of workloads.KINDS
    "Deployment": DeploymentApi,
    "StatefulSet": StatefulSetApi,
    "DaemonSet": DaemonSetApi,
}


def api_for(api: Client, kind: str) -> Api:
    """The I/O of one kind's adapter (workloads.base.Api), on this client."""
    return APIS[kind](api)
