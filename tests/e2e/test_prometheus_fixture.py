"""The real-Prometheus fixture the metric-check tests stand on: series per pod set by the test are
queryable within seconds, an alert rule with `for: 0s` fires, and Prometheus can be stopped and
started in the middle of a test."""

import time
import urllib.error
import uuid

import pytest

from .prometheus import Prometheus, PrometheusError, alert_rule


def test_series_alerts_and_a_restart(prometheus: Prometheus) -> None:
    ns = f"prom-smoke-{uuid.uuid4().hex[:5]}"  # only a label value: no Kubernetes namespace needed
    ex = prometheus.exporter
    errors = {"namespace": ns, "pod": "web-7d4b9-a1", "code": "500"}
    ok = {"namespace": ns, "pod": "web-7d4b9-a1", "code": "200"}
    other = {"namespace": ns, "pod": "web-7d4b9-b2", "code": "500"}
    ex.set("http_requests_total", errors, 2)
    ex.set("http_requests_total", ok, 40)
    ex.set("http_requests_total", other, 0)

    # Series per pod, as the test set them.
    start = time.monotonic()
    prometheus.wait_for_value(f'http_requests_total{{namespace="{ns}",pod="web-7d4b9-a1",code="500"}}', 2)
    assert time.monotonic() - start < 10
    by_pod = prometheus.wait_until(f'sum by (pod) (http_requests_total{{namespace="{ns}"}})', lambda s: len(s) == 2)
    assert {s[0]["pod"]: s[1] for s in by_pod} == {"web-7d4b9-a1": 42.0, "web-7d4b9-b2": 0.0}
    assert prometheus.values(f'http_requests_total{{namespace="{ns}",pod="nope"}}') == []

    # An alert rule with for: 0s fires as soon as its expression finds something.
    expr = f'http_requests_total{{namespace="{ns}",code="500"}} > 5'
    prometheus.load_rules("smoke", [alert_rule("SmokeErrors", expr, labels={"severity": "page"})])
    assert prometheus.alerts("SmokeErrors") == []
    ex.set("http_requests_total", errors, 9)
    alert = prometheus.wait_for_alert("SmokeErrors", namespace=ns, pod="web-7d4b9-a1")
    assert alert["labels"]["severity"] == "page" and alert["activeAt"]
    assert prometheus.alerts("SmokeErrors", pod="web-7d4b9-b2") == []
    prometheus.wait_for_value(f'ALERTS{{alertname="SmokeErrors",alertstate="firing",namespace="{ns}"}}', 1)

    # Stopped: the API is unreachable (a URLError, an OSError); started again: same port, same data,
    # rules still loaded.
    prometheus.stop()
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        prometheus.query("up")
    ex.set("http_requests_total", other, 12)
    prometheus.start()
    prometheus.wait_for_value(f'http_requests_total{{namespace="{ns}",pod="web-7d4b9-b2"}}', 12)
    prometheus.wait_for_alert("SmokeErrors", namespace=ns, pod="web-7d4b9-b2")
    prometheus.restart(kill=True)  # a crash (SIGKILL): the WAL keeps what was scraped
    assert prometheus.values(f'http_requests_total{{namespace="{ns}",pod="web-7d4b9-b2"}}') == [12.0]

    # A series removed from the exporter goes stale at the next scrape.
    ex.remove("http_requests_total", errors)
    prometheus.wait_for_value(f'http_requests_total{{namespace="{ns}",pod="web-7d4b9-a1",code="500"}}', None)

    # Errors of the API come back as PrometheusError with Prometheus's errorType.
    with pytest.raises(PrometheusError, match="bad_data"):
        prometheus.query("sum(")
