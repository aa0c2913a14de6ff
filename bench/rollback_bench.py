"""Benchmark: autorollback as a user experiences it, timed from outside in milliseconds.

Usage: .venv/bin/python bench/rollback_bench.py [--scenarios single,burst50,burst200,failfast,scale,memory,bake500]
(or: make bench). Needs the local control plane (make cluster-up). A watcher of its own (a raw watch
on the API, its own monotonic clock) records, per Deployment, when the API first shows the failure
signal and when it first shows the rolled-back template; the reaction is the difference. Results are
written down in bench/README.md with the machine they ran on. It measures; it never fails on a number.
"""

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from e2e import kit

os.environ["KUBECONFIG"] = kit.kubeconfig()
from autorollback import kube

V1, V2 = "registry.example/app:1", "registry.example/app:2"


def rss_mib(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Watcher(threading.Thread):
    """Watches Deployments (and pods) in a namespace; notes when each first shows what we wait for."""

    def __init__(self, ns: str, pods: bool = False):
        super().__init__(daemon=True)
        self.ns, self.pods = ns, pods
        self.signal: dict[str, float] = {}  # Deployment -> the API first showed ProgressDeadlineExceeded
        self.pod_signal: dict[str, float] = {}  # Deployment -> a new pod first showed 3 restarts
        self.rolled_back: dict[str, float] = {}  # Deployment -> the API first showed the v1 template again
        self.generation: dict[str, int] = {}  # Deployment -> generation before the broken apply (reused ones)
        self.armed = False  # set once the broken release is applied
        self.stopped = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        threads = [threading.Thread(target=self._loop, args=("/apis/apps/v1", "deployments"), daemon=True)]
        if self.pods:
            threads.append(threading.Thread(target=self._loop, args=("/api/v1", "pods"), daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _loop(self, group: str, resource: str) -> None:
        path = f"{group}/namespaces/{self.ns}/{resource}"
        version = api().request("GET", path, query={"limit": 1})["metadata"]["resourceVersion"]
        self.ready.set()
        while not self.stopped.is_set():
            for event in api().watch(path, {"resourceVersion": version}, 5, self.stopped):
                now = time.monotonic()
                obj = event.get("object") or {}
                version = obj.get("metadata", {}).get("resourceVersion", version)
                if self.armed and event.get("type") in ("ADDED", "MODIFIED"):
                    (self._deployment if resource == "deployments" else self._pod)(obj, now)

    def _deployment(self, d: dict[str, Any], now: float) -> None:
        name = d["metadata"]["name"]
        c = kit.condition(d, "Progressing")
        if c.get("reason") == "ProgressDeadlineExceeded":
            self.signal.setdefault(name, now)
        if kit.image_of(d) == V1 and d["metadata"].get("generation", 1) > self.generation.get(name, 1) + 1:
            self.rolled_back.setdefault(name, now)

    def _pod(self, p: dict[str, Any], now: float) -> None:
        restarts = max(
            [cs.get("restartCount") or 0 for cs in p.get("status", {}).get("containerStatuses") or []], default=0
        )
        if restarts >= 3 and p["spec"]["containers"][0]["image"] == V2:  # the fail-fast threshold (fail-restarts)
            self.pod_signal.setdefault(p["metadata"]["labels"]["app"], now)

    def reactions_ms(self) -> list[float]:
        return sorted((self.rolled_back[n] - t) * 1000 for n, t in self.signal.items() if n in self.rolled_back)


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return f"p50 {q[49]:.0f} ms, p90 {q[89]:.0f} ms, p99 {q[98]:.0f} ms, max {max(values):.0f} ms (n={len(values)})"


def manifests(
    ns: str,
    names: list[str],
    image: str,
    failure: str | None = None,
    deadline: int = 10,
    annotations: dict[str, str] | None = None,
    replicas: int = 1,
) -> str:
    items = []
    for name in names:
        d = kit.deployment(
            name,
            image=image,
            replicas=replicas,
            failure=failure,
            progress_deadline=deadline,
            annotations=annotations if annotations is not None else {"autorollback.io/enabled": "true"},
        )
        d["metadata"]["namespace"] = ns
        items.append(d)
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def available(ns: str, image: str, names: list[str]) -> bool:
    items = {d["metadata"]["name"]: d for d in kit.kubectl_json("-n", ns, "get", "deployments")["items"]}
    return all(n in items and kit.image_of(items[n]) == image and kit.is_complete(items[n]) for n in names)


class Namespace:
    def __init__(self, label: str):
        self.ns = f"bench-{label}-{int(time.time())}"
        kit.kubectl("create", "namespace", self.ns)
        kit.wait_for(lambda: kit.kubectl("-n", self.ns, "get", "sa", "default", check=False).returncode == 0, 60, "sa")

    def operator(self, *extra: str) -> kit.Operator:
        log = Path(tempfile.mkdtemp()) / "operator.log"
        return kit.Operator("-n", self.ns, log_path=log, extra=("--log-level", "WARNING", *extra))

    def close(self) -> None:
        kit.kubectl("delete", "namespace", self.ns, "--wait=false", check=False)


def requests(op: kit.Operator) -> dict[str, float]:
    return {verb: op.metric("autorollback_api_requests_total", verb=verb) for verb in ("GET", "PATCH", "POST", "WATCH")}


def burst(n: int) -> dict[str, Any]:
    """n Deployments (1 replica, progressDeadlineSeconds 10) broken at once: the deadline path."""
    space = Namespace(f"burst{n}")
    op = space.operator()
    names = [f"app-{i:03d}" for i in range(n)]
    watcher = Watcher(space.ns)
    try:
        op.wait_ready()
        kit.kubectl("apply", "-f", "-", input=manifests(space.ns, names, V1))
        kit.wait_for(lambda: available(space.ns, V1, names), 600, "all v1 available", 2)
        watcher.start()
        watcher.ready.wait(30)
        before = requests(op)
        watcher.armed = True
        broken_at = time.monotonic()
        kit.kubectl("apply", "-f", "-", input=manifests(space.ns, names, V2, failure="not-ready"))
        kit.wait_for(lambda: len(watcher.rolled_back) == n, 900, "all rollbacks", 0.5)
        done = max(watcher.rolled_back.values()) - broken_at
        time.sleep(2)
        after = requests(op)
        rss, peak = rss_mib(op.proc.pid)
    finally:
        watcher.stopped.set()
        op.stop(30)
        space.close()
    per = {verb: (after[verb] - before[verb]) / n for verb in after}
    return {
        "name": f"{n} at once (deadline 10 s)",
        "reaction": percentiles(watcher.reactions_ms()),
        "all rolled back after apply": f"{done:.1f} s",
        "API requests per rollback": ", ".join(f"{v} {c:.1f}" for v, c in per.items() if c),
        "writes per rollback": f"{per['PATCH'] + per['POST']:.1f}",
        "RSS": f"{rss:.0f} MiB (peak {peak:.0f})",
    }


def failfast() -> dict[str, Any]:
    """A crash-looping release, 3 replicas, progressDeadlineSeconds 60: fail-on vs the deadline only."""
    space = Namespace("failfast")
    op = space.operator()
    watcher = Watcher(space.ns, pods=True)
    out: dict[str, Any] = {"name": "crash-looping release, 3 replicas, deadline 60 s"}
    try:
        op.wait_ready()
        watcher.start()
        watcher.ready.wait(30)
        for label, extra in (("fail-on", {"autorollback.io/fail-on": "CrashLoopBackOff"}), ("deadline only", {})):
            name = "fast" if extra else "slow"
            ann = {"autorollback.io/enabled": "true", **extra}
            kit.kubectl(
                "apply", "-f", "-", input=manifests(space.ns, [name], V1, deadline=60, annotations=ann, replicas=3)
            )
            kit.wait_for(lambda: available(space.ns, V1, [name]), 120, "v1", 0.5)
            watcher.armed = True
            broken_at = time.monotonic()
            kit.kubectl(
                "apply",
                "-f",
                "-",
                input=manifests(space.ns, [name], V2, failure="crash", deadline=60, annotations=ann, replicas=3),
            )
            kit.wait_for(lambda: name in watcher.rolled_back, 300, "the rollback", 0.2)
            patched = watcher.rolled_back[name] - broken_at
            kit.wait_for(lambda: available(space.ns, V1, [name]), 300, "available again", 0.2)
            again = time.monotonic() - broken_at
            signal = (watcher.pod_signal if extra else watcher.signal).get(name)
            out[label] = (
                f"rollback visible {patched:.1f} s after the broken apply, available again {again:.1f} s; "
                f"{'3rd restart' if extra else 'ProgressDeadlineExceeded'} -> rollback "
                + (f"{(watcher.rolled_back[name] - signal) * 1000:.0f} ms" if signal else "not seen")
            )
    finally:
        watcher.stopped.set()
        op.stop(30)
        space.close()
    return out


@functools.cache
def api() -> kube.Client:
    """The bench's own connection (the operator under test runs as its own process)."""
    return kube.connect()


def got(ns: str, names: list[str]) -> list[dict[str, Any]]:
    """Those Deployments, read one by one (listing 10,000 to look at 200 would load the cluster)."""
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda n: api().get_deployment(ns, n), names))


def population(ns: str, total: int, opted: int, failing: int, paused: bool = False) -> dict[str, list[str]]:
    """Make sure namespace ns holds `total` Deployments, `opted` of them opted in (the first `failing` of
    those with 1 replica, every other one with 0: the cluster stays light). Kept across runs: creating
    10,000 takes the controller-manager minutes: one ReplicaSet and status writes each, at its 20 requests
    a second). `paused`: the controller only writes their status once (no ReplicaSet)."""
    others = [f"other-{i:05d}" for i in range(total - opted)]
    names = [f"app-{i:04d}" for i in range(opted)]
    if kit.kubectl("get", "namespace", ns, check=False).returncode != 0:
        kit.kubectl("create", "namespace", ns)
    existing: set[str] = set()
    token = None
    while True:
        page = api().request(
            "GET",
            f"/apis/apps/v1/namespaces/{ns}/deployments",
            query={"limit": 500, "continue": token},
            accept=kube.METADATA_ONLY,
        )
        existing |= {item["metadata"]["name"] for item in page.get("items") or []}
        token = page["metadata"].get("continue")
        if not token:
            break

    def create(name: str) -> None:
        opt = name.startswith("app-")
        d = kit.deployment(
            name,
            image=V1,
            replicas=1 if name in names[:failing] else 0,
            annotations={"autorollback.io/enabled": "true"} if opt else {},
        )
        d["spec"]["paused"] = paused
        api().request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", body=d)

    missing = [n for n in names + others if n not in existing]
    with ThreadPoolExecutor(4) as pool:  # a few at once: the control plane shares the two cores
        list(pool.map(create, missing))
    return {"opted": names, "failing": names[:failing], "others": others, "created": missing}


KEEP = os.environ.get("BENCH_KEEP") == "1"  # keep the bench-mem-* namespaces for the next run


def drop(ns: str) -> None:
    if not KEEP:
        kit.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def scoped(*namespaces: str) -> kit.Operator:
    log = Path(tempfile.mkdtemp()) / "operator.log"
    scope = [a for ns in namespaces for a in ("-n", ns)]
    return kit.Operator(*scope, log_path=log, extra=("--log-level", "WARNING"))


def listed(op: kit.Operator, total: int, timeout: float = 600) -> float:
    """Seconds until the operator has seen every Deployment in scope (its watch events counter)."""
    started = time.monotonic()
    op.wait_ready(timeout)
    kit.wait_for(lambda: op.metric("autorollback_watch_events_total") >= total, timeout, "the initial list", 0.05)
    return time.monotonic() - started


def scale(total: int = 10000, opted: int = 1000, failing: int = 200) -> dict[str, Any]:
    """total Deployments in scope (0 replicas), `opted` of them opted in, `failing` of those (1 replica)
    broken at once. The operator starts after they exist: its first list sets the memory it needs."""
    ns = f"bench-mem-{total}"
    made = time.monotonic()
    pop = population(ns, total, opted, failing)
    made = time.monotonic() - made
    names = pop["failing"]
    kit.wait_for(
        lambda: all(kit.image_of(d) == V1 and kit.is_complete(d) for d in got(ns, names)),
        900,
        "the failing Deployments' v1",
        2,
    )
    op = scoped(ns)
    watcher = Watcher(ns)
    try:
        started = time.monotonic()
        op.wait_ready(300)
        ready = time.monotonic() - started
        seen = listed(op, total)
        after_list = rss_mib(op.proc.pid)
        time.sleep(5)
        idle, _ = rss_mib(op.proc.pid)
        watcher.start()
        watcher.ready.wait(30)
        watcher.generation = {d["metadata"]["name"]: d["metadata"].get("generation", 1) for d in got(ns, names)}
        before = requests(op)
        watcher.armed = True
        kit.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
            input=manifests(ns, names, V2, failure="not-ready"),
        )
        kit.wait_for(lambda: len(watcher.rolled_back) == len(names), 900, "all rollbacks", 0.5)
        time.sleep(2)
        after = requests(op)
        rss, peak = rss_mib(op.proc.pid)
    finally:
        watcher.stopped.set()
        op.stop(30)
        drop(ns)
    per = {verb: (after[verb] - before[verb]) / len(names) for verb in after}
    return {
        "name": f"{total} Deployments in scope, {opted} opted in, {failing} of them failing at once",
        "population": f"{len(pop['created'])} created in {made:.0f} s (4 at a time), the rest reused",
        "after start": f"/readyz {ready:.1f} s, all {total} listed and seen {seen:.1f} s",
        "RSS": f"after the list {after_list[0]:.0f} MiB (peak {after_list[1]:.0f}), idle {idle:.0f} MiB, "
        f"after the rollbacks {rss:.0f} MiB, peak {peak:.0f} MiB",
        "reaction": percentiles(watcher.reactions_ms()),
        "API requests per rollback": ", ".join(f"{v} {c:.1f}" for v, c in per.items() if c),
        "writes per rollback": f"{per['PATCH'] + per['POST']:.1f}",
    }


