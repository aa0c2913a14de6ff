"""Scenario `bake500` of `make bench`: metric checks on 500 baking Deployments, measured from outside.

A real Prometheus (hack/build-tools.sh, loopback) scrapes an exporter of this process that carries
one `app_error_ratio` series per live pod of the namespace (a pod watch keeps it current; healthy
value 0.01). The operator runs with `--prometheus-url` pointing at a pass-through proxy of this
process in front of Prometheus, so that every query the checks send is seen here with its answer and
timed on this process's monotonic clock (the proxy adds well under a millisecond). The catalog has one
check: `max(app_error_ratio{namespace=..., pod=~"{{pods}}"}) > 0.05`, intervalSeconds 30, failures 3.

1. BENCH_BAKES (500) Deployments (1 replica, not opted in yet), 2 x 100 opted-in Deployments without
   checks for the deadline waves, all available.
2. Deadline waves without bakes: BENCH_WAVES (10) waves of 10 Deployments broken (not-ready,
   progressDeadlineSeconds 10), spread over one 30 s check interval (one wave every 3 s): ProgressDeadlineExceeded
   seen -> rollback seen, per Deployment.
3. The BENCH_BAKES Deployments opted in with the check and bake-seconds 3600: every one bakes its
   revision for the rest of the run. Once each was evaluated, a quiet 60 s window: queries per second
   (the proxy, the operator's `autorollback_prometheus_queries_total`, Prometheus's own
   `prometheus_http_requests_total{handler="/api/v1/query"}`), evaluations, the operator's API
   requests per evaluation, CPU, RSS, the seconds between two evaluations of one Deployment.
4. Under that load: the same deadline waves on the second 50, and 5 of the baking Deployments go bad
   (a new release whose pods' series become 0.5): the 3rd failing answer the proxy passed back ->
   rollback seen, per Deployment.

Prints a summary; the numbers are written down in bench/README.md.
"""

import http.client
import http.server
import itertools
import json
import os
import re
import statistics
import tempfile
import threading
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from autorollback import kube
from e2e import kit
from e2e.prometheus import Exporter, Prometheus

RATIO = "app_error_ratio"
HEALTHY, BAD, THRESHOLD = 0.01, 0.5, 0.05
INTERVAL = 30
CATALOG = {
    "error-ratio": {
        "query": f'max({RATIO}{{namespace="{{{{namespace}}}}",pod=~"{{{{pods}}}}"}})',
        "failIf": "result > threshold",
        "params": {"threshold": {"default": THRESHOLD, "min": 0, "max": 1}},
        "intervalSeconds": INTERVAL,
        "failures": 3,
    },
}
CHECKS = {
    "autorollback.io/enabled": "true",
    "autorollback.io/checks": "error-ratio",
    "autorollback.io/bake-seconds": "3600",
}
BAKED = re.compile(r"bake-\d{4}")  # the baking Deployments' names, as they appear in their pods' names


