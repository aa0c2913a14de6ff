"""A real Prometheus (built by hack/build-tools.sh from the pinned module) on 127.0.0.1, scraping an
exporter in a thread of the test process whose series the test sets, for the metric-check tests.

One Prometheus and one exporter per pytest-xdist worker (session fixture `prometheus_server` in
conftest.py); the `prometheus` fixture hands them to one test at a time and afterwards drops the
test's series and rule groups and starts Prometheus again if the test stopped it. Scrape and rule
evaluation run every second, so a value set by the test is queryable, and an alert rule with
`for: 0s` fires, within about two seconds.
"""

import http.server
import json
import math
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import kit

JOB = "exporter"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Exporter:
    """`GET /metrics` on 127.0.0.1 (a thread of the test process), in the text exposition format.
    The series are exactly those the test set: `set("http_requests_total", {"namespace": ns,
    "pod": "web-abc12-xyz", "code": "500"}, 7)`. Prometheus scrapes it with `honor_labels: true`,
    so `namespace`, `pod`, `job`, `instance` are kept as given. A series removed here goes stale in
    Prometheus at the next scrape (it disappears from instant queries at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.scrapes = 0
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.body().encode() if self.path.split("?")[0] == "/metrics" else b"not found\n"
                self.send_response(200 if self.path.split("?")[0] == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with exporter._lock:
                    exporter.scrapes += 1

            def log_message(self, *args: Any) -> None:  # quiet: one line a second otherwise
                pass

        self.port = kit.free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="test-exporter", daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @staticmethod
    def _key(name: str, labels: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
        return name, tuple(sorted(labels.items()))

    def set(self, name: str, labels: Mapping[str, str], value: float) -> None:
        """Expose this series with this value (a new series, or a new value of it)."""
        with self._lock:
            self._series[self._key(name, labels)] = float(value)

    def inc(self, name: str, labels: Mapping[str, str], by: float = 1) -> float:
        """Add to a series (a counter; 0 when new); returns the new value."""
        with self._lock:
            key = self._key(name, labels)
            self._series[key] = self._series.get(key, 0.0) + by
            return self._series[key]

    def get(self, name: str, labels: Mapping[str, str]) -> float | None:
        with self._lock:
            return self._series.get(self._key(name, labels))

    def remove(self, name: str, labels: Mapping[str, str]) -> None:
        """Stop exposing this series (as when its pod is gone)."""
        with self._lock:
            self._series.pop(self._key(name, labels), None)

    def clear(self, **labels: str) -> None:
        """Stop exposing every series that has these labels (all series when none are given)."""
        with self._lock:
            for key in [k for k in self._series if labels.items() <= dict(k[1]).items()]:
                del self._series[key]

    def body(self) -> str:
        with self._lock:
            items = sorted(self._series.items())
        lines = []
        for (name, labels), value in items:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{name}{{{inner}}} {_number(value)}" if inner else f"{name} {_number(value)}")
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def alert_rule(
    name: str,
    expr: str,
    for_: str = "0s",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An alerting rule for `Prometheus.load_rules`; `for: 0s` fires at the first evaluation that finds it."""
    rule: dict[str, Any] = {"alert": name, "expr": expr, "for": for_}
    if labels:
        rule["labels"] = dict(labels)
    if annotations:
        rule["annotations"] = dict(annotations)
    return rule


class _Exited(Exception):
    """The process ended while we waited for it (not an AssertionError: kit.wait_for retries those)."""


class PrometheusError(AssertionError):
    """The API answered `status: error` (errorType and error in the message), or not as JSON."""


