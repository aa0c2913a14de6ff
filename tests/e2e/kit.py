"""Helpers for end-to-end tests: kubectl, waiting on conditions, manifests, the operator process."""

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def _versions() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (ROOT / "hack/versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    return dict(pairs)


def kubeconfig() -> str:
    return os.environ.get("AUTOROLLBACK_E2E_KUBECONFIG") or str(ROOT / ".cluster/kubeconfig")


def cache() -> Path:
    return Path(
        os.environ.get("AUTOROLLBACK_CACHE")
        or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "autorollback")
    )


def tool(name: str) -> str:
    """A binary that hack/build-tools.sh built for the pinned version."""
    v = _versions()
    folder = {
        "kubectl": f"kubernetes-{v['KUBE_VERSION']}",
        "helm": f"helm-{v['HELM_VERSION']}",
        "promtool": f"prometheus-{v['PROMETHEUS_VERSION']}",
        "prometheus": f"prometheus-server-{v['PROMETHEUS_VERSION']}",
    }[name]
    path = cache() / "bin" / folder / name
    if not path.exists():
        raise AssertionError(f"{path} is missing: run `make tools`")
    return str(path)


def monitoring_crds() -> list[Path]:
    folder = cache() / "crds" / f"prometheus-operator-{_versions()['PROMETHEUS_OPERATOR_VERSION']}"
    return [folder / "servicemonitors.yaml", folder / "prometheusrules.yaml"]


def kubectl_path() -> str:
    return os.environ.get("AUTOROLLBACK_KUBECTL") or tool("kubectl")


def run(
    *argv: str, input: str | None = None, check: bool = True, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv), check=False, input=input, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv[:4])} ... failed ({proc.returncode}): {proc.stderr.strip()}{proc.stdout.strip()[-2000:]}"
        )
    return proc


