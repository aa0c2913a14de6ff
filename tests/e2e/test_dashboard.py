"""The Grafana dashboard (deploy/grafana-dashboard.json, the chart's ConfigMap): every query of every
panel, its variables expanded, against a real Prometheus scraping a real operator after a failed
rollout was rolled back; and the chart renders the same JSON, only when asked."""

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import kit
from .prometheus import Prometheus
from .test_metric_checks import CATALOG
from .test_real_world import admission_policy
from .test_rollback import ON, V1, V2, available

CHART = kit.ROOT / "charts/autorollback"
DASHBOARD = kit.ROOT / "deploy/grafana-dashboard.json"
EVENTS = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["events"]}
CHECKED = {**ON, "autorollback.io/checks": "error-ratio", "autorollback.io/bake-seconds": "15"}
RATE_INTERVAL = "5m"  # longer than the test: every event falls in the window

# What a query shows after this test's events, when not "data" (at least one sample, no NaN):
# "zero": counters initialised at startup, every sample 0; "parses": a feature the test does not
# exercise (no Git revert): Prometheus accepts the query, whatever it returns.
NOT_DATA = {
    ("Revert pull requests by result", "A"): "zero",
    ("Time to an open revert pull request", "A"): "parses",  # NaN: no observation yet
    ("Time to an open revert pull request", "B"): "parses",
    ("Time to an open revert pull request", "C"): "parses",
}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def queries(board: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) of every target of every panel (rows' panels included)."""
    return [
        (p["title"], target["refId"], target["expr"])
        for panel in board["panels"]
        for p in [panel, *panel.get("panels", [])]
        for target in p.get("targets", [])
    ]


def expand(expr: str, namespace: str, kind: str = "Deployment") -> str:
    out = (
        expr.replace("$__rate_interval", RATE_INTERVAL)
        .replace("$__interval", "1m")
        .replace("$namespace", namespace)
        .replace("$kind", kind)
    )
    assert "$" not in out, f"a variable the test does not expand: {out}"
    return out


def render(*values: str) -> list[dict[str, Any]]:
    out = kit.helm("template", "autorollback", str(CHART), "--namespace", "ops", *values).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def dashboards(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "ConfigMap" and "autorollback.json" in d.get("data", {})]


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39 and board["uid"] == "autorollback"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "kind"):
        assert variables[name]["multi"] and variables[name]["includeAll"]
        assert variables[name]["query"]["query"].startswith("label_values(")
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert all(t["datasource"] == panel["datasource"] for t in panel["targets"])
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert {title for title, _, _ in queries(board)} >= {title for title, _ in NOT_DATA}  # no stale entry


def test_the_chart_renders_the_same_dashboard_only_when_enabled() -> None:
    assert dashboards(render()) == []  # off by default
    (cm,) = dashboards(render("--set", "grafanaDashboard.enabled=true"))
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1" and cm["metadata"]["namespace"] == "ops"
    assert cm["data"]["autorollback.json"] == DASHBOARD.read_text()  # byte for byte, as deploy/ ships it
    assert DASHBOARD.read_text() == (CHART / "files/grafana-dashboard.json").read_text()
    (cm,) = dashboards(
        render(
            "--set",
            "grafanaDashboard.enabled=true",
            "--set",
            "grafanaDashboard.label=example.com/dashboard",
            "--set-string",
            "grafanaDashboard.labelValue=yes",
            "--set",
            "grafanaDashboard.namespace=monitoring",
            "--set",
            "grafanaDashboard.annotations.grafana_folder=Kubernetes",
        )
    )
    assert (
        cm["metadata"]["labels"]["example.com/dashboard"] == "yes"
        and "grafana_dashboard" not in cm["metadata"]["labels"]
    )
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Kubernetes"}
    proc = kit.helm("template", "x", str(CHART), "--set", "grafanaDashboard.enabeld=true", check=False)
    assert proc.returncode != 0 and "additional properties 'enabeld' not allowed" in proc.stderr