def memory() -> dict[str, Any]:
    """Peak RSS (VmHWM) of a started operator once it has seen everything in scope, for a few
    populations, and the linear fit: MiB = base + a per 1,000 in scope + b per 1,000 opted in."""
    big, many = "bench-mem-10000", "bench-mem-opted-2000"
    empty = "bench-mem-empty"
    population(big, 10000, 1000, 200)
    population(many, 2000, 2000, 0, paused=True)
    if kit.kubectl("get", "namespace", empty, check=False).returncode != 0:
        kit.kubectl("create", "namespace", empty)
    runs = {}
    try:
        for label, spaces, total in (
            ("nothing in scope", (empty,), 0),
            ("10,000 in scope, 1,000 opted in", (big,), 10000),
            ("2,000 in scope, all opted in", (many,), 2000),
            ("12,000 in scope, 3,000 opted in", (big, many), 12000),
        ):
            op = scoped(*spaces)
            try:
                seen = listed(op, total) if total else (op.wait_ready(), 0.0)[1]
                time.sleep(5)
                runs[label] = (*rss_mib(op.proc.pid), seen)
            finally:
                op.stop(30)
    finally:
        for ns in (big, many, empty):
            drop(ns)
    base = runs["nothing in scope"][1]
    b10 = runs["10,000 in scope, 1,000 opted in"][1] - base  # 10 a + 1 b
    b2 = runs["2,000 in scope, all opted in"][1] - base  # 2 a + 2 b
    a = (b10 - b2 / 2) / 9
    b = b2 / 2 - a
    out: dict[str, Any] = {"name": "memory by population (peak RSS once everything is listed)"}
    for label, (rss, peak, seen) in runs.items():
        out[label] = f"RSS {rss:.0f} MiB, peak {peak:.0f} MiB (listed in {seen:.1f} s)"
    predicted = base + 12 * a + 3 * b
    out["fit"] = (
        f"peak = {base:.0f} MiB + {a:.1f} MiB per 1,000 in scope + {b:.1f} MiB per 1,000 opted in "
        f"(12,000/3,000 predicted {predicted:.0f}, measured {runs['12,000 in scope, 3,000 opted in'][1]:.0f})"
    )
    return out


def bake500() -> dict[str, Any]:
    """Metric checks on BENCH_BAKES (500) baking Deployments: see bench/bake_load.py."""
    import bake_load  # bench/, next to this script

    return bake_load.run(sys.modules[__name__], int(os.environ.get("BENCH_BAKES", "500")))


SCENARIOS = {
    "single": lambda: burst(1),
    "burst50": lambda: burst(50),
    "burst200": lambda: burst(200),
    "failfast": failfast,
    "scale": scale,
    "memory": memory,
    "bake500": bake500,
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = p.parse_args()
    api()  # fails early without a cluster
    for name in args.scenarios.split(","):
        result = SCENARIOS[name]()
        print(f"== {result.pop('name')}", flush=True)
        for key, value in result.items():
            print(f"   {key}: {value}", flush=True)


if __name__ == "__main__":
    main()