class PodSeries(threading.Thread):
    """One series per live pod of the namespace in the exporter: HEALTHY, or BAD for the pods of a
    Deployment in `bad` that run `bad_image`. Kept by a watch (no polling of 500 pods)."""

    def __init__(self, ns: str, exporter: Exporter, api: Callable[[], Any], bad_image: str):
        super().__init__(daemon=True)
        self.ns, self.exporter, self.api, self.bad_image = ns, exporter, api, bad_image
        self.pods: dict[str, tuple[str, str]] = {}  # pod -> (app, image)
        self.bad: set[str] = set()
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def _value(self, app: str, image: str) -> float:
        return BAD if app in self.bad and image == self.bad_image else HEALTHY

    def _put(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        labels = {"namespace": self.ns, "pod": meta["name"]}
        with self.lock:
            if meta.get("deletionTimestamp"):
                self.pods.pop(meta["name"], None)
                self.exporter.remove(RATIO, labels)
                return
            app, image = (meta.get("labels") or {}).get("app", ""), pod["spec"]["containers"][0]["image"]
            self.pods[meta["name"]] = (app, image)
            self.exporter.set(RATIO, labels, self._value(app, image))

    def _drop(self, pod: dict[str, Any]) -> None:
        with self.lock:
            self.pods.pop(pod["metadata"]["name"], None)
            self.exporter.remove(RATIO, {"namespace": self.ns, "pod": pod["metadata"]["name"]})

    def make_bad(self, apps: list[str]) -> None:
        with self.lock:
            self.bad |= set(apps)
            for pod, (app, image) in self.pods.items():
                self.exporter.set(RATIO, {"namespace": self.ns, "pod": pod}, self._value(app, image))

    def run(self) -> None:
        path = f"/api/v1/namespaces/{self.ns}/pods"
        while not self.stopped.is_set():
            page = self.api().request("GET", path)
            for pod in page.get("items") or []:
                self._put(pod)
            version = page["metadata"]["resourceVersion"]
            gone = False
            while not self.stopped.is_set() and not gone:
                for event in self.api().watch(path, {"resourceVersion": version}, 5, self.stopped):
                    if event.get("type") == "ERROR":  # 410: list again
                        gone = True
                        break
                    obj = event.get("object") or {}
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event.get("type") == "DELETED":
                        self._drop(obj)
                    elif event.get("type") in ("ADDED", "MODIFIED"):
                        self._put(obj)


class QueryProxy:
    """Passes the operator's queries on to Prometheus and notes, on this process's monotonic clock,
    when each answer went back, for which baking Deployment, with which value; counts queries in flight."""

    def __init__(self, target_port: int):
        self.lock = threading.Lock()
        self.answers: dict[str, list[tuple[float, float | None]]] = defaultdict(list)  # Deployment -> (t, value)
        self.total = 0
        self.inflight = 0
        self.max_inflight = 0
        self.latency: list[float] = []  # ms, Prometheus's answer as seen through the proxy
        local = threading.local()
        proxy = self

        def upstream() -> http.client.HTTPConnection:
            if getattr(local, "conn", None) is None:
                local.conn = http.client.HTTPConnection("127.0.0.1", target_port, timeout=30)
            return local.conn  # type: ignore[no-any-return]

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the operator's connection pool expects
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    proxy.inflight += 1
                    proxy.max_inflight = max(proxy.max_inflight, proxy.inflight)
                started = time.monotonic()
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
                for attempt in (0, 1):
                    try:
                        conn = upstream()
                        conn.request(self.command, self.path, body=body, headers=headers)
                        r = conn.getresponse()
                        status, ctype, answer = r.status, r.getheader("Content-Type", "application/json"), r.read()
                        break
                    except (OSError, http.client.HTTPException):
                        local.conn = None
                        if attempt:
                            status, ctype, answer = 502, "text/plain", b"bench proxy: Prometheus unreachable\n"
                took = (time.monotonic() - started) * 1000
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                self.wfile.flush()
                now = time.monotonic()
                proxy._note(body, answer, now, took)

            do_GET = do_POST = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.port = kit.free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="bench-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _note(self, body: bytes, answer: bytes, now: float, took: float) -> None:
        query = urllib.parse.parse_qs(body.decode(errors="replace")).get("query", [""])[0]
        found = BAKED.search(query.replace("\\", ""))
        value = None
        try:
            result = json.loads(answer)["data"]["result"]
            value = float(result[0]["value"][1]) if result else None
        except (ValueError, KeyError, IndexError, TypeError):
            pass
        with self.lock:
            self.inflight -= 1
            self.total += 1
            self.latency.append(took)
            if found:
                self.answers[found.group(0)].append((now, value))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def proc_stat(pid: int) -> tuple[float, float, float]:
    """(CPU seconds used, VmRSS MiB, VmHWM MiB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return cpu, int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def prometheus_queries(prom: Prometheus) -> float:
    """Prometheus's own count of instant queries answered (its /metrics, not scraped)."""
    from prometheus_client.parser import text_string_to_metric_families

    _, body = kit.http_get(f"{prom.url}/metrics")
    return sum(
        s.value
        for f in text_string_to_metric_families(body)
        for s in f.samples
        if s.name == "prometheus_http_requests_total" and s.labels.get("handler") == "/api/v1/query"
    )


def q(values: list[float], p: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def summary(values: list[float], unit: str = "ms") -> str:
    if not values:
        return "no samples"
    return (
        f"p50 {q(values, 50):.0f} {unit}, p90 {q(values, 90):.0f} {unit}, p99 {q(values, 99):.0f} {unit}, "
        f"max {max(values):.0f} {unit} (n={len(values)})"
    )


def slow(reactions: list[float], inside: tuple[float, float]) -> str:
    """How many reactions took over 100 ms seen from outside, and inside the operator."""
    count, fast = inside
    return (
        f"over 100 ms: {sum(r > 100 for r in reactions)} seen by the bench, "
        f"{count - fast:.0f} of {count:.0f} inside the operator (its watch event -> patch accepted)"
    )


NODE = "bench-node-0"


def room_for_pods(api: Callable[[], Any]) -> None:
    """The two nodes of `make cluster-up` take 110 pods each (kwokctl's template); this run needs
    more. One more KWOK node (the annotation kwok manages; no status given, so KWOK's node stage
    reports 1M pods), kept for the next run."""
    try:
        api().request("GET", f"/api/v1/nodes/{NODE}")
        return
    except kube.ApiError as e:
        if e.status != 404:
            raise
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux", "type": "kwok"},
        },
    }
    api().request("POST", "/api/v1/nodes", body=node)
    kit.wait_for(
        lambda: any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (api().request("GET", f"/api/v1/nodes/{NODE}").get("status") or {}).get("conditions") or []
        ),
        60,
        f"node {NODE} Ready",
    )