class Prometheus:
    """The prometheus process (loopback, a port of this xdist worker's block, TSDB in `tmp`) and
    the exporter it scrapes. stop()/start() keep the port and the TSDB, as a restart would."""

    def __init__(self, tmp: Path, exporter: Exporter, retention: str = "1h", ready_timeout: float = 60):
        self.tmp, self.exporter, self.ready_timeout = tmp, exporter, ready_timeout
        self.rules_dir = tmp / "rules"
        self.rules_dir.mkdir(parents=True, exist_ok=True)
        self.config = tmp / "prometheus.yml"
        self.log_path = tmp / "prometheus.log"
        self.query_log = tmp / "queries.log"  # every query the engine ran (JSON lines), for "never ran"
        self.port = kit.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.targets: dict[str, str] = {}  # job -> address: scraped besides the exporter (see scrape())
        self._write_config()
        self.argv = [
            kit.tool("prometheus"),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--storage.tsdb.retention.time={retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            # Hidden flag (cmd/prometheus/main.go): the scrape manager takes new targets after 5 s
            # by default, which would be most of the start-up time.
            "--scrape.discovery-reload-interval=200ms",
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def _write_config(self) -> None:
        # JSON is YAML: no YAML library needed.
        jobs = [{"job_name": JOB, "honor_labels": True, "static_configs": [{"targets": [self.exporter.address]}]}]
        jobs += [{"job_name": job, "static_configs": [{"targets": [address]}]} for job, address in self.targets.items()]
        self.config.write_text(
            json.dumps(
                {
                    "global": {
                        "scrape_interval": "1s",
                        "scrape_timeout": "1s",
                        "evaluation_interval": "1s",
                        "query_log_file": str(self.query_log),
                    },
                    "rule_files": [str(self.rules_dir / "*.yml")],
                    "scrape_configs": jobs,
                },
                indent=2,
            )
        )

    def scrape(self, job: str, address: str, timeout: float = 30) -> None:
        """Scrape one more target (e.g. an operator's /metrics) as `job`, as a ServiceMonitor would
        (target labels job and instance; honor_labels off); wait until `up` is 1 for it. Dropped by reset()."""
        self.targets[job] = address
        self._write_config()
        self.reload()
        self.wait_for_value(f'up{{job="{job}"}}', 1, timeout)

    # -- the process --------------------------------------------------------------------------

    def start(self) -> None:
        """Start it (again) and wait until it is ready and has scraped the exporter once."""
        assert not self.running(), "Prometheus is already running"
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            log.write(f"--- start {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            scrapes = self.exporter.scrapes
            self.proc = subprocess.Popen(self.argv, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT)
        self.wait_ready(scrapes)

    def queries(self, containing: str) -> list[str]:
        """The queries Prometheus's engine ran (its query log) whose text contains `containing`."""
        if not self.query_log.exists():
            return []
        found = []
        for line in self.query_log.read_text(errors="replace").splitlines():
            try:
                query = json.loads(line).get("params", {}).get("query", "")
            except ValueError:
                continue
            if containing in query:
                found.append(query)
        return found

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, kill: bool = False, timeout: float = 30) -> None:
        """SIGTERM (a clean shutdown) and wait for the exit; kill=True: SIGKILL, like a crash."""
        if not self.running():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"Prometheus did not stop in {timeout}s:\n{self.log_tail()}") from None

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def log_tail(self, chars: int = 4000) -> str:
        """The log of the last start: its head (flag errors come first) and its tail."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        text = text[text.rfind("--- start") :]
        return text if len(text) <= chars else f"{text[: chars // 3]}\n[...]\n{text[-(chars - chars // 3) :]}"

    def wait_ready(self, scrapes_before: int | None = None) -> None:
        """Until /-/ready answers 200, the exporter was scraped (again) and `up` is 1; else fail
        with the log tail."""

        def ready() -> bool:
            if not self.running():
                raise _Exited(self.proc.returncode if self.proc else None)
            if scrapes_before is not None and self.exporter.scrapes <= scrapes_before:
                return False
            try:
                if kit.http_get(f"{self.url}/-/ready")[0] != 200:
                    return False
                return self.values(f'up{{job="{JOB}"}}') == [1.0]
            except OSError:
                return False

        try:
            kit.wait_for(ready, self.ready_timeout, f"Prometheus at {self.url} to be ready and scrape", interval=0.2)
        except _Exited as e:
            raise AssertionError(f"Prometheus exited ({e.args[0]}); log tail:\n{self.log_tail()}") from None
        except AssertionError as e:
            raise AssertionError(f"{e}\nPrometheus log tail:\n{self.log_tail()}") from None

    # -- rules -------------------------------------------------------------------------------

    def load_rules(self, group: str, rules: list[dict[str, Any]], interval: str = "1s") -> None:
        """Write one rule group (file rules/<group>.yml), reload, and wait until Prometheus has it."""
        body = {"groups": [{"name": group, "interval": interval, "rules": rules}]}
        (self.rules_dir / f"{group}.yml").write_text(json.dumps(body, indent=2))
        self.reload()
        kit.wait_for(lambda: group in self.rule_groups(), 15, f"rule group {group} to be loaded")

    def unload_rules(self, group: str | None = None) -> None:
        """Remove one rule group (every group when None) and reload."""
        files = [self.rules_dir / f"{group}.yml"] if group else list(self.rules_dir.glob("*.yml"))
        if not any(f.exists() for f in files):
            return
        for f in files:
            f.unlink(missing_ok=True)
        self.reload()

    def reload(self) -> None:
        """POST /-/reload (needs --web.enable-lifecycle): config and rule files read again."""
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, body = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read().decode()
        if status != 200:
            raise AssertionError(f"reload failed ({status}): {body}\n{self.log_tail(2000)}")

    def rule_groups(self) -> list[str]:
        return [g["name"] for g in self.api("/api/v1/rules")["groups"]]

    # -- the HTTP API ------------------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        """GET an /api/v1 path; its `data`, or PrometheusError. Connection errors are OSError."""
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
        try:
            doc = json.loads(raw)
        except ValueError:
            raise PrometheusError(f"{path}: not JSON: {raw[:300]!r}") from None
        if doc.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]

    def query(self, promql: str, at: float | None = None) -> dict[str, Any]:
        """An instant query: {"resultType": ..., "result": ...}."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("/api/v1/query", **params)  # type: ignore[no-any-return]

    def samples(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """An instant vector's samples as (labels, value), or a scalar as ({}, value)."""
        data = self.query(promql)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        assert data["resultType"] == "vector", data
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def values(self, promql: str) -> list[float]:
        """The values of the query's samples, sorted."""
        return sorted(v for _, v in self.samples(promql))

    def wait_for_value(self, promql: str, expected: float | None, timeout: float = 15) -> list[float]:
        """Poll until the query returns exactly one sample equal to `expected` (NaN matches NaN),
        or no sample at all when expected is None; else fail with the last answer."""

        def check() -> list[float] | bool:
            vals = self.values(promql)
            if expected is None:
                return not vals
            ok = len(vals) == 1 and (
                math.isnan(vals[0]) if math.isnan(expected) else math.isclose(vals[0], expected, rel_tol=1e-9)
            )
            return vals if ok else False

        result = kit.wait_for(check, timeout, f"{promql} to be {expected}", interval=0.25)
        return result if isinstance(result, list) else []

    def wait_until(
        self, promql: str, check: Callable[[list[tuple[dict[str, str], float]]], bool], timeout: float = 15
    ) -> list[tuple[dict[str, str], float]]:
        """Poll until check(samples) is true; returns those samples."""

        def ok() -> tuple[list[tuple[dict[str, str], float]]] | None:
            samples = self.samples(promql)
            return (samples,) if check(samples) else None  # a 1-tuple: true even when samples == []

        return kit.wait_for(ok, timeout, f"the check on {promql}", interval=0.25)[0]

    def alerts(self, name: str | None = None, state: str | None = None, **labels: str) -> list[dict[str, Any]]:
        """GET /api/v1/alerts, filtered here (the API has no filter): alertname, state
        (pending|firing) and labels."""
        return [
            a
            for a in self.api("/api/v1/alerts")["alerts"]
            if (name is None or a["labels"].get("alertname") == name)
            and (state is None or a["state"] == state)
            and all(a["labels"].get(k) == v for k, v in labels.items())
        ]

    def wait_for_alert(self, name: str, state: str = "firing", timeout: float = 15, **labels: str) -> dict[str, Any]:
        """The first alert with that name, state and labels, once /api/v1/alerts shows it."""
        found = kit.wait_for(lambda: self.alerts(name, state, **labels), timeout, f"alert {name} {labels} {state}")
        return found[0]

    # -- between tests -------------------------------------------------------------------------

    def reset(self) -> None:
        """What the next test expects: running, no rule groups, no exporter series."""
        self.exporter.clear()
        if not self.running():
            self.start()
        self.unload_rules()
        if self.targets:
            self.targets.clear()
            self._write_config()
            self.reload()

    def close(self) -> None:
        self.stop()
        self.exporter.close()
