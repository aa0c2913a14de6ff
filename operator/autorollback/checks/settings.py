"""What the platform configured for metric checks (operator flags, never annotations). Pure.

`ChecksSettings` is built once by cli.py from the `--prometheus-*`, `--checks-*`, `--alert*` and
`--metric-rollbacks-*` flags and reaches the shell as `Context.checks`. The catalog file (a
ConfigMap mounted by the chart) is parsed here from its text: a YAML (or JSON) mapping of check
name -> template (see `templates`). An entry that is wrong is left out, with an error naming it and
saying what to write; a file that is not a mapping gives an empty catalog and one such error.
"""

import re
import urllib.parse
from dataclasses import dataclass, field

import yaml  # type: ignore[import-untyped]  # PyYAML ships no types

from autorollback.checks import templates
from autorollback.config import quote

TIMEOUT = 10.0  # seconds, the default of --prometheus-timeout
MAX_TIMEOUT = 300.0
ALERT_LABELS = ("namespace", "deployment")
MAX_ROLLBACKS, ROLLBACKS_WINDOW = 3, 600.0  # metric-triggered rollbacks per window, cluster-wide
MAX_CATALOG_BYTES = 1 << 20
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")  # a Prometheus label name


@dataclass(frozen=True)
class PrometheusSettings:
    """Where Prometheus is and how to ask it (checks.prometheus.Client)."""

    url: str  # http(s)://host[:port][/path prefix], no credentials, no query
    bearer_token_file: str | None = None  # read at use, again whenever the file changes
    ca_file: str | None = None  # PEM bundle that verifies Prometheus's certificate; None: the system's
    timeout: float = TIMEOUT  # seconds, one query end to end (Prometheus is asked to stop a bit sooner)


@dataclass(frozen=True)
class ChecksSettings:
    """The platform's metric-check configuration. Without `prometheus` no check can run."""

    prometheus: PrometheusSettings | None = None
    catalog: templates.Catalog = field(default_factory=lambda: templates.Catalog({}))
    promql_namespaces: frozenset[str] = frozenset()  # namespaces whose tenants may write their own PromQL
    alert_labels: tuple[str, ...] = ALERT_LABELS  # the alert labels that tie an alert to a workload
    alertmanager_url: str | None = None
    max_rollbacks: int = MAX_ROLLBACKS  # metric-triggered rollbacks allowed in any window, cluster-wide
    rollbacks_window: float = ROLLBACKS_WINDOW  # seconds

    @property
    def enabled(self) -> bool:
        return self.prometheus is not None and bool(self.catalog.templates or self.promql_namespaces)

    def missing(self) -> str:
        """What the platform must set before checks can run ("" when nothing is missing): for the
        Warning to a workload that asks for checks."""
        needed = []
        if self.prometheus is None:
            needed.append("the Prometheus URL (chart value prometheus.url, flag --prometheus-url)")
        if not self.catalog.templates and not self.promql_namespaces:
            needed.append("the check templates (chart value checks.catalog, flag --checks-catalog)")
        return "metric checks are not configured: the platform must set " + " and ".join(needed) if needed else ""


def parse_url(text: str, what: str = "the Prometheus URL") -> str:
    """An http(s) base URL without credentials, query or fragment, and without a trailing '/';
    ValueError says what to write."""
    try:
        url = urllib.parse.urlsplit(text.strip())
        url.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        url = urllib.parse.urlsplit("")
    example = "write e.g. http://prometheus-operated.monitoring.svc:9090"
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"{what} {quote(text, 100)} is not an http(s) URL: {example}")
    if url.username is not None or url.password is not None:
        raise ValueError(f"{what} must not hold credentials: put a bearer token in a file and name it instead")
    if url.query or url.fragment:
        raise ValueError(f"{what} must not have a query or a fragment: {example} (a path prefix is fine)")
    return urllib.parse.urlunsplit((url.scheme, url.netloc, url.path.rstrip("/"), "", ""))


def parse_timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_TIMEOUT:
        raise ValueError(f"{quote(text, 30)} is not a timeout: write seconds, more than 0 and at most {MAX_TIMEOUT:g}")
    return value


def parse_label_names(text: str) -> tuple[str, ...]:
    """A comma-separated list of Prometheus label names, at least one, each once."""
    names = tuple(n.strip() for n in text.split(","))
    bad = [n for n in names if not _LABEL.fullmatch(n)]
    if bad or not names:
        raise ValueError(
            f"{quote(bad[0] if bad else text, 60)} is not a label name: write names like namespace,deployment"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"{quote(text, 100)} names a label twice")
    return names


def parse_catalog_text(text: str) -> templates.Catalog:
    """The catalog in a file's text: every valid template, and an error for each invalid entry (or
    one error, and no template, when the text is not a mapping of check name -> template)."""
    if len(text.encode()) > MAX_CATALOG_BYTES:
        return templates.Catalog({}, (f"the catalog is larger than {MAX_CATALOG_BYTES} bytes: no check is loaded",))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        return templates.Catalog({}, (f"the catalog is not valid YAML{at}: no check is loaded",))
    if data is None:
        return templates.Catalog({})
    if not isinstance(data, dict):
        return templates.Catalog(
            {},
            (
                "the catalog must be a mapping of check name to template "
                "(error-ratio: {query: ..., failIf: ...}): no check is loaded",
            ),
        )
    return templates.parse_catalog(data)
