"""Command line: `autorollback run`, `autorollback status` (autorollback.status) and `autorollback --version`."""

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autorollback import __version__, kube, logs, telemetry
from autorollback.checks import settings as checks, templates
from autorollback.gitrevert import policy


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port")
    return port


def _namespace(text: str) -> str:
    if not text or any(c in text for c in "*?[]!,"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a namespace name (patterns are not supported)")
    return text


def _secret_name(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Secret name")
    return text


def _checked(parse: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type from a parser whose ValueError says what to write (argparse would drop it)."""

    def convert(text: str) -> object:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = parse.__name__
    return convert


def _namespaces(text: str) -> tuple[str, ...]:
    return tuple(_namespace(n.strip()) for n in text.split(",") if n.strip())


def _kinds(text: str) -> tuple[str, ...]:
    """--kinds: workload kinds by name (any case), comma-separated, at least one."""
    known = {kind.lower(): kind for kind in kube.RESOURCES}
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n.lower() not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{', '.join(map(repr, unknown or [text]))}: not a list of workload kinds; write one or more of "
            f"{','.join(kube.RESOURCES)} (comma-separated)"
        )
    return tuple(dict.fromkeys(known[n.lower()] for n in names))


class _KindsTogether(argparse.Action):
    """--kinds given more than once: the kinds of every use together (not only the last's)."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None) -> None:
        given = getattr(namespace, self.dest)
        earlier = () if given is self.default else given
        setattr(namespace, self.dest, tuple(dict.fromkeys([*earlier, *values])))


def _alertmanager_url(text: str) -> str:
    return checks.parse_url(text, "the Alertmanager URL")


def _positive_int(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,6}", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 999999")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 7 * 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from more than 0 to 604800")
    return value


def _add_checks(run: argparse.ArgumentParser) -> None:
    g = run.add_argument_group("metric checks", "where Prometheus is and what may be asked of it (see the README)")
    g.add_argument(
        "--prometheus-url",
        type=_checked(checks.parse_url),
        default=None,
        metavar="URL",
        help="the Prometheus HTTP API the checks query, e.g. http://prometheus-operated.monitoring.svc:9090 "
        "(unset: no check runs)",
    )
    g.add_argument(
        "--prometheus-bearer-token-file",
        default=None,
        metavar="FILE",
        help="send the token in this file (read again whenever it changes) as Authorization: Bearer",
    )
    g.add_argument(
        "--prometheus-ca-file",
        default=None,
        metavar="FILE",
        help="PEM bundle that verifies Prometheus's certificate (default: the system's)",
    )
    g.add_argument(
        "--prometheus-timeout",
        type=_checked(checks.parse_timeout),
        default=checks.TIMEOUT,
        metavar="SECONDS",
        help="one query's deadline, end to end (Prometheus is asked to stop a little sooner)",
    )
    g.add_argument(
        "--checks-catalog",
        type=Path,
        default=None,
        metavar="FILE",
        help="the platform's check templates, a YAML mapping of check name to template (a mounted "
        "ConfigMap); an invalid entry is left out and logged",
    )
    g.add_argument(
        "--checks-promql-namespaces",
        action="append",
        type=_namespaces,
        default=[],
        metavar="NS[,NS...]",
        help="namespaces whose workloads may write their own PromQL (repeatable; default none)",
    )
    g.add_argument(
        "--alert-labels",
        type=_checked(checks.parse_label_names),
        default=checks.ALERT_LABELS,
        metavar="LABEL[,LABEL...]",
        help="the alert labels that tie an alert to a workload (default: namespace,deployment)",
    )
    g.add_argument(
        "--alertmanager-url",
        type=_checked(_alertmanager_url),
        default=None,
        metavar="URL",
        help="Alertmanager whose silences veto a metric-triggered rollback (optional)",
    )
    g.add_argument(
        "--metric-rollbacks-max",
        type=_positive_int,
        default=checks.MAX_ROLLBACKS,
        metavar="N",
        help="metric-triggered rollbacks allowed in any window, cluster-wide (the rest are warnings)",
    )
    g.add_argument(
        "--metric-rollbacks-window",
        type=_seconds,
        default=checks.ROLLBACKS_WINDOW,
        metavar="SECONDS",
        help="the window of --metric-rollbacks-max",
    )


def checks_settings(args: argparse.Namespace) -> checks.ChecksSettings:
    """The metric-check settings of the parsed flags, the catalog read from its file. A bad entry
    (or an unreadable file) is logged and left out: the operator runs on without it."""
    log = logs.get(__name__)
    namespaces = frozenset(n for names in args.checks_promql_namespaces for n in names)
    catalog = templates.Catalog({})
    if args.checks_catalog is not None:
        try:
            with args.checks_catalog.open("rb") as f:
                raw = f.read(checks.MAX_CATALOG_BYTES + 1)
            catalog = checks.parse_catalog_text(raw.decode("utf-8", errors="replace"))
        except OSError as e:
            catalog = templates.Catalog(
                {}, (f"cannot read the catalog file {args.checks_catalog} ({type(e).__name__}): no check is loaded",)
            )
        for error in catalog.errors:
            log.error("check catalog: entry left out", error=error, file=str(args.checks_catalog))
        log.info("check catalog loaded", checks=sorted(catalog.templates), refused=len(catalog.errors))
    prometheus = None
    if args.prometheus_url is not None:
        prometheus = checks.PrometheusSettings(
            args.prometheus_url, args.prometheus_bearer_token_file, args.prometheus_ca_file, args.prometheus_timeout
        )
        if prometheus.bearer_token_file and prometheus.url.startswith("http://"):
            log.warning("the Prometheus bearer token is sent over plain http: use https to keep it secret")
    elif args.prometheus_bearer_token_file or args.prometheus_ca_file or args.checks_catalog:
        log.warning("metric checks are configured without --prometheus-url: no check runs")
    return checks.ChecksSettings(
        prometheus,
        catalog,
        namespaces,
        tuple(args.alert_labels),
        args.alertmanager_url,
        args.metric_rollbacks_max,
        args.metric_rollbacks_window,
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="autorollback",
        description="Automatic rollback of failed rollouts of Deployments, StatefulSets and DaemonSets.",
    )
    p.add_argument("--version", action="version", version=f"autorollback {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="show what autorollback protects and what it decided (autorollback status -h)")
    run = sub.add_parser("run", help="run the operator")
    scope = run.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "-n",
        "--namespace",
        dest="namespaces",
        action="append",
        type=_namespace,
        metavar="NS",
        help="watch this namespace (repeatable)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    run.add_argument(
        "--kinds",
        type=_kinds,
        action=_KindsTogether,
        default=tuple(kube.RESOURCES),
        metavar="KIND[,KIND...]",
        help=f"the workload kinds watched and acted on (default {','.join(kube.RESOURCES)}; repeatable, the "
        "kinds of every use together); a kind left out is never listed, watched or touched, and needs no RBAC",
    )
    run.add_argument("--metrics-port", type=_port, default=9090, help="port of the Prometheus /metrics endpoint")
    run.add_argument("--health-port", type=_port, default=8080, help="port of /healthz and /readyz")
    run.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=None,
        help="json or console (default: json unless stdout is a terminal)",
    )
    run.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="minimum level logged",
    )
    run.add_argument(
        "--watch-stale-seconds",
        type=float,
        default=300.0,
        help="/healthz fails once the workload watches have missed changes for this long",
    )
    run.add_argument(
        "--leader-elect",
        action="store_true",
        help="run as one of several replicas: only the holder of a Lease acts (on in the chart)",
    )
    run.add_argument(
        "--leader-election-namespace",
        default=None,
        metavar="NS",
        help="namespace of the Lease (default: $POD_NAMESPACE)",
    )
    run.add_argument("--leader-election-name", default="autorollback", metavar="NAME", help="name of the Lease")
    run.add_argument(
        "--leader-election-lease-duration",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="a standby takes the Lease once it saw no change of it for this long (its own clock)",
    )
    run.add_argument(
        "--leader-election-renew-deadline",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="the leader exits when it could not renew for this long; the chart restarts it as a standby",
    )
    run.add_argument(
        "--leader-election-retry-period",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="between attempts (a standby's are jittered up to 2.2 times this)",
    )
    run.add_argument(
        "--git-credentials-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="one folder per forge host with a `token` file (read at use), for Git revert pull requests",
    )
    run.add_argument(
        "--git-api-base",
        action="append",
        default=[],
        metavar="HOST=URL",
        help="the forge API of a host, when it does not follow the forge's convention (repeatable)",
    )
    run.add_argument(
        "--argocd-namespace",
        default=None,
        metavar="NS",
        help="find Git sources from Argo CD Applications (whose default namespace this is)",
    )
    run.add_argument("--flux", action="store_true", help="find Git sources from Flux Kustomizations")
    run.add_argument(
        "--git-allowed-repo",
        action="append",
        default=[],
        metavar="RULE",
        help="which repositories (and paths in them) the workloads of some namespaces may revert: "
        "'NAMESPACE=URL[ paths=GLOB,...][ credential=NAME]' (repeatable; no rule: no revert)",
    )
    run.add_argument(
        "--git-sources",
        choices=("any", "discovered", "annotations"),
        default="any",
        help="where the source to revert may come from (any: a discovered Argo CD/Flux source wins)",
    )
    run.add_argument(
        "--git-revert-timeout", type=float, default=300.0, metavar="SECONDS", help="one revert's deadline, start to end"
    )
    run.add_argument(
        "--git-max-file-bytes",
        type=int,
        default=1 << 20,
        metavar="BYTES",
        help="blobs larger than this are never fetched; a revert that needs one is refused",
    )
    run.add_argument(
        "--git-namespace-queue",
        type=int,
        default=1,
        metavar="N",
        help="reverts of one namespace running at once (the others wait their turn)",
    )
    run.add_argument(
        "--no-pod-signals",
        action="store_true",
        help="never read pods: of the autorollback.io/fail-on signals only FailedCreate is used",
    )
    run.add_argument(
        "--no-delete-stuck-pods",
        action="store_true",
        help="never delete pods: a StatefulSet (OrderedReady) whose rollback waits on a broken pod of the failed "
        "revision stays stuck until someone deletes it (autorollback.io/delete-stuck-pods turns it off per StatefulSet)",
    )
    run.add_argument(
        "--checkpoint-secret",
        default=None,
        metavar="NAME",
        type=_secret_name,
        help="the Secret in $POD_NAMESPACE whose `key` signs the checkpoints of measured deadlines "
        "(created with a random key if absent); without it a key of this process only",
    )
    _add_checks(run)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["status"]:  # the read-only status command: none of the operator's imports
        from autorollback.status import shell

        return shell.main(argv[1:])
    args = parser().parse_args(argv)
    logs.configure(args.log_format or logs.default_format(), args.log_level)
    try:
        rules = tuple(policy.parse_rule(text) for text in args.git_allowed_repo)
    except policy.RuleError as e:
        print(f"autorollback: error: {e}", file=sys.stderr)
        return 2
    metric_checks = checks_settings(args)
    kube.count = telemetry.count_api_request  # every request of this process on /metrics
    try:
        api = kube.connect()
    except kube.ConnectError as e:
        print(f"autorollback: error: {e}", file=sys.stderr)
        return 2
    from autorollback import reconcile, runner  # imports kopf: only once we know we can run
    from autorollback.gitrevert import worker

    checkpoint_key = reconcile.checkpoint_key(api, os.environ.get("POD_NAMESPACE"), args.checkpoint_secret)
    git = worker.Settings(
        args.git_credentials_dir,
        dict(pair.split("=", 1) for pair in args.git_api_base if "=" in pair),
        argocd_namespace=args.argocd_namespace,
        flux=args.flux,
        rules=rules,
        sources=args.git_sources,
        per_namespace=max(1, args.git_namespace_queue),
        timeout=args.git_revert_timeout,
        max_file_bytes=args.git_max_file_bytes,
    )

    election = None
    if args.leader_elect:
        namespace = args.leader_election_namespace or os.environ.get("POD_NAMESPACE")
        if not namespace:
            print(
                "autorollback: error: --leader-elect needs --leader-election-namespace or $POD_NAMESPACE",
                file=sys.stderr,
            )
            return 2
        if not (
            0
            < args.leader_election_retry_period * 1.2
            < args.leader_election_renew_deadline
            < args.leader_election_lease_duration
        ):  # client-go's rules (JitterFactor 1.2)
            print(
                "autorollback: error: leader election needs 0 < retry period * 1.2 < renew deadline < lease duration",
                file=sys.stderr,
            )
            return 2
        election = runner.Election(
            namespace,
            args.leader_election_name,
            args.leader_election_lease_duration,
            args.leader_election_renew_deadline,
            args.leader_election_retry_period,
        )
    return runner.run(
        api,
        runner.Options(
            namespaces=args.namespaces or [],
            metrics_port=args.metrics_port,
            health_port=args.health_port,
            watch_stale_seconds=args.watch_stale_seconds,
            git=git,
            checkpoint_key=checkpoint_key,
            pod_signals=not args.no_pod_signals,
            delete_stuck_pods=not args.no_delete_stuck_pods,
            election=election,
            checks=metric_checks,
            kinds=args.kinds,
        ),
    )
