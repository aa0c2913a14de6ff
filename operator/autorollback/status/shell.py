"""`autorollback status` and `kubectl autorollback status`: reads the cluster with the user's
kubeconfig (current context and namespace, as kubectl does), never writes."""

import argparse
import datetime as dt
import json
import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client, config
from kubernetes.client import rest
from kubernetes.config.config_exception import ConfigException

from autorollback import kube, workloads
from autorollback.status import core, render

RESOURCES = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}  # apps/v1
SHORT = {"Deployment": "deploy", "StatefulSet": "sts", "DaemonSet": "ds"}
HISTORY = {"Deployment": "replicasets", "StatefulSet": "controllerrevisions", "DaemonSet": "controllerrevisions"}
PAGE = 500  # items per list request (kubectl's --chunk-size)
POLL = 2.0  # --watch: seconds between two reads while a watch cannot be kept (may not watch, API errors)
FALLBACK = 300.0  # --watch: read again at least this often even while every watch holds
SETTLE = 0.3  # --watch: a burst of changes (a rollout writes many objects) is read once
DEGRADED = "degraded "  # + the path: put by a watch that could not be kept; read every POLL seconds until
# that source's watch is running again (its path put again, after a list or a change)
BACKOFF, BACKOFF_MAX = 0.8, 30.0  # a watch's back-off after an error (client-go's reflector's)
STALE_MAX = 30.0  # --watch: the longest wait between two reads again while the API server does not answer
IDLE = 100.0  # a watch silent this long is opened again from its last version (the API server sends
# a bookmark about every 60 s: a quiet watch that is kept is never this silent)


class Failed(Exception):
    """One clear line for stderr; the command exits 1."""


class Unreachable(Failed):
    """No answer from the API server: --watch keeps the last frame and reads again."""


def parser(prog: str = "autorollback status") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Show the workloads that opted in to autorollback, or one of them in detail "
        "(revisions and their marks, the rollback ledger, autorollback's Events). Reads only.",
    )
    p.add_argument("target", nargs="?", metavar="NAME|KIND/NAME", help="one workload (a bare name is a Deployment)")
    p.add_argument("-n", "--namespace", help="the namespace (default: the current context's)")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    p.add_argument("-w", "--watch", action="store_true", help="draw again whenever something changes")
    p.add_argument("--kubeconfig", help="the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", help="the kubeconfig context (default: the current one)")
    return p


def connect(kubeconfig: str | None, context: str | None) -> tuple[kube.Client, str]:
    """The API connection and the context's namespace."""
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not (kubeconfig or os.environ.get("KUBECONFIG")):
            config.load_incluster_config()
            namespace = _incluster_namespace()
        else:
            config.load_kube_config(config_file=kubeconfig, context=context)
            _, active = config.list_kube_config_contexts(config_file=kubeconfig)
            if context:
                contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
                active = next(c for c in contexts if c["name"] == context)
            namespace = (active.get("context") or {}).get("namespace") or "default"
    except (ConfigException, OSError, StopIteration) as e:
        raise Failed(f"no Kubernetes configuration found ({e}): set KUBECONFIG or pass --kubeconfig") from None
    cfg = client.Configuration.get_default_copy()
    return kube.Client(cfg, rest.RESTClientObject(cfg).pool_manager), namespace


def _incluster_namespace() -> str:
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


def _get(api: kube.Client, path: str, query: dict[str, Any] | None = None, what: str = "") -> Any:
    try:
        return api.request("GET", path, query=query)
    except kube.ApiError as e:
        if e.status == 401:
            raise Failed(
                f"the Kubernetes API server at {api.configuration.host} did not accept the credentials "
                "(401 Unauthorized)"
            ) from None
        raise _refused(api, e, f"cannot read {what or path}") from None


def _refused(api: kube.Client, e: kube.ApiError, forbidden: str) -> Exception:
    """The one line an API error gives: no answer from the server, or 403 (`forbidden` says what could
    not be read); else the error itself."""
    if e.status == 0:
        return Unreachable(f"cannot reach the Kubernetes API server at {api.configuration.host}: {e.message}")
    if e.status == 403:
        return Failed(f"forbidden: {forbidden}: {e.message}")
    return e


