"""Alerts that must not fire for a workload (autorollback.io/alerts) against a real Prometheus: an
alert already firing when the new revision's first pod became Ready never rolls it back
(AlertPreexisting, once); one that starts firing after that does, through the same decision."""

import time
from pathlib import Path

import pytest

from . import kit
from .prometheus import Prometheus, alert_rule
from .test_metric_checks import current_rs, mark
from .test_rollback import ON, V1, V2, available, wait_event

ALARM = "app_alarm"
BAKE = "30"


@pytest.fixture
def alerting(operator_factory, prometheus: Prometheus, tmp_path: Path):
    """An operator with Prometheus configured and no check template (alerts need none), for one
    namespace, and the alert rules WebBroken and WebSlow on the exporter's app_alarm series: they
    fire (for: 0s) for the namespace and deployment labels of a series set to 1."""

    def start(ns: str) -> kit.Operator:
        rules = [
            alert_rule(name, f'{ALARM}{{namespace="{ns}",alarm="{name}"}} > 0', labels={"severity": "page"})
            for name in ("WebBroken", "WebSlow")
        ]
        prometheus.load_rules(f"alerts-{ns}", rules)
        return operator_factory(
            "-n",
            ns,
            extra=("--prometheus-url", prometheus.url, "--checkpoint-secret", "autorollback-checkpoint"),
            env={"POD_NAMESPACE": ns},
        )

    return start


def fire(prometheus: Prometheus, ns: str, alert: str, deployment: str = "web") -> None:
    prometheus.exporter.set(ALARM, {"namespace": ns, "deployment": deployment, "alarm": alert}, 1)
    prometheus.wait_for_alert(alert, namespace=ns, deployment=deployment, timeout=30)


def recorded(ns: str, image: str) -> dict | None:
    rs = current_rs(ns, image)
    return rs if mark(rs, "alerts-preexisting") else None


def test_an_alert_already_firing_does_not_roll_back_and_the_bake_passes(
    namespace, alerting, prometheus: Prometheus
) -> None:
    ns = namespace
    alerting(ns)
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    fire(prometheus, ns, "WebBroken")  # the old revision's trouble, say, or the shared database's
    names = {**ON, "autorollback.io/alerts": "WebBroken,WebSlow", "autorollback.io/bake-seconds": BAKE}
    kit.release(ns, "web", V2, annotations=names)
    told = wait_event(ns, "AlertPreexisting", timeout=60)["message"]
    assert "WebBroken" in told and "WebSlow" not in told, told
    rs = current_rs(ns, V2)
    assert mark(rs, "alerts-preexisting") == f"{rs['metadata']['name']} revision 2 WebBroken"
    passed = wait_event(ns, "BakePassed", timeout=120)["message"]
    assert "no alert named fired (WebBroken, WebSlow)" in passed, passed
    assert kit.image_of(kit.get_deployment(ns, "web")) == V2
    assert "RolledBack" not in kit.reasons(ns, "web")
    assert kit.reasons(ns, "web").count("AlertPreexisting") == 1
    assert mark(current_rs(ns, V2), "healthy-at"), "healthy means baked, alerts included"


def test_an_alert_that_starts_firing_after_the_release_rolls_it_back(
    namespace, alerting, prometheus: Prometheus
) -> None:
    ns = namespace
    alerting(ns)
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    fire(prometheus, ns, "WebBroken", deployment="other")  # another workload's alert never counts
    names = {**ON, "autorollback.io/alerts": "WebBroken,WebSlow", "autorollback.io/bake-seconds": "120"}
    kit.release(ns, "web", V2, annotations=names)
    rs = kit.wait_for(lambda: recorded(ns, V2), 60, "the preexisting record")
    assert mark(rs, "alerts-preexisting") == f"{rs['metadata']['name']} revision 2 -"
    time.sleep(2)
    assert "RolledBack" not in kit.reasons(ns, "web")
    fire(prometheus, ns, "WebSlow")
    d = available(ns, V1, 3)
    failed = wait_event(ns, "RolloutFailed")["message"]
    assert "AlertFiring: alert WebSlow firing for revision 2" in failed, failed
    assert d["metadata"]["annotations"]["kubernetes.io/change-cause"].endswith(": AlertFiring")
    bad = current_rs(ns, V2)
    assert mark(bad, "failed-reason").startswith(f"{bad['metadata']['name']} AlertFiring: alert WebSlow")
    assert "AlertPreexisting" not in kit.reasons(ns, "web")
    time.sleep(5)
    assert kit.reasons(ns, "web").count("RolledBack") == 1, "the restored revision is not baked: no ping-pong"


def test_prometheus_stopped_in_the_middle_of_the_bake_never_rolls_back(
    namespace, alerting, prometheus: Prometheus
) -> None:
    ns = namespace
    alerting(ns)
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    names = {**ON, "autorollback.io/alerts": "WebBroken", "autorollback.io/bake-seconds": "45"}
    kit.release(ns, "web", V2, annotations=names)
    kit.wait_for(lambda: recorded(ns, V2), 60, "the preexisting record")
    prometheus.stop()
    told = wait_event(ns, "MetricCheckError", timeout=40)["message"]
    assert "WebBroken could not be read" in told and "never a rollback" in told, told
    prometheus.start()
    assert "no alert named fired (WebBroken)" in wait_event(ns, "BakePassed", timeout=90)["message"]
    assert "RolledBack" not in kit.reasons(ns, "web")
