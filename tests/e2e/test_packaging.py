"""Image, alerts and kind config: what can be proven without a container engine or Prometheus."""

import re
import sys
from pathlib import Path

import yaml

from . import kit

ROOT = kit.ROOT
RULES = ROOT / "charts/autorollback/files/prometheus-rules.yaml"


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = kit.run(str(hadolint), "--failure-threshold", "info", str(ROOT / "Dockerfile"), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_shape() -> None:
    text = (ROOT / "Dockerfile").read_text()
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert len(froms) == 2 and all("slim" in f and f.count(":") == 1 and "latest" not in f for f in froms)
    assert 'ENTRYPOINT ["autorollback", "run"]' in text and "USER 10001:10001" in text
    assert "org.opencontainers.image.source" in text and "org.opencontainers.image.version" in text
    assert "RUN ./hack/install-venv.sh /opt/autorollback /src operator" in text  # the next test runs it for real


def test_wheel_installs_into_a_fresh_virtualenv_like_the_image(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    kit.run(str(ROOT / "hack/install-venv.sh"), str(venv), str(ROOT), "operator", timeout=600)
    out = kit.run(str(venv / "bin/autorollback"), "--version").stdout.strip()
    chart = yaml.safe_load((ROOT / "charts/autorollback/Chart.yaml").read_text())
    assert out == f"autorollback {chart['appVersion']}"
    freeze = kit.run(str(venv / "bin/pip"), "freeze").stdout.splitlines()
    pins = {
        line.split("==")[0].lower(): line
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for line in freeze:  # every dependency at the pinned version
        name = re.split(r"[=@ ]", line)[0].lower()
        if name != "autorollback":
            assert pins.get(name) == line, f"{line} is not pinned as in constraints.txt"


def test_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((ROOT / "charts/autorollback/Chart.yaml").read_text())
    project = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{chart["appVersion"]}"' in project


def test_alert_rules_pass_promtool() -> None:
    promtool = kit.tool("promtool")
    for rules in (RULES, ROOT / "deploy/prometheus-rules.yaml"):
        out = kit.run(promtool, "check", "rules", str(rules)).stdout
        assert "SUCCESS: 9 rules found" in out
    out = kit.run(promtool, "test", "rules", "prometheus-rules.test.yaml", cwd=ROOT / "tests/alerts")
    assert "SUCCESS" in out.stdout + out.stderr


def test_every_alert_has_summary_description_and_runbook() -> None:
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    assert names == {
        "AutoRollbackPerformed",
        "AutoRollbackFailed",
        "AutoRollbackLoop",
        "AutoRollbackOperatorDown",
        "AutoRollbackWatchStale",
        "AutoRollbackAPIErrors",
        "AutoRollbackRevertFailed",
        "AutoRollbackNoLeader",
        "AutoRollbackPrometheusUnreachable",
    }
    readme = (ROOT / "README.md").read_text().lower()
    for r in rules:
        assert r["annotations"]["summary"] and r["annotations"]["description"]
        anchor = r["annotations"]["runbook_url"].split("#")[1]
        assert f"### {r['alert'].lower()}" in readme and anchor == r["alert"].lower()
        assert r["labels"]["severity"] in ("warning", "critical")
    assert {r["alert"]: r["labels"]["severity"] for r in rules}["AutoRollbackFailed"] == "critical"


def test_kind_config_has_one_control_plane_and_two_workers() -> None:
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker"]
