"""`autorollback run` as a process: endpoints, logging, clean shutdown."""

import json
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from . import kit


@pytest.fixture
def read_only_kubeconfig(namespace: str, tmp_path) -> Iterator[str]:
    """Cluster-wide read access and nothing else: an `-A` operator in a shared test cluster must not
    act on the Deployments of tests running in parallel."""
    name = f"autorollback-readonly-{namespace}"
    kit.kubectl("-n", namespace, "create", "serviceaccount", "reader")
    kit.kubectl("create", "clusterrole", name, "--verb=get,list,watch", "--resource=deployments.apps,replicasets.apps")
    kit.kubectl("create", "clusterrolebinding", name, f"--clusterrole={name}", f"--serviceaccount={namespace}:reader")
    yield str(kit.token_kubeconfig(namespace, "reader", tmp_path / "reader.kubeconfig"))
    kit.kubectl("delete", "clusterrolebinding,clusterrole", name, check=False)


def test_run_all_namespaces_serves_endpoints_and_stops_on_sigterm(operator_factory, read_only_kubeconfig) -> None:
    op = operator_factory("-A", config=read_only_kubeconfig)
    status, body = kit.http_get(op.url("/metrics"))
    assert status == 200 and "autorollback_build_info" in body and "autorollback_watch_events_total" in body
    status, body = kit.http_get(op.url("/healthz"))
    assert status == 200 and json.loads(body)["ok"] is True

    op.proc.send_signal(signal.SIGTERM)
    op.proc.wait(timeout=10)  # raises if it takes longer
    assert op.proc.returncode == 0, op.output()
    lines = op.lines()
    assert lines, op.output()
    assert all("event" in line and "level" in line for line in lines)  # every line is structured
    assert any(line.get("logger", "").startswith("kopf") for line in lines)  # kopf's lines too
    messages = [(line.get("timestamp"), line["event"]) for line in lines]
    assert len(messages) == len(set(messages)), "a record was logged twice"
    assert any(line["event"] == "operator stopped" for line in lines)


def test_unreachable_api_server_is_one_clear_line(tmp_path) -> None:
    cfg = tmp_path / "kubeconfig"
    port = kit.free_port()
    cfg.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "autorollback", "run", "-A"],
        capture_output=True,
        text=True,
        check=False,
        env={"KUBECONFIG": str(cfg), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"cannot reach the Kubernetes API server at https://127.0.0.1:{port}" in proc.stderr


def test_missing_kubeconfig_is_one_clear_line(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "autorollback", "run", "-A"],
        capture_output=True,
        text=True,
        check=False,
        env={"KUBECONFIG": str(tmp_path / "absent"), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("autorollback: error: no Kubernetes configuration found")
    assert proc.stderr.count("\n") == 1
