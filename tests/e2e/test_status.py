"""`autorollback status` end to end: a ServiceAccount that can only read, workloads in each state an
operator leaves them in, the one-line errors, and `--watch` seeing a rollback happen."""

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from . import kit

ON = {"autorollback.io/enabled": "true"}
DRY = {**ON, "autorollback.io/mode": "dry-run"}
V1, V2 = "registry.example/web:1.0.0", "registry.example/web:2.0.0"
STATUS = [sys.executable, "-m", "autorollback.status"]


def read_only(ns: str, path: Path, verbs: tuple[str, ...] = ("get", "list", "watch"), name: str = "reader") -> Path:
    """A kubeconfig for a ServiceAccount allowed get/list/watch (verbs) on what status reads, in ns only."""
    rules = [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments", "replicasets", "statefulsets", "daemonsets", "controllerrevisions"],
            "verbs": list(verbs),
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": list(verbs)},
    ]
    for manifest in (
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name, "namespace": ns},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
        },
    ):
        kit.apply(manifest)
    return kit.token_kubeconfig(ns, name, path)


def status(config: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**_env(), "KUBECONFIG": str(config)}
    return subprocess.run([*STATUS, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "KUBERNETES_SERVICE_HOST")}


def rows(config: Path, ns: str) -> dict[str, dict]:
    r = status(config, "-n", ns, "-o", "json")
    assert r.returncode == 0, r.stderr
    return {i["name"]: i for i in json.loads(r.stdout)["items"]}


def available(ns: str, name: str, image: str, revision: int) -> None:
    def check() -> dict | None:
        d = kit.is_available(ns, name)
        return d if d and kit.image_of(d) == image and kit.revision(d) == revision else None

    kit.wait_for(check, 120, f"{name} available on {image} (revision {revision})")


def test_rows_of_each_state_read_with_read_only_rbac(namespace: str, operator_factory, tmp_path: Path) -> None:
    ns = namespace
    config = read_only(ns, tmp_path / "reader.kubeconfig")
    for name, annotations in (("healthy", ON), ("dry", DRY), ("rolled", ON)):
        kit.release(ns, name, V1, annotations=annotations)
    kit.release(ns, "plain", V1)  # not opted in: not shown
    operator_factory("-n", ns)
    for name in ("healthy", "dry", "rolled"):
        available(ns, name, V1, 1)
    kit.release(ns, "dry", V2, failure="not-ready", annotations=DRY)
    kit.release(ns, "rolled", V2, failure="not-ready", annotations=ON)
    available(ns, "rolled", V1, 3)
    kit.wait_for(lambda: kit.event(ns, "dry", "RollbackPlanned"), 90, "the dry run's RollbackPlanned")
    kit.wait_for(lambda: rows(config, ns)["healthy"]["state"] == "healthy" or None, 60, "healthy marked healthy")
    # rolled back, and the restored revision marked healthy (a rollback not observed yet is shown rolled back too)
    kit.wait_for(
        lambda: (
            (rows(config, ns)["rolled"]["state"], rows(config, ns)["rolled"]["last_healthy"]) == ("rolled back", 3)
            or None
        ),
        60,
        "rolled marked rolled back",
    )

    got = rows(config, ns)
    assert sorted(got) == ["dry", "healthy", "rolled"]
    h, d, r = got["healthy"], got["dry"], got["rolled"]
    assert (h["kind"], h["mode"], h["revision"], h["state"], h["last_healthy"], h["last_rollback"]) == (
        "Deployment",
        "rollback",
        1,
        "healthy",
        1,
        None,
    )
    assert h["watching"] == "deadline 10s"
    assert (d["mode"], d["revision"], d["state"], d["last_healthy"], d["last_rollback"]) == (
        "dry-run",
        2,
        "failed",
        1,
        None,
    )
    assert (r["mode"], r["revision"], r["state"], r["last_healthy"]) == ("rollback", 3, "rolled back", 3)
    assert (r["last_rollback"]["from_revision"], r["last_rollback"]["to_revision"]) == (2, 3)
    assert r["last_rollback"]["reason"] == "ProgressDeadlineExceeded"

    table = status(config, "-n", ns)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "NAMESPACE",
        "KIND/NAME",
        "MODE",
        "WATCHING",
        "REVISION",
        "STATE",
        "LAST",
        "HEALTHY",
        "LAST",
        "ROLLBACK",
        "REVERT",
        "PR",
    ]
    assert [line.split()[1] for line in lines[1:]] == ["deployment/dry", "deployment/healthy", "deployment/rolled"]
    assert "\x1b[" not in table.stdout  # not a terminal: no colours
    assert " 2 -> 3 ProgressDeadlineExceeded" in lines[3]

    detail = status(config, "-n", ns, "deployment/rolled")
    assert detail.returncode == 0, detail.stderr
    assert "State:         rolled back" in detail.stdout
    assert "rolled back away from" in detail.stdout and "healthy-at=revision 3" in detail.stdout
    assert "RolledBack" in detail.stdout and "RolloutFailed" in detail.stdout
    assert "ProgressDeadlineExceeded" in detail.stdout.split("Ledger (newest first):")[1]
    assert "Note:" not in detail.stdout  # the reader could read the Events too