def test_every_panel_shows_the_rollback(
    namespace: str, operator_factory, prometheus: Prometheus, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ns = namespace
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(CATALOG))
    op = operator_factory("-n", ns, extra=("--prometheus-url", prometheus.url, "--checks-catalog", str(catalog)))
    prometheus.scrape("autorollback", f"127.0.0.1:{op.metrics_port}")
    # an API error the operator meets: its RolloutFailed Event refused by a real admission policy
    name = f"no-rollout-failed-{ns}"
    admission_policy(ns, name, EVENTS, "object.reason != 'RolloutFailed'")
    request.addfinalizer(
        lambda: kit.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, check=False)
    )
    probe = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "probe", "namespace": ns},
        "involvedObject": {"kind": "Deployment", "name": "web", "namespace": ns},
        "reason": "RolloutFailed",
    }
    kit.wait_for(
        lambda: kit.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False).returncode,
        30,
        "the policy to take effect",
    )
    kit.release(ns, "web", V1, annotations=ON)
    # a metric check bakes another release (no series: its evaluations find no data, the bake is unverified)
    kit.release(ns, "baked", V1, annotations=CHECKED)
    available(ns, V1, 1)
    # the opt-in's zero histograms are scraped before the rollback: its observation is an increase
    prometheus.wait_for_value(f'autorollback_reaction_seconds_count{{namespace="{ns}"}}', 0, timeout=30)
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    available(ns, V1, 3)
    kit.wait_for(
        lambda: op.metric("autorollback_recovery_seconds_count", namespace=ns) == 1, 60, "the recovery to be measured"
    )
    prometheus.wait_for_value(f'autorollback_recovery_seconds_count{{namespace="{ns}"}}', 1, timeout=30)
    kit.wait_for(
        lambda: prometheus.values(f'autorollback_check_evaluations_total{{namespace="{ns}",name="baked"}}'),
        60,
        "baked's check evaluations scraped",
    )

    board = dashboard()
    answers: dict[tuple[str, str], list[tuple[dict[str, str], float]]] = {}
    failures = []
    for title, ref, expr in queries(board):
        promql = expand(expr, ns)
        try:
            samples = prometheus.samples(promql)  # a query Prometheus cannot parse raises here
        except AssertionError as e:
            failures.append(f"{title} [{ref}]: {e}")
            continue
        answers[title, ref] = samples
        want = NOT_DATA.get((title, ref), "data")
        values = [v for _, v in samples]
        if want == "data" and (not values or any(math.isnan(v) for v in values)):
            failures.append(f"{title} [{ref}]: no data: {promql} -> {samples}")
        if want == "zero" and (not values or any(v != 0 for v in values)):
            failures.append(f"{title} [{ref}]: not zero: {promql} -> {samples}")
    assert not failures, "\n".join(failures)

    # and what they show is the rollback: one success, one failed rollout, timings measured
    rollbacks = {(s["result"], s["reason"]): v for s, v in answers["Rollbacks by result and reason", "A"]}
    assert rollbacks == {("success", "ProgressDeadlineExceeded"): 1}
    assert [v for _, v in answers["Failed rollouts", "A"]] == [1]
    for panel in ("Reaction time (deadline exceeded to rollback)", "Recovery time (rollback to fully available)"):
        assert all(v > 0 for ref in "ABC" for _, v in answers[panel, ref]), panel
    assert {s["result"] for s, _ in answers["Prometheus queries by result", "A"]} == {"ok", "error"}
    assert {s["result"]: v > 0 for s, v in answers["Prometheus queries by result", "A"]} == {"ok": True, "error": False}
    errors = {(s["operation"], s["code"]): v for s, v in answers["Kubernetes API requests and errors", "B"]}
    assert errors.get(("post_event", "422"), 0) >= 1 or errors.get(("post_event", "403"), 0) >= 1, errors
    assert {(s["check"], s["result"]) for s, _ in answers["Check evaluations by result", "A"]} == {
        ("error-ratio", "no_data")
    }
    assert {s["result"] for s, _ in answers["Revert pull requests by result", "A"]} == {"opened", "exists", "planned"}
    assert [v for _, v in answers["Leader", "A"]] == [1]
    (last,) = answers["Last automatic rollback", "A"]
    assert last[0]["name"] == "web" and last[1] > 0

    # the variables: their values come from the operator's series, and the namespace filter filters
    variables = {v["name"]: v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"}
    for name, query in variables.items():
        metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", expand(query, ns)).groups()  # type: ignore[union-attr]
        values = prometheus.api(f"/api/v1/label/{label}/values", **{"match[]": metric})
        assert {"namespace": ns, "kind": "Deployment"}[name] in values, (name, values)
    for title, ref, expr in queries(board):
        if "$namespace" in expr and NOT_DATA.get((title, ref), "data") == "data":
            other = prometheus.samples(expand(expr, "another-namespace"))
            assert all(math.isnan(v) for _, v in other), f"{title} [{ref}] is not filtered by namespace: {other}"