def kubectl(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(kubectl_path(), "--kubeconfig", kubeconfig(), *args, input=input, check=check, timeout=60)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(tool("helm"), "--kubeconfig", kubeconfig(), *args, check=check, timeout=300)


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json").stdout)


def apply(manifest: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(manifest))


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll check() until it returns something truthy; fail with `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except AssertionError as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), {})


def deployment(
    name: str,
    image: str = "registry.example/app:1.0.0",
    replicas: int = 3,
    failure: str | None = None,
    progress_deadline: int = 10,
    annotations: dict[str, str] | None = None,
    history_limit: int | None = None,
) -> dict[str, Any]:
    """A Deployment whose pods KWOK makes Ready, or fail as the `failure` stage describes."""
    labels = {"app": name}
    if failure:
        labels["autorollback.test/failure"] = failure
    spec: dict[str, Any] = {
        "replicas": replicas,
        "progressDeadlineSeconds": progress_deadline,
        "selector": {"matchLabels": {"app": name}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "app", "image": image}]},
        },
    }
    if history_limit is not None:
        spec["revisionHistoryLimit"] = history_limit
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": spec,
    }


def get_deployment(ns: str, name: str) -> dict[str, Any]:
    return kubectl_json("-n", ns, "get", "deployment", name)


def revision(obj: dict[str, Any]) -> int:
    return int(obj["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", "0"))


def is_available(ns: str, name: str) -> dict[str, Any] | None:
    """The Deployment, once its current generation is fully rolled out and available."""
    d = get_deployment(ns, name)
    return d if is_complete(d) else None


def is_complete(d: dict[str, Any]) -> bool:
    s, want = d.get("status", {}), d["spec"]["replicas"]
    return (
        s.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and s.get("updatedReplicas", 0) == want
        and s.get("availableReplicas", 0) == want
        and s.get("replicas", 0) == want
        and condition(d, "Progressing").get("reason") == "NewReplicaSetAvailable"
    )


def is_failed(ns: str, name: str) -> dict[str, Any] | None:
    """The Deployment, once its current generation ended in ProgressDeadlineExceeded."""
    d = get_deployment(ns, name)
    done = (
        d.get("status", {}).get("observedGeneration", 0) >= d["metadata"]["generation"]
        and condition(d, "Progressing").get("reason") == "ProgressDeadlineExceeded"
    )
    return d if done else None


def replicasets(ns: str, app: str) -> list[dict[str, Any]]:
    return kubectl_json("-n", ns, "get", "replicasets", "-l", f"app={app}")["items"]


def events(ns: str, name: str) -> list[dict[str, Any]]:
    items = kubectl_json("-n", ns, "get", "events", "--field-selector", f"involvedObject.name={name}")["items"]
    return [e for e in items if e.get("source", {}).get("component") == "autorollback"]


_next_port = itertools.count()
PORTS_PER_WORKER = 1000


def free_port() -> int:
    """A port for a test server. Not one the kernel hands out for port 0: any outgoing connection
    can take that before the server binds it. Below the ephemeral range (32768+) and the local
    cluster's ports (327xx), a block of its own per pytest-xdist worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    base = 21000 + (int(worker) % 10 if worker.isdigit() else 0) * PORTS_PER_WORKER
    for _ in range(PORTS_PER_WORKER):
        port = base + next(_next_port) % PORTS_PER_WORKER
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue  # in use, or still in TIME_WAIT
            return port
    raise RuntimeError(f"no free port in {base}-{base + PORTS_PER_WORKER - 1}")


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Operator:
    """`autorollback run` as a child process against the test cluster."""

    def __init__(
        self,
        *scope: str,
        log_path: Path,
        extra: tuple[str, ...] = (),
        config: str | None = None,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ):
        self.metrics_port, self.health_port = free_port(), free_port()
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - the operator's stdout until stop() closes it
        env = {**os.environ, "KUBECONFIG": config or kubeconfig(), **(env or {})}
        self.proc = subprocess.Popen(
            [
                python,
                "-m",
                "autorollback",
                "run",
                *scope,
                "--log-format",
                "json",
                "--metrics-port",
                str(self.metrics_port),
                "--health-port",
                str(self.health_port),
                *extra,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def url(self, path: str) -> str:
        port = self.metrics_port if path == "/metrics" else self.health_port
        return f"http://127.0.0.1:{port}{path}"

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, f"operator exited with {self.proc.returncode}: {self.output()}"
            try:
                return http_get(self.url("/readyz"))[0] == 200
            except OSError:
                return False

        wait_for(ready, timeout, "the operator to become ready")

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.output().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def samples(self, name: str, /, **labels: str) -> list[float]:
        """Values of the samples on /metrics with that name and (at least) those labels (`name=` is a label)."""
        from prometheus_client.parser import text_string_to_metric_families

        _, body = http_get(self.url("/metrics"))
        return [
            s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def metric(self, name: str, /, **labels: str) -> float:
        """The first matching sample's value (0 when absent)."""
        return next(iter(self.samples(name, **labels)), 0.0)

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        self._log.close()
        return self.proc.returncode


def release(
    ns: str,
    name: str,
    image: str,
    failure: str | None = None,
    progress_deadline: int = 10,
    annotations: dict[str, str] | None = None,
    **kw: Any,
) -> None:
    """`kubectl apply` a version of the Deployment, as a person or a GitOps controller would."""
    manifest = deployment(
        name, image=image, failure=failure, progress_deadline=progress_deadline, annotations=annotations, **kw
    )
    manifest["metadata"]["namespace"] = ns
    apply(manifest)


def restarted(ns: str, app: str, times: int) -> bool:
    """Every container of every pod labelled app=`app` (one at least) has restarted `times` times."""
    pods = kubectl_json("-n", ns, "get", "pods", "-l", f"app={app}")["items"]
    return bool(pods) and all(
        (cs.get("restartCount") or 0) >= times
        for p in pods
        for cs in p.get("status", {}).get("containerStatuses") or [{}]
    )


def image_of(d: dict[str, Any]) -> str:
    return d["spec"]["template"]["spec"]["containers"][0]["image"]


def reasons(ns: str, name: str) -> list[str]:
    """Reasons of autorollback's Events on the Deployment, oldest first."""
    items = sorted(events(ns, name), key=lambda e: (e.get("firstTimestamp") or "", e["metadata"]["name"]))
    return [e["reason"] for e in items]


def event(ns: str, name: str, reason: str) -> dict[str, Any] | None:
    return next((e for e in events(ns, name) if e["reason"] == reason), None)


def token_kubeconfig(ns: str, service_account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as a ServiceAccount, with a token from the TokenRequest API."""
    cluster = kubectl_json("config", "view", "--raw", "--minify")["clusters"][0]["cluster"]
    token = kubectl("-n", ns, "create", "token", service_account, "--duration", "1h").stdout.strip()
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": [{"name": "c", "cluster": cluster}],
                "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa", "namespace": ns}}],
                "users": [{"name": "sa", "user": {"token": token}}],
            }
        )
    )
    return path


CLUSTER = ROOT / ".cluster/kwok/clusters/autorollback"


class Component:
    """A control-plane process of the local cluster, to stop and start again as it was started."""

    def __init__(self, name: str):
        self.name = name
        self.pidfile = CLUSTER / "pids" / f"{name}.pid"
        if not self.pidfile.exists():
            raise AssertionError(f"{self.pidfile} is missing: this test needs the local cluster (make cluster-up)")
        pid = self.pid()
        self.argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
        self.cwd = os.readlink(f"/proc/{pid}/cwd")
        self.env = dict(
            kv.decode().split("=", 1) for kv in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in kv
        )

    def pid(self) -> int:
        return int(self.pidfile.read_text().strip())

    def alive(self) -> bool:
        try:
            state = Path(f"/proc/{self.pid()}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            return False
        return state != "Z"

    def stop(self) -> None:
        """SIGKILL, like a crash or a lost node: a SIGTERMed kube-apiserver may hang in shutdown."""
        os.kill(self.pid(), signal.SIGKILL)
        wait_for(lambda: not self.alive(), 30, f"{self.name} to exit", interval=0.1)

    def start(self) -> None:
        with open(CLUSTER / "logs" / f"{self.name}.log", "ab") as log:  # the process keeps its own copy
            proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pidfile.write_text(str(proc.pid))


def api_outage(seconds: float, during: Callable[[], None] | None = None) -> None:
    """Stop kube-apiserver for a while and start it again. The controller-manager and the
    scheduler give up when they cannot renew their leases; they are started again if they did."""
    apiserver = Component("kube-apiserver")
    others = [Component("kube-controller-manager"), Component("kube-scheduler")]
    try:
        apiserver.stop()
        deadline = time.monotonic() + seconds
        if during:
            during()
        time.sleep(max(0.0, deadline - time.monotonic()))
    finally:
        apiserver.start()
        wait_for(lambda: kubectl("get", "--raw", "/readyz", check=False).returncode == 0, 60, "the API server")
        for c in others:
            if not c.alive():
                c.start()