def _list(api: kube.Client, path: str, what: str) -> list[dict[str, Any]]:
    """Every item of a collection, in pages of PAGE (as kubectl does)."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        page = _get(api, path, {"limit": PAGE, **({"continue": token} if token else {})}, what)
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return items


def kind_of(text: str) -> str:
    """KIND in kubectl's spellings (deployment, deployments, deploy, deployments.apps) -> the kind."""
    word = text.lower().removesuffix(".apps")
    for kind in workloads.KINDS:
        if word in (kind.lower(), RESOURCES[kind], SHORT[kind]):
            return kind
    known = ", ".join(k.lower() for k in workloads.KINDS)
    raise Failed(f'autorollback does not watch "{text}" (it watches: {known})')


_WARNED: set[str] = set()


def rows(api: kube.Client, namespace: str | None) -> list[core.Row]:
    """The opted-in workloads of every kind the user may list; a kind forbidden to them is said once
    on stderr and left out (all of them forbidden: the error)."""
    out, forbidden, forbidden_history = [], [], []
    for kind, adapter in workloads.KINDS.items():
        resource = RESOURCES[kind]
        path = f"/apis/apps/v1/namespaces/{namespace}/{resource}" if namespace else f"/apis/apps/v1/{resource}"
        where = f"in namespace {namespace}" if namespace else "in any namespace"
        try:
            items = _list(api, path, what=f"{resource} {where}")
        except Failed as e:
            if not str(e).startswith("forbidden"):
                raise
            forbidden.append(e)
            continue
        for w in items:
            if core.opted_in(w):
                try:
                    history: list[dict[str, Any]] | None = _history(api, kind, w)
                except Failed as e:
                    if not str(e).startswith("forbidden"):
                        raise
                    history = None
                    forbidden_history.append(f"forbidden: cannot read {HISTORY[kind]} {where} (state unknown)")
                out.append(core.row(adapter, w, history))
    if len(forbidden) == len(workloads.KINDS):
        raise forbidden[0]
    for said in [f"{e} (left out)" for e in forbidden] + forbidden_history:
        if said not in _WARNED:
            _WARNED.add(said)
            print(f"warning: {said}", file=sys.stderr)
    return out


def _history(api: kube.Client, kind: str, workload: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return kube.api_for(api, kind).history(workload)
    except kube.ApiError as e:
        raise _refused(api, e, f"cannot read the history of {kind} {workload['metadata']['name']}") from None


def one(api: kube.Client, namespace: str, target: str) -> core.Detail:
    kind_text, _, name = target.rpartition("/")
    kind = kind_of(kind_text) if kind_text else "Deployment"
    adapter = workloads.KINDS[kind]
    try:
        workload = kube.api_for(api, kind).get(namespace, name)
    except kube.ApiError as e:
        if e.status == 404:
            raise Failed(f'{kind.lower()} "{name}" not found in namespace {namespace}') from None
        raise _refused(api, e, f'cannot get {kind.lower()} "{name}" in namespace {namespace}') from None
    if not core.opted_in(workload):
        raise Failed(
            f'{kind.lower()} "{name}" in namespace {namespace} has not opted in to autorollback '
            f"(annotation autorollback.io/enabled=true)"
        )
    history = _history(api, kind, workload)
    try:
        events = api.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/events",
            query={"fieldSelector": f"involvedObject.kind={kind},involvedObject.name={name}"},
        )["items"]
    except kube.ApiError as e:
        if e.status != 403:
            raise
        events = None  # said in the view
    return core.detail(adapter, workload, history, events)


def colour(stream: Any) -> bool:
    """kubectl's rule: colours only on a terminal, never with NO_COLOR set (to anything)."""
    return "NO_COLOR" not in os.environ and bool(getattr(stream, "isatty", lambda: False)())


def draw(value: core.Detail | list[core.Row], output: str, now: dt.datetime, paint: bool, namespace: str) -> str:
    if output != "table":
        return render.structured(value, output)
    if isinstance(value, list):
        return render.table(value, now, paint, namespace)
    return render.detail(value, now, paint)