def test_each_error_is_one_line_and_fails(namespace: str, new_namespace, tmp_path: Path) -> None:
    ns, other = namespace, new_namespace()
    config = read_only(ns, tmp_path / "reader.kubeconfig")
    kit.release(ns, "plain", V1)
    kit.release(other, "web", V1, annotations=ON)
    cases = {
        ("-n", ns, "nope"): f'error: deployment "nope" not found in namespace {ns}',
        ("-n", ns, "plain"): f'error: deployment "plain" in namespace {ns} has not opted in to autorollback '
        "(annotation autorollback.io/enabled=true)",
        ("-n", other): f"error: forbidden: cannot read deployments in namespace {other}: ",
        ("-n", other, "web"): f'error: forbidden: cannot get deployment "web" in namespace {other}: ',
        ("-A",): "error: forbidden: cannot read deployments in any namespace: ",
    }
    for args, line in cases.items():
        r = status(config, *args)
        assert r.returncode == 1 and r.stdout == "", (args, r)
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(line), (args, r.stderr)

    refused = json.loads(config.read_text())
    refused["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{kit.free_port()}"
    (tmp_path / "refused").write_text(json.dumps(refused))
    for conf, line in (
        (tmp_path / "refused", "error: cannot reach the Kubernetes API server at https://127.0.0.1:"),
        (tmp_path / "missing", "error: no Kubernetes configuration found ("),
    ):
        r = status(conf, "-n", ns)
        assert r.returncode == 1 and r.stdout == "", r
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(line), r.stderr


class Watching:
    """`status --watch` running: what it drew, line by line."""

    def __init__(self, config: Path, *args: str):
        env = {**_env(), "KUBECONFIG": str(config)}
        self.proc = subprocess.Popen(
            [*STATUS, *args, "--watch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.proc.stdout], daemon=True).start()  # type: ignore[union-attr]

    def until(self, shows: Callable[[str], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.proc.poll() is None, self.proc.stderr.read()  # type: ignore[union-attr]
                continue
            self.seen.append(line)
            if shows(line):
                return
        pytest.fail(f"--watch never showed {what}; it drew:\n{''.join(self.seen)}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def test_watch_sees_a_rollback(namespace: str, operator_factory, tmp_path: Path) -> None:
    """The table and the detail view drawn again on each change, from the API's watches (their bounded
    fallback reads again only every few minutes: without the watches, nothing is drawn again in time)."""
    ns = namespace
    config = read_only(ns, tmp_path / "reader.kubeconfig")
    kit.release(ns, "web", V1, annotations=ON)
    operator_factory("-n", ns)
    available(ns, "web", V1, 1)
    table, detail = Watching(config, "-n", ns), Watching(config, "-n", ns, "deploy/web")

    def row(state: str) -> Callable[[str], bool]:
        return lambda line: line.startswith(ns) and f"  {state}  " in line

    try:
        table.until(row("healthy"), "healthy", 60)
        detail.until(lambda line: line.startswith("State:         healthy"), "healthy", 60)
        kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
        table.until(row("rolling out"), "rolling out", 60)
        table.until(row("rolled back"), "rolled back", 120)
        detail.until(lambda line: line.startswith("State:         rolled back"), "rolled back", 60)
        detail.until(lambda line: "RolledBack" in line, "the RolledBack Event", 60)
    finally:
        table.stop()
        detail.stop()
    assert "2 -> 3 ProgressDeadlineExceeded" in table.seen[-1]


def test_watch_without_the_watch_verb_reads_again_every_few_seconds(namespace: str, tmp_path: Path) -> None:
    ns = namespace
    config = read_only(ns, tmp_path / "lister.kubeconfig", verbs=("get", "list"), name="lister")
    kit.release(ns, "web", V1, annotations=ON)
    table = Watching(config, "-n", ns)
    try:
        table.until(lambda line: " deployment/web " in line, "web", 30)
        time.sleep(5)  # past the reads that follow the first lists
        kit.release(ns, "api", V1, annotations=ON)
        table.until(lambda line: " deployment/api " in line, "api, opted in since", 30)
    finally:
        table.stop()
    assert table.proc.stderr.read() == ""  # type: ignore[union-attr]


def test_installed_as_a_kubectl_plugin(namespace: str, tmp_path: Path) -> None:
    """The wheel without extras installs `kubectl-autorollback` (and `autorollback status`), and none of
    the operator's dependencies: kubectl finds it on PATH; `autorollback run` says what to install."""
    import os

    ns = namespace
    config = read_only(ns, tmp_path / "reader.kubeconfig")
    kit.release(ns, "web", V1, annotations=ON)
    venv = tmp_path / "venv"
    clean = {k: v for k, v in _env().items() if k != "PYTHONPATH"}  # else pip finds the source tree installed
    subprocess.run([kit.ROOT / "hack/install-venv.sh", venv, kit.ROOT], env=clean, check=True, timeout=600)
    env = {**clean, "KUBECONFIG": str(config), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    for argv in ([kit.kubectl_path(), "autorollback", "status"], [str(venv / "bin/autorollback"), "status"]):
        r = subprocess.run([*argv, "-n", ns], capture_output=True, text=True, env=env, timeout=60, check=False)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[1].split()[:4] == [ns, "deployment/web", "rollback", "deadline"]
    installed = {line.split("==")[0].lower() for line in kit.run(str(venv / "bin/pip"), "freeze").stdout.splitlines()}
    assert "kubernetes" in installed
    assert not {"kopf", "pygithub", "python-gitlab", "prometheus-client", "structlog", "promql-parser"} & installed
    run = subprocess.run([venv / "bin/autorollback", "run", "-A"], capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1, run
    assert "pip install 'autorollback[operator]'" in run.stderr


def test_statefulsets_and_daemonsets_in_each_state(namespace: str, operator_factory, tmp_path: Path) -> None:
    """Every kind is shown the same way: a StatefulSet rolled back, a DaemonSet and a StatefulSet still
    rolling out (their measured deadline far away), a DaemonSet failed in dry-run; each healthy before,
    each named as kubectl names it."""
    from . import test_workload_kinds as kinds  # (imported here: it imports test_real_world, which imports this)

    ns = namespace
    config = read_only(ns, tmp_path / "reader.kubeconfig")
    deadline = {"autorollback.io/progress-deadline-seconds": "10"}
    kit.apply(kinds.manifest("statefulset", ns, {**ON, **deadline, "autorollback.io/mode": "rollback"}, "db"))
    kit.apply(kinds.manifest("daemonset", ns, ON, "agent"))  # the default deadline: 600 s
    kit.apply(kinds.manifest("statefulset", ns, {**ON, "autorollback.io/mode": "rollback"}, "queue"))  # 600 s too
    kit.apply(kinds.manifest("daemonset", ns, {**DRY, **deadline}, "probe"))
    operator_factory("-n", ns)
    for name in ("db", "agent", "probe", "queue"):
        kit.wait_for(lambda: rows(config, ns).get(name, {}).get("state") == "healthy" or None, 120, f"{name} healthy")
    got = rows(config, ns)
    assert {n: (r["kind"], r["mode"], r["revision"], r["last_healthy"]) for n, r in got.items()} == {
        "db": ("StatefulSet", "rollback", 1, 1),
        "agent": ("DaemonSet", "rollback", 1, 1),
        "probe": ("DaemonSet", "dry-run", 1, 1),
        "queue": ("StatefulSet", "rollback", 1, 1),
    }
    assert (got["db"]["watching"], got["agent"]["watching"]) == ("deadline 10s", "deadline 600s")

    for kind, name in (("statefulset", "db"), ("daemonset", "agent"), ("daemonset", "probe"), ("statefulset", "queue")):
        kit.kubectl("-n", ns, "patch", f"{kind}/{name}", "--type=strategic", "-p", json.dumps(kinds.BREAK))
    kit.wait_for(lambda: kit.event(ns, "probe", "RollbackPlanned"), 90, "probe's RollbackPlanned")
    kit.wait_for(
        lambda: (rows(config, ns)["db"]["state"], rows(config, ns)["db"]["last_healthy"]) == ("rolled back", 3) or None,
        120,
        "db rolled back",
    )
    got = rows(config, ns)
    db, agent, probe = got["db"], got["agent"], got["probe"]
    assert (db["revision"], db["state"], db["last_healthy"]) == (3, "rolled back", 3)
    assert (db["last_rollback"]["from_revision"], db["last_rollback"]["to_revision"]) == (2, 3)
    assert (agent["revision"], agent["state"], agent["last_healthy"], agent["last_rollback"]) == (
        2,
        "rolling out",
        1,
        None,
    )
    assert (probe["revision"], probe["state"], probe["last_healthy"], probe["last_rollback"]) == (2, "failed", 1, None)
    queue = got["queue"]
    assert (queue["revision"], queue["state"], queue["last_healthy"], queue["last_rollback"]) == (
        2,
        "rolling out",
        1,
        None,
    )

    table = status(config, "-n", ns)
    assert table.returncode == 0, table.stderr
    assert [line.split()[1:3] for line in table.stdout.splitlines()[1:]] == [
        ["daemonset/agent", "rollback"],
        ["daemonset/probe", "dry-run"],
        ["statefulset/db", "rollback"],
        ["statefulset/queue", "rollback"],
    ]
    for target, kind, state in (
        ("sts/db", "StatefulSet", "rolled back"),
        ("statefulset.apps/db", "StatefulSet", "rolled back"),
        ("ds/agent", "DaemonSet", "rolling out"),
        ("daemonsets/probe", "DaemonSet", "failed"),
        ("sts/queue", "StatefulSet", "rolling out"),
    ):
        detail = status(config, "-n", ns, target)
        assert detail.returncode == 0, (target, detail.stderr)
        assert f"Kind:          {kind}" in detail.stdout and f"State:         {state}" in detail.stdout, detail.stdout
        assert "Note:" not in detail.stdout, detail.stdout
    detail = status(config, "-n", ns, "sts/db").stdout
    assert "rolled back away from" in detail and "healthy-at=" in detail and "RolledBack" in detail
    assert "RollbackPlanned" in status(config, "-n", ns, "ds/probe").stdout
    missing = status(config, "-n", ns, "db")  # a bare name is a Deployment
    assert missing.returncode == 1 and missing.stderr == f'error: deployment "db" not found in namespace {ns}\n'
