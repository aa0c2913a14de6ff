"""Alerts that must not fire for a workload (autorollback.io/alerts). Pure.

A workload names alerts; the platform says which alert labels tie an alert to a workload
(`ChecksSettings.alert_labels`, default namespace and deployment: the label `namespace` matches the
workload's namespace, every other one its name). Firing is read from Prometheus's synthetic series,
`count by (alertname) (ALERTS{alertstate="firing",alertname=~"^(?:A|B)$",namespace="<ns>",...})`,
built here from validated names and escaped values, with the namespace matcher always present (and
checked by parsing the query, as a check's is): nothing of another namespace is read.

What is judged is bound to the ReplicaSet of the revision baked:

- the alerts already firing at the first look where the new ReplicaSet has a ready pod are recorded
  on it (`autorollback.io/alerts-preexisting: <ReplicaSet> revision <N> <names or ->`), once, and
  never roll that revision back (`AlertPreexisting`);
- an alert named that fires afterwards and is not in the record fails the bake (`AlertFiring`): one
  firing evaluation is enough, the rule's own `for:` is its debounce;
- an error or no answer from Prometheus is never a failure; before the record exists nothing is judged.
"""

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from autorollback import times
from autorollback.checks import outcome, promql
from autorollback.checks.templates import Problem, Selection
from autorollback.config import PREFIX, quote, shown
from autorollback.history import ALERTS_PREEXISTING, Revision, bind
from autorollback.workloads.base import ALERT_FIRING, SHOWN_MESSAGE, Failure

ALERTS = PREFIX + "alerts"  # annotation: comma-separated alert names
PREEXISTING = ALERTS_PREEXISTING  # mark: "<ReplicaSet> revision <N> <a,b or ->"
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,127}")  # a Prometheus alert (metric) name
MAX_ALERTS = 16
NONE = "-"  # the record of no alert firing (not an alert name)
INTERVAL = 15.0  # seconds between two reads of the firing alerts during a bake
KEY = "@alerts"  # the alerts in a bake's memory (schedule.Running.evaluated, told): no check is named so
LABEL = "alerts"  # the alerts as a check's name in metrics and in unverified-at
NAMESPACE = "namespace"


def select(selection: Selection, annotations: Mapping[str, str] | None) -> Selection:
    """The selection with the alerts the annotation names (in order, each once), and a Problem for
    each name that is not an alert name (it is ignored)."""
    raw = (annotations or {}).get(ALERTS)
    if raw is None:
        return selection
    names: list[str] = []
    problems: list[Problem] = []
    for item in raw.split(","):
        name = item.strip()
        if not name or name in names:
            continue
        if not NAME.fullmatch(name):
            problems.append(
                Problem(
                    ALERTS,
                    raw,
                    f"{quote(name, 40)} is not an alert name (letters, digits, _ and :, not starting with a digit)",
                    "that name is ignored",
                )
            )
            continue
        names.append(name)
    if len(names) > MAX_ALERTS:
        problems.append(Problem(ALERTS, raw, f"at most {MAX_ALERTS} alerts", f"only the first {MAX_ALERTS} count"))
        names = names[:MAX_ALERTS]
    return replace(selection, alerts=tuple(names), problems=(*selection.problems, *problems))


def selector(names: Sequence[str], namespace: str, workload: str, labels: Sequence[str], pending: bool = False) -> str:
    """The ALERTS selector of these alerts firing (with `pending`: or pending) for this workload. The
    namespace matcher is always there, whatever the labels configured; a name that is not an alert
    name is a ValueError."""
    if not names or any(not NAME.fullmatch(n) for n in names):
        raise ValueError(f"not alert names: {quote(','.join(names), 80)}")
    matchers = [
        'alertstate=~"firing|pending"' if pending else 'alertstate="firing"',
        'alertname=~"' + promql.escape_string("^(?:" + "|".join(promql.quote_meta(n) for n in names) + ")$") + '"',
        f'{NAMESPACE}="{promql.escape_string(namespace)}"',
    ]
    for label in labels:
        if label == NAMESPACE:
            continue
        matchers.append(f'{label}="{promql.escape_string(workload)}"')
    return "ALERTS{" + ",".join(matchers) + "}"


def query(names: Sequence[str], namespace: str, workload: str, labels: Sequence[str], pending: bool = False) -> str:
    """The instant query: one series per firing alert name (several series of one alert are counted
    as one), checked to read the workload's namespace only (promql.QueryError otherwise). The record
    of what was already under way reads pending alerts too: an alert pending on the old revision's
    trouble (its `for:` not over) would otherwise fire later and roll back the release that fixes it."""
    text = f"count by (alertname) ({selector(names, namespace, workload, labels, pending)})"
    promql.enforce_namespace(text, namespace)
    return text


