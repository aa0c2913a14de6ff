"""Pod watches, only where they are needed: one per opted-in fail-fast Deployment whose rollout
is in progress, selected by the Deployment's own label selector, stopped when the rollout ends.
Each keeps that Deployment's live pods (and nothing else) and calls back on every change."""

import threading
from collections.abc import Callable
from typing import Any

from autorollback import kube, logs, retry, telemetry

log = logs.get(__name__)
IDLE = 70.0  # seconds a watch request may stay silent (bookmarks come about every minute)


class PodWatch(threading.Thread):
    def __init__(self, api: kube.Client, uid: str, namespace: str, selector: str, changed: Callable[[str], None]):
        super().__init__(name=f"pods-{namespace}", daemon=True)
        self.api = api
        self.uid, self.namespace, self.selector = uid, namespace, selector
        self._changed = changed
        self._pods: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.stopped = threading.Event()

    def pods(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._pods.values())

    def run(self) -> None:
        attempt = 0
        while not self.stopped.is_set():
            try:
                version = self._list()
                attempt = 0
                while not self.stopped.is_set():
                    version = self._watch(version)
            except Exception as e:  # noqa: BLE001 - a watch that dies would leave its last pods judged forever
                if self.stopped.is_set():
                    return
                status = e.status if isinstance(e, kube.ApiError) else 0
                if status != 410:  # 410 Gone: the version expired, list again at once
                    telemetry.api_errors.labels("pods", str(status)).inc()
                    log.warning(
                        "cannot watch pods for fast failure signals; trying again",
                        namespace=self.namespace,
                        selector=self.selector,
                        error=str(e),
                    )
                    self.stopped.wait(retry.delay(attempt, e.retry_after if isinstance(e, kube.ApiError) else None))
                    attempt += 1

    def _list(self) -> str:
        page = self.api.request(
            "GET", f"/api/v1/namespaces/{self.namespace}/pods", query={"labelSelector": self.selector}
        )
        with self._lock:
            self._pods = {p["metadata"]["name"]: p for p in (page or {}).get("items") or []}
        self._changed(self.uid)
        return ((page or {}).get("metadata") or {}).get("resourceVersion", "")

    def _watch(self, version: str) -> str:
        for event in self.api.watch(
            f"/api/v1/namespaces/{self.namespace}/pods",
            {"labelSelector": self.selector, "resourceVersion": version, "allowWatchBookmarks": "true"},
            IDLE,
            self.stopped,
        ):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                raise kube.ApiError(int(obj.get("code") or 0), obj.get("reason", ""), obj.get("message", ""))
            version = (obj.get("metadata") or {}).get("resourceVersion", version)
            if kind == "BOOKMARK":
                continue
            with self._lock:
                if kind == "DELETED":
                    self._pods.pop(obj["metadata"]["name"], None)
                else:
                    self._pods[obj["metadata"]["name"]] = obj
            self._changed(self.uid)
        return version


class PodWatches:
    """The pod watches in use, by Deployment uid. enabled=False (--no-pod-signals): no pod is ever
    read (the chart's failFast.podSignals=false has no RBAC for pods)."""

    def __init__(self, api: kube.Client, enabled: bool, changed: Callable[[str], None]):
        self.api, self.enabled = api, enabled
        self._changed = changed
        self._watches: dict[str, PodWatch] = {}

    def __len__(self) -> int:
        return len(self._watches)

    def want(self, uid: str, namespace: str, selector: str) -> None:
        w = self._watches.get(uid)
        if not self.enabled or (w is not None and w.is_alive() and (w.namespace, w.selector) == (namespace, selector)):
            return
        self.stop(uid)
        w = self._watches[uid] = PodWatch(self.api, uid, namespace, selector, self._changed)
        w.start()
        telemetry.pod_watches.set(len(self._watches))

    def stop(self, uid: str) -> None:
        w = self._watches.pop(uid, None)
        if w is not None:
            w.stopped.set()
            telemetry.pod_watches.set(len(self._watches))

    def stop_all(self) -> None:
        for uid in list(self._watches):
            self.stop(uid)

    def pods(self, uid: str) -> list[dict[str, Any]]:
        w = self._watches.get(uid)
        return w.pods() if w is not None else []
