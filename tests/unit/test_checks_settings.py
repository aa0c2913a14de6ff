"""The metric checks' operator configuration: the flags (cli.py), checks.settings and the catalog file."""

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from autorollback import cli
from autorollback.checks import settings as s

CATALOG_YAML = """\
# the platform's templates (a ConfigMap mounted as a file)
error-ratio:
  query: >-
    sum(rate(http_requests_total{namespace="{{namespace}}",pod=~"{{pods}}",code=~"5.."}[{{window}}]))
    / sum(rate(http_requests_total{namespace="{{namespace}}",pod=~"{{pods}}"}[{{window}}]))
  failIf: result > threshold
  params: {threshold: {default: 0.05, min: 0, max: 0.5}}
p99-latency: '{"query": "histogram_quantile(0.99, sum by (le) (rate(h_bucket{namespace=\\"{{namespace}}\\"}[5m])))", "failIf": "result > 0.5"}'
everything:
  query: sum(rate(http_requests_total[5m]))
  failIf: result > 1
Bad_Name:
  query: up{namespace="{{namespace}}"}
  failIf: result < 1
typo:
  query: up{namespace="{{namespace}}"}
  failif: result < 1
"""


def args(*argv: str) -> "cli.argparse.Namespace":
    return cli.parser().parse_args(["run", "-A", *argv])


def test_defaults_leave_checks_off() -> None:
    settings = cli.checks_settings(args())
    assert settings == s.ChecksSettings()
    assert settings.prometheus is None and not settings.enabled
    assert settings.alert_labels == ("namespace", "deployment") and settings.alertmanager_url is None
    assert (settings.max_rollbacks, settings.rollbacks_window, settings.promql_namespaces) == (3, 600.0, frozenset())
    assert "prometheus.url" in settings.missing() and "checks.catalog" in settings.missing()


def test_every_flag(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG_YAML.split("everything:", maxsplit=1)[0])
    settings = cli.checks_settings(
        args(
            "--prometheus-url=https://prometheus.monitoring.svc:9090/prom/",
            "--prometheus-bearer-token-file=/var/run/secrets/prometheus/token",
            "--prometheus-ca-file=/etc/autorollback/prometheus-ca/ca.crt",
            "--prometheus-timeout=2.5",
            f"--checks-catalog={catalog}",
            "--checks-promql-namespaces=shop, payments",
            "--checks-promql-namespaces=data",
            "--alert-labels=namespace,app",
            "--alertmanager-url=http://alertmanager-operated.monitoring.svc:9093",
            "--metric-rollbacks-max=5",
            "--metric-rollbacks-window=1800",
        )
    )
    assert settings.prometheus == s.PrometheusSettings(
        "https://prometheus.monitoring.svc:9090/prom",  # no trailing /: the client appends /api/v1/query
        "/var/run/secrets/prometheus/token",
        "/etc/autorollback/prometheus-ca/ca.crt",
        2.5,
    )
    assert sorted(settings.catalog.templates) == ["error-ratio", "p99-latency"] and not settings.catalog.errors
    assert settings.enabled and settings.missing() == ""
    assert settings.promql_namespaces == frozenset({"shop", "payments", "data"})
    assert settings.alert_labels == ("namespace", "app")
    assert settings.alertmanager_url == "http://alertmanager-operated.monitoring.svc:9093"
    assert (settings.max_rollbacks, settings.rollbacks_window) == (5, 1800.0)
    assert args().prometheus_timeout == 10.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--prometheus-url=prometheus:9090"], "is not an http(s) URL"),
        (["--prometheus-url=ftp://prometheus"], "is not an http(s) URL"),
        (["--prometheus-url=http://admin:secret@prometheus:9090"], "must not hold credentials"),
        (["--prometheus-url=http://prometheus:9090/?x=1"], "must not have a query"),
        (["--prometheus-url=http://prometheus:port"], "is not an http(s) URL"),
        (["--prometheus-timeout=0"], "is not a timeout"),
        (["--prometheus-timeout=ten"], "is not a timeout"),
        (["--prometheus-timeout=301"], "is not a timeout"),
        (["--alert-labels=namespace,deployment-name"], "is not a label name"),
        (["--alert-labels="], "is not a label name"),
        (["--alert-labels=namespace,namespace"], "names a label twice"),
        (["--alertmanager-url=alertmanager:9093"], "the Alertmanager URL"),
        (["--checks-promql-namespaces=team-*"], "patterns are not supported"),
        (["--metric-rollbacks-max=0"], "is not a whole number"),
        (["--metric-rollbacks-window=-5"], "is not a number of seconds"),
    ],
)
def test_bad_flags_are_refused_with_what_to_write(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        args(*argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_a_bad_catalog_entry_is_left_out_and_logged(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG_YAML)
    with capture_logs() as logged:
        settings = cli.checks_settings(args("--prometheus-url=http://127.0.0.1:9090", f"--checks-catalog={catalog}"))
    assert sorted(settings.catalog.templates) == ["error-ratio", "p99-latency"]  # the good ones run
    errors = settings.catalog.errors
    assert len(errors) == 3
    by_entry = {e.split(":", 1)[0]: e for e in errors}
    assert "namespace" in by_entry['check "everything"']  # the unscoped selector: what to write
    assert "lowercase letters" in by_entry['check "Bad_Name"']
    assert "unknown keys" in by_entry['check "typo"'] and "failIf" in by_entry['check "typo"']
    refused = [line for line in logged if line["event"] == "check catalog: entry left out"]
    assert [line["error"] for line in refused] == list(errors)  # one line per entry: its name, what to write
    assert all(line["log_level"] == "error" and line["file"] == str(catalog) for line in refused)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("error-ratio: [unclosed", "not valid YAML at line 1"),
        ("- a\n- b\n", "must be a mapping of check name to template"),
        ("just text", "must be a mapping of check name to template"),
        ("x" * (s.MAX_CATALOG_BYTES + 1), "larger than"),
    ],
)
def test_a_catalog_that_is_not_a_mapping_loads_nothing(text: str, error: str) -> None:
    catalog = s.parse_catalog_text(text)
    assert catalog.templates == {} and len(catalog.errors) == 1 and error in catalog.errors[0]


def test_an_empty_catalog_is_no_error() -> None:
    assert s.parse_catalog_text("") == s.parse_catalog_text("# nothing yet\n") == s.templates.Catalog({})


def test_an_unreadable_catalog_file_keeps_the_operator_running(tmp_path: Path) -> None:
    settings = cli.checks_settings(args(f"--checks-catalog={tmp_path / 'absent.yaml'}"))
    assert settings.catalog.templates == {} and "FileNotFoundError" in settings.catalog.errors[0]
    assert "--prometheus-url" in settings.missing()


def test_json_is_accepted_too() -> None:
    text = '{"up": {"query": "min(up{namespace=\\"{{namespace}}\\"})", "failIf": "result < 1"}}'
    assert list(s.parse_catalog_text(text).templates) == ["up"]


def test_namespaces_allowed_their_own_promql_enable_checks_without_a_catalog() -> None:
    settings = cli.checks_settings(args("--prometheus-url", "http://p:9090", "--checks-promql-namespaces", "team-a"))
    assert settings.promql_namespaces == frozenset({"team-a"}) and settings.enabled and settings.missing() == ""