def main(argv: list[str] | None = None, prog: str = "autorollback status") -> int:
    args = parser(prog).parse_args(argv)
    out = sys.stdout
    try:
        api, context_namespace = connect(args.kubeconfig, args.context)
        namespace = args.namespace or context_namespace
        if args.target and args.all_namespaces:
            raise Failed("a workload's name and -A go not together: name it with -n NAMESPACE")

        def read() -> core.Detail | list[core.Row]:
            if args.target:
                return one(api, namespace, args.target)
            return rows(api, None if args.all_namespaces else namespace)

        value = read()
        shown = "" if args.all_namespaces else namespace
        out.write(draw(value, args.output, _now(), colour(out), shown))
        out.flush()
        if args.watch:
            sources = watched(args.target, None if args.all_namespaces else namespace, value)
            redraw = lambda v: draw(v, args.output, _now(), colour(out), shown)  # noqa: E731
            _watch(api, sources, read, value, redraw, out, "---\n" if args.output == "yaml" else "\n")
    except Failed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except kube.ApiError as e:
        print(f"error: the Kubernetes API answered {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def watched(
    target: str | None, namespace: str | None, value: core.Detail | list[core.Row]
) -> list[tuple[str, dict[str, str]]]:
    """What --watch watches (path, query): the workloads and what the view shows of them (their history
    objects, the Events); for one workload only its own object and Events."""
    where = f"/namespaces/{namespace}" if namespace else ""
    if target and isinstance(value, core.Detail):
        kind, name = value.row.kind, value.row.name
        return [
            (f"/apis/apps/v1{where}/{RESOURCES[kind]}", {"fieldSelector": f"metadata.name={name}"}),
            (f"/apis/apps/v1{where}/{HISTORY[kind]}", {}),
            (f"/api/v1{where}/events", {"fieldSelector": f"involvedObject.kind={kind},involvedObject.name={name}"}),
        ]
    resources = [*RESOURCES.values(), *sorted(set(HISTORY.values()))]
    return [(f"/apis/apps/v1{where}/{r}", {}) for r in resources]