def run(bench: Any, n: int) -> dict[str, Any]:
    """bench: the rollback_bench module (its Watcher, Namespace, api, V1/V2)."""
    api, V1, V2 = bench.api, bench.V1, bench.V2
    waves, per_wave = int(os.environ.get("BENCH_WAVES", "10")), 10
    spacing = INTERVAL / waves
    bad_n = int(os.environ.get("BENCH_BAD", "5"))
    baked = [f"bake-{i:04d}" for i in range(n)]
    bad = baked[:bad_n]
    quiet = [f"dla-{i:03d}" for i in range(waves * per_wave)]
    loaded = [f"dlb-{i:03d}" for i in range(waves * per_wave)]
    room_for_pods(api)
    space = bench.Namespace(f"bake{n}")
    ns = space.ns
    tmp = Path(tempfile.mkdtemp(prefix="bench-bake-"))
    (tmp / "prometheus").mkdir()
    catalog = tmp / "catalog.json"
    catalog.write_text(json.dumps(CATALOG))
    exporter = Exporter()
    prom = Prometheus(tmp / "prometheus", exporter)
    proxy = QueryProxy(prom.port)
    series = PodSeries(ns, exporter, api, V2)
    series.start()
    # the bad ones all fail at once: above the default cluster-wide cap (3 per 600 s), which would skip some
    op = space.operator(
        "--prometheus-url", proxy.url, "--checks-catalog", str(catalog), "--metric-rollbacks-max", "1000"
    )
    watcher = bench.Watcher(ns)
    out: dict[str, Any] = {
        "name": f"{n} Deployments baking (check every {INTERVAL} s), deadline waves and metric rollbacks at once"
    }
    rss_log: list[tuple[float, float]] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(1.0):
            try:
                rss_log.append((time.monotonic(), proc_stat(op.proc.pid)[1]))
            except OSError:
                return

    def evaluations() -> float:
        return sum(op.samples("autorollback_check_evaluations_total"))

    def queries() -> float:
        return sum(op.samples("autorollback_prometheus_queries_total"))

    def inside() -> tuple[float, float]:
        """The operator's own deadline reactions (its watch event -> patch accepted): (count, of them
        within 100 ms), from autorollback_reaction_seconds; a slow reaction seen from outside but fast
        inside was slow on the API server or in the watches."""
        count = sum(op.samples("autorollback_reaction_seconds_count"))
        fast = sum(op.samples("autorollback_reaction_seconds_bucket", le="0.1"))
        return count, fast

    def requests() -> dict[str, float]:
        return {v: sum(op.samples("autorollback_api_requests_total", verb=v)) for v in ("GET", "PATCH", "POST")}

    def create(name: str) -> None:
        opted = not name.startswith("bake-")
        d = kit.deployment(name, image=V1, replicas=1, annotations={"autorollback.io/enabled": "true"} if opted else {})
        api().request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", body=d)

    def all_available(names: list[str], image: str) -> bool:
        items, token = {}, None
        while True:
            page = api().request(
                "GET", f"/apis/apps/v1/namespaces/{ns}/deployments", query={"limit": 500, "continue": token}
            )
            items |= {d["metadata"]["name"]: d for d in page.get("items") or []}
            token = page["metadata"].get("continue")
            if not token:
                break
        return all(x in items and kit.image_of(items[x]) == image and kit.is_complete(items[x]) for x in names)

    def patch(name: str, body: dict[str, Any]) -> None:
        api().request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{ns}/deployments/{name}",
            body=body,
            content_type="application/strategic-merge-patch+json",
        )

    def broken(name: str) -> None:
        patch(
            name,
            {
                "spec": {
                    "template": {
                        "metadata": {"labels": {"autorollback.test/failure": "not-ready"}},
                        "spec": {"containers": [{"name": "app", "image": V2}]},
                    }
                }
            },
        )

    def deadline_waves(names: list[str]) -> tuple[list[float], float, list[float]]:
        """Break the Deployments in waves across one check interval; the reactions (ms), the
        seconds until all were rolled back, and the bench's own GET of a Deployment meanwhile (ms,
        5 a second: how busy the API server is)."""
        probing = threading.Event()
        latency: list[float] = []

        def probe() -> None:
            while not probing.wait(0.2):
                t = time.monotonic()
                api().get_deployment(ns, names[0])
                latency.append((time.monotonic() - t) * 1000)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            for w in range(waves):
                list(pool.map(broken, names[w * per_wave : (w + 1) * per_wave]))
                if w < waves - 1:
                    time.sleep(max(0.0, started + (w + 1) * spacing - time.monotonic()))
        kit.wait_for(lambda: all(x in watcher.rolled_back for x in names), 300, "the deadline rollbacks", 0.5)
        probing.set()
        prober.join()
        reactions = sorted((watcher.rolled_back[x] - watcher.signal[x]) * 1000 for x in names if x in watcher.signal)
        return reactions, max(watcher.rolled_back[x] for x in names) - started, latency

    try:
        op.wait_ready()
        made = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(create, baked + quiet + loaded))
        kit.wait_for(lambda: all_available(baked + quiet + loaded, V1), 900, "every v1 available", 3)
        out["population"] = (
            f"{len(baked)} to bake + {len(quiet) + len(loaded)} for the deadline waves, 1 replica each, "
            f"created and available in {time.monotonic() - made:.0f} s"
        )
        watcher.start()
        watcher.ready.wait(30)
        watcher.armed = True
        threading.Thread(target=sample, daemon=True).start()
        time.sleep(5)

        # 2. deadline waves, nothing baking
        t0, (cpu0, rss0, _) = time.monotonic(), proc_stat(op.proc.pid)
        inside0 = inside()
        quiet_reactions, quiet_done, quiet_api = deadline_waves(quiet)
        quiet_inside = tuple(b - a for a, b in zip(inside0, inside(), strict=True))
        t1, (cpu1, rss_idle, _) = time.monotonic(), proc_stat(op.proc.pid)

        # 3. every baking Deployment opted in with the check; the bad ones get a new (healthy) release
        opted_at, warm0 = time.monotonic(), requests()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda x: patch(x, {"metadata": {"annotations": CHECKS}}), baked))
        with ThreadPoolExecutor(4) as pool:
            list(
                pool.map(
                    lambda x: patch(
                        x, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": V2}]}}}}
                    ),
                    bad,
                )
            )
        gen = {x: api().get_deployment(ns, x)["metadata"]["generation"] for x in bad}
        watcher.generation.update({x: g - 1 for x, g in gen.items()})  # rolled back: generation above the v2 one
        kit.wait_for(lambda: evaluations() >= n, 600, f"every one of the {n} evaluated once", 1)
        first_round, warm1, warm_evals = time.monotonic() - opted_at, requests(), evaluations()
        kit.wait_for(lambda: all_available(bad, V2), 300, "the bad ones' v2 available", 1)

        # the quiet window: bakes only
        time.sleep(5)
        w0 = (time.monotonic(), proxy.total, queries(), prometheus_queries(prom), evaluations(), requests())
        c0 = proc_stat(op.proc.pid)[0]
        pc0 = proc_stat(prom.proc.pid)[0]  # type: ignore[union-attr]
        time.sleep(2 * INTERVAL)
        w1 = (time.monotonic(), proxy.total, queries(), prometheus_queries(prom), evaluations(), requests())
        c1 = proc_stat(op.proc.pid)[0]
        pc1 = proc_stat(prom.proc.pid)[0]  # type: ignore[union-attr]
        rss_quiet = [r for t, r in rss_log if w0[0] <= t <= w1[0]]

        # 4. under that load: bad releases and deadline waves at once
        bad_at = time.monotonic()
        series.make_bad(bad)
        inside0 = inside()
        loaded_reactions, loaded_done, loaded_api = deadline_waves(loaded)
        loaded_inside = tuple(b - a for a, b in zip(inside0, inside(), strict=True))
        kit.wait_for(lambda: all(x in watcher.rolled_back for x in bad), 6 * INTERVAL, "the metric rollbacks", 0.5)
        _, rss_end, peak = proc_stat(op.proc.pid)
        streaks = []
        for x in bad:
            fails = [t for t, v in proxy.answers[x] if t >= bad_at and v is not None and v > THRESHOLD]
            if len(fails) >= 3:
                streaks.append((watcher.rolled_back[x] - fails[2]) * 1000)
        gaps = []
        for answers in proxy.answers.values():
            times_ = [t for t, _ in answers if w0[0] <= t <= w1[0]]
            gaps += [b - a for a, b in itertools.pairwise(times_)]
        span = w1[0] - w0[0]
        per_eval = {v: (w1[5][v] - w0[5][v]) / max(1.0, w1[4] - w0[4]) for v in w0[5]}
        out["deadline waves, nothing baking"] = (
            f"{summary(quiet_reactions)}; {slow(quiet_reactions, quiet_inside)}; all rolled back "
            f"{quiet_done:.1f} s after the first wave; the bench's GET meanwhile {summary(quiet_api)}"
        )
        out["deadline waves, baking"] = (
            f"{summary(loaded_reactions)}; {slow(loaded_reactions, loaded_inside)}; all rolled back "
            f"{loaded_done:.1f} s after the first wave; the bench's GET meanwhile {summary(loaded_api)}"
        )
        out["bake start"] = (
            f"all {n} evaluated once {first_round:.1f} s after the opt-in patches began; meanwhile "
            + ", ".join(f"{v} {warm1[v] - warm0[v]:.0f}" for v in warm0)
            + f" API requests for {warm_evals:.0f} evaluations"
        )
        out["queries per second"] = (
            f"proxy {(w1[1] - w0[1]) / span:.1f}, operator counter {(w1[2] - w0[2]) / span:.1f}, "
            f"Prometheus's /api/v1/query counter {(w1[3] - w0[3]) / span:.1f} "
            f"({n} / {INTERVAL} s = {n / INTERVAL:.1f} expected)"
        )
        out["evaluations"] = (
            f"{(w1[4] - w0[4]) / span:.1f}/s; seconds between two of one Deployment: {summary(gaps, 's')}; "
            f"query latency through the proxy {summary(proxy.latency)}; at most {proxy.max_inflight} queries in flight"
        )
        out["API requests per evaluation"] = ", ".join(f"{v} {c:.2f}" for v, c in per_eval.items()) + (
            " (" + ", ".join(f"{v} {(w1[5][v] - w0[5][v]) / span:.1f}/s" for v in w0[5]) + ")"
        )
        out["CPU"] = (
            f"operator {100 * (cpu1 - cpu0) / (t1 - t0):.0f}% of a core during the quiet waves, "
            f"{100 * (c1 - c0) / span:.0f}% baking; Prometheus {100 * (pc1 - pc0) / span:.0f}% baking"
        )
        out["metric rollbacks"] = (
            f"3rd failing answer -> rollback seen: {summary(streaks)}; bad values -> all {bad_n} rolled back "
            f"{max(watcher.rolled_back[x] for x in bad) - bad_at:.1f} s"
        )
        out["RSS"] = (
            f"before the bakes {rss0:.0f} MiB (after the quiet waves {rss_idle:.0f}), baking "
            f"{min(rss_quiet, default=0):.0f}-{max(rss_quiet, default=0):.0f} MiB, at the end {rss_end:.0f} MiB, "
            f"peak {peak:.0f} MiB"
        )
    finally:
        sampling.set()
        watcher.stopped.set()
        series.stopped.set()
        op.stop(30)
        prom.close()
        proxy.close()
        space.close()
        print(f"   (operator log: {op.log_path}; Prometheus: {tmp})", flush=True)
    return out