@dataclass(frozen=True)
class Firing:
    """One read of the firing alerts: their names, with Prometheus's evaluation time, or an error."""

    names: frozenset[str] = frozenset()
    at: float | None = None
    error: str = ""


def failed(message: str) -> Firing:
    return Firing(error=message)


def read_body(status: int, body: bytes | str, asked: Iterable[str] = ()) -> Firing:
    """The answer of /api/v1/query to `query`: the alert names among `asked` (all, when empty) that
    have a firing series. Anything but a vector of such series is an error (never a failure)."""
    try:
        response = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return failed(f"HTTP {status}: the answer is not JSON (not Prometheus, or a proxy in between)")
    if not isinstance(response, dict) or response.get("status") != "success":
        return failed(outcome.read(response).error)
    if not 200 <= status < 300:
        return failed(f"HTTP {status} with a successful-looking body")
    data = response.get("data")
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("resultType") != "vector" or not isinstance(result, list):
        return failed("the answer is not a vector of series")
    wanted = frozenset(asked)
    names: set[str] = set()
    at: float | None = None
    for series in result:
        metric = series.get("metric") if isinstance(series, dict) else None
        value = series.get("value") if isinstance(series, dict) else None
        name = metric.get("alertname") if isinstance(metric, dict) else None
        if not isinstance(name, str) or not isinstance(value, list) or len(value) != 2:
            return failed("a series of the answer has no alertname or no sample")
        stamp = value[0]
        if isinstance(stamp, bool) or not isinstance(stamp, int | float):
            return failed("a sample's timestamp is not a number")
        at = float(stamp) if at is None else max(at, float(stamp))
        if not wanted or name in wanted:
            names.add(name)
    return Firing(frozenset(names), at)


# -- the record, bound to the ReplicaSet and its revision -----------------------------------------


def record(replicaset: str, revision: int, names: Iterable[str]) -> str:
    """The preexisting mark's value."""
    listed = ",".join(sorted(set(names))) or NONE
    return bind(replicaset, f"revision {revision} {listed}")


def recorded(revision: Revision) -> frozenset[str] | None:
    """The alerts recorded as firing when this revision's first pod was Ready (None: no record for
    this ReplicaSet in this revision; a reused ReplicaSet's record of an earlier rollout says nothing)."""
    parts = revision.mark(PREEXISTING).split(" ")
    if len(parts) != 3 or parts[0] != "revision" or parts[1] != str(revision.number):
        return None
    if parts[2] == NONE:
        return frozenset()
    names = parts[2].split(",")
    if not all(NAME.fullmatch(n) for n in names):
        return None
    return frozenset(names)


def ready(history_object: Mapping[str, object], revision: Revision, pods: Sequence[Mapping[str, object]] = ()) -> bool:
    """The revision has a ready pod: its history object counts one (a ReplicaSet's status.readyReplicas;
    available pods are ready too), or one of `pods` (the revision's own, whole) has Ready=True. A
    ControllerRevision has no status: for StatefulSets and DaemonSets only their pods tell."""
    status = history_object.get("status")
    count = status.get("readyReplicas") if isinstance(status, Mapping) else None
    return (isinstance(count, int) and count >= 1) or revision.available > 0 or any(map(_ready, pods))


def _ready(pod: Mapping[str, object]) -> bool:
    status = pod.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    return isinstance(conditions, list) and any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


@dataclass(frozen=True)
class Verdict:
    fired: tuple[str, ...] = ()  # firing and not recorded: the bake fails
    preexisting: tuple[str, ...] = ()  # firing and recorded: never a rollback of this revision


def judge(firing: Firing, preexisting: frozenset[str]) -> Verdict:
    if firing.error:
        return Verdict()
    return Verdict(tuple(sorted(firing.names - preexisting)), tuple(sorted(firing.names & preexisting)))


def failure(fired: Sequence[str], at: float | None, replicaset: str, revision: int, created: str) -> Failure:
    """The failure an alert that started firing stands for, as the decision takes it. Its id is
    Prometheus's evaluation time of the read that saw it (never this process's clock), else the
    ReplicaSet's creation."""
    when = times.stamp(dt.datetime.fromtimestamp(at, dt.UTC)) if at is not None and 0 < at < 2**33 else created
    which = "alerts" if len(fired) > 1 else "alert"
    message = (
        f"{which} {', '.join(fired)} firing for revision {revision}, and not when its first pod became Ready "
        "(autorollback.io/alerts)"
    )
    return Failure(
        revision_name=replicaset,
        reason=ALERT_FIRING,
        message=shown(message, SHOWN_MESSAGE),
        updated=when,
        revision=revision,
    )


def passed(checks: Sequence[str], alerts: Sequence[str]) -> str:
    """What a passed bake showed, for BakePassed."""
    said = [f"every metric check passed ({', '.join(checks)})"] if checks else []
    if alerts:
        said.append(f"no alert named fired ({', '.join(alerts)})")
    return " and ".join(said)