def workload(kind: str, shown: list[set[tuple[str, str, str]]]) -> Callable[[dict[str, Any]], bool]:
    """A workload's change matters when it is opted in or shown (shown[0]: opted out since, deleted);
    any other's shows nothing."""

    def relevant(obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        return (meta.get("namespace"), kind, meta.get("name")) in shown[0] or core.opted_in({**obj, "kind": kind})

    return relevant


def _always(obj: dict[str, Any]) -> bool:
    return True


def follow(
    api: kube.Client,
    path: str,
    query: dict[str, str],
    changed: "queue.Queue[str]",
    stopped: threading.Event,
    relevant: Callable[[dict[str, Any]], bool] = _always,
) -> None:
    """Watch one collection as kubectl get -w does: from the resourceVersion of a list, again from the
    last version seen when the stream ends, from a new list when that version is gone (410). Puts the
    path on `changed` for every `relevant` change and after every list (what happened before it is
    read again); DEGRADED when it cannot watch (not allowed to, or an error). A collection the user
    may not list is not shown either: nothing to watch."""
    version = ""
    delay = 0.0  # the back-off after an error, as client-go's reflector's: BACKOFF doubled up to BACKOFF_MAX
    while not stopped.is_set():
        try:
            if not version:
                try:
                    listed = api.request("GET", path, query={**query, "limit": 1})
                except kube.ApiError as e:
                    if e.status == 403:
                        return  # not shown either (left out, or said in a Note)
                    raise
                version = str((listed.get("metadata") or {}).get("resourceVersion") or "")
                changed.put(path)
            watch = {**query, "resourceVersion": version, "allowWatchBookmarks": "true"}
            for event in api.watch(path, watch, IDLE, stopped):
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":  # 410 Gone (the version is too old) or another Status
                    raise kube.ApiError(int(obj.get("code") or 500), obj.get("reason") or "", obj.get("message") or "")
                delay = 0.0
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if event.get("type") != "BOOKMARK" and relevant(obj):
                    changed.put(path)
        except Exception as e:  # noqa: BLE001 - an ApiError or any other (a malformed line): never the end
            status = e.status if isinstance(e, kube.ApiError) else 0
            if status == 410:
                version = ""
                continue
            changed.put(DEGRADED + path)
            if status == 403:  # may not watch: read again every POLL seconds by the caller
                stopped.wait(FALLBACK)
                continue
            version = ""  # listed again once it answers: the list tells this watch runs again
            delay = min(delay * 2 or BACKOFF, BACKOFF_MAX)
            stopped.wait(delay)


def _watch(
    api: kube.Client,
    sources: list[tuple[str, dict[str, str]]],
    read: Callable[[], core.Detail | list[core.Row]],
    last: core.Detail | list[core.Row],
    draw_: Callable[[core.Detail | list[core.Row]], str],
    out: Any,
    separator: str = "\n",
) -> None:
    """Read again whenever a watched collection changed (at least every FALLBACK seconds; every POLL
    once a watch could not be kept); draw again when what is shown (not its ages) changed. A terminal
    is cleared first; else the drawing is preceded by separator ("---\n": a stream of YAML documents)."""
    seen = json.dumps(render.data(last), sort_keys=True)
    changed: queue.Queue[str] = queue.Queue()
    stopped = threading.Event()
    shown = [_workloads(last)]  # replaced after each read: what a history object must belong to

    def owned(obj: dict[str, Any]) -> bool:
        """A history object of a workload shown (of another one: nothing shown changed)."""
        meta = obj.get("metadata") or {}
        return any(
            (meta.get("namespace"), ref.get("kind"), ref.get("name")) in shown[0]
            for ref in meta.get("ownerReferences") or []
        )

    kinds = {resource: kind for kind, resource in RESOURCES.items()}
    for path, query in sources:
        resource = path.rsplit("/", 1)[-1]
        relevant = (
            owned
            if resource in HISTORY.values()
            else workload(kinds[resource], shown)
            if resource in kinds
            else _always
        )
        threading.Thread(target=follow, args=(api, path, query, changed, stopped, relevant), daemon=True).start()
    degraded: set[str] = set()  # the sources whose watch could not be kept
    stale = ""  # since when a read again fails for want of an answer ("": it does not)
    backoff = 0.0
    try:
        while True:
            try:
                note(changed.get(timeout=backoff or (POLL if degraded else FALLBACK)), degraded)
                stopped.wait(SETTLE)
                while True:  # the rest of the burst
                    note(changed.get_nowait(), degraded)
            except queue.Empty:
                pass
            try:
                value = read()
            except (Unreachable, kube.ApiError) as e:
                if isinstance(e, kube.ApiError) and not transient(e.status):
                    raise
                if not stale:
                    stale = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
                    print(f"warning: stale since {stale}: {_said(e)} (reading again)", file=sys.stderr, flush=True)
                backoff = min(backoff * 2 or POLL, STALE_MAX)
                continue
            if stale:
                stale, backoff, seen = "", 0.0, ""  # drawn again: the warning goes off the screen
            shown[0] = _workloads(value)
            now = json.dumps(render.data(value), sort_keys=True)
            if now == seen:
                continue
            seen = now
            out.write("\x1b[H\x1b[2J" if colour(out) else separator)
            out.write(draw_(value))
            out.flush()
    finally:
        stopped.set()


def note(message: str, degraded: set[str]) -> None:
    """A watch's message: DEGRADED + its path (it could not be kept) or its path (it runs)."""
    if message.startswith(DEGRADED):
        degraded.add(message.removeprefix(DEGRADED))
    else:
        degraded.discard(message)


def transient(status: int) -> bool:
    """No answer, too many requests, or the server's own error: worth reading again."""
    return status in (0, 429) or status >= 500


def _said(e: Exception) -> str:
    return f"the Kubernetes API answered {e}" if isinstance(e, kube.ApiError) else str(e)


def _workloads(value: core.Detail | list[core.Row]) -> set[tuple[str, str, str]]:
    """(namespace, kind, name) of each workload shown."""
    return {(r.namespace, r.kind, r.name) for r in ([value.row] if isinstance(value, core.Detail) else value)}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def plugin() -> int:
    """`kubectl autorollback status ...` (kubectl runs kubectl-autorollback with the rest of the line)."""
    argv = sys.argv[1:]
    if not argv or argv[0] != "status":
        print(
            "usage: kubectl autorollback status [NAME|KIND/NAME] [-n NS | -A] [-o table|json|yaml] [--watch]",
            file=sys.stderr,
        )
        return 1 if argv and argv[0] not in ("-h", "--help") else 0
    return main(argv[1:], prog="kubectl autorollback status")
