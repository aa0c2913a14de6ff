"""The user's configuration: `autorollback.io/*` annotations on a workload (Deployment, StatefulSet, DaemonSet)."""

import json
from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "autorollback.io/"
ENABLED = PREFIX + "enabled"
MODE = PREFIX + "mode"

FAIL_ON = PREFIX + "fail-on"
FAIL_RESTARTS = PREFIX + "fail-restarts"
FAIL_GRACE = PREFIX + "fail-grace-seconds"
# how long a rollout may make no progress, for kinds whose controller never times one out (StatefulSet,
# DaemonSet): autorollback measures it; a Deployment's own spec.progressDeadlineSeconds stays its source
PROGRESS_DEADLINE = PREFIX + "progress-deadline-seconds"

ROLLBACK, DRY_RUN = "rollback", "dry-run"
# Fast failure signals (autorollback.io/fail-on), as Kubernetes spells them.
SIGNALS = (
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "OOMKilled",
    "Unschedulable",
    "FailedCreate",
    "NotReady",
)
RESTARTS, GRACE = 3, 30.0  # defaults of autorollback.io/fail-restarts and autorollback.io/fail-grace-seconds
MAX_RESTARTS, MAX_GRACE = 1000, 86400.0
DEADLINE, MAX_DEADLINE = 600, 2**31 - 1  # a Deployment's default progressDeadlineSeconds, and its int32 range
ACCEPTED = {
    ENABLED: ("true", "false"),
    MODE: (ROLLBACK, DRY_RUN),
    FAIL_ON: ("all", *SIGNALS),
    FAIL_RESTARTS: (f"a whole number from 1 to {MAX_RESTARTS}",),
    FAIL_GRACE: (f"a number of seconds from 0 to {int(MAX_GRACE)}",),
    PROGRESS_DEADLINE: (f"a whole number of seconds from 1 to {MAX_DEADLINE}",),
}
SHOWN = 80  # characters of a user's value quoted back in Events and logs


def quote(value: str, limit: int = SHOWN) -> str:
    """A user's value, safe to put in an Event or a log line: quoted, escaped, capped (escapes count)."""
    pieces: list[str] = []
    used = 0
    for ch in value:
        piece = json.dumps(ch, ensure_ascii=True)[1:-1]
        if used + len(piece) > limit:
            return f'"{"".join(pieces)}"... ({len(value)} characters)'
        pieces.append(piece)
        used += len(piece)
    return f'"{"".join(pieces)}"'


def shown(text: str, limit: int) -> str:
    """Text from the cluster (an image, a condition message) as it is when it is one printable line
    within limit, else quoted and capped: an Event or a change-cause stays short and on one line."""
    return text if len(text) <= limit and text.isprintable() else quote(text, limit)


@dataclass(frozen=True)
class Problem:
    key: str
    value: str
    consequence: str

    def message(self) -> str:
        if self.key == FAIL_ON:
            accepted = f'a comma-separated list of {", ".join(ACCEPTED[FAIL_ON][1:])}, or "all"'
        elif self.key in (FAIL_RESTARTS, FAIL_GRACE, PROGRESS_DEADLINE):
            accepted = ACCEPTED[self.key][0]
        else:
            accepted = " or ".join(f'"{v}"' for v in ACCEPTED[self.key])
        return (
            f"annotation {self.key}={quote(self.value)} is invalid: accepted values are {accepted} "
            f"(case-insensitive); {self.consequence}"
        )


@dataclass(frozen=True)
class FailFast:
    """Which pod-level signals count as a failed rollout, and their thresholds."""

    signals: frozenset[str] = frozenset()
    restarts: int = RESTARTS
    grace: float = GRACE


@dataclass(frozen=True)
class Config:
    enabled: bool
    mode: str
    problems: tuple[Problem, ...] = ()
    fail_fast: FailFast = FailFast()

    @property
    def dry_run(self) -> bool:
        return self.mode == DRY_RUN


# kinds whose default mode is dry-run: a StatefulSet is rolled back only when autorollback.io/mode is
# `rollback` (a downgrade after a one-way data migration, a schema or file format, can be worse than the
# failed release)
DRY_RUN_BY_DEFAULT = frozenset({"StatefulSet"})
# kinds whose controller never times a rollout out: autorollback.io/progress-deadline-seconds is theirs
MEASURED_DEADLINE = frozenset({"StatefulSet", "DaemonSet"})


def parse(annotations: Mapping[str, str] | None, kind: str = "Deployment") -> Config:
    """Read the opt-in and mode of a workload of `kind`; invalid values fall to the safe side and are
    reported. A StatefulSet's mode is dry-run unless it says `rollback` (DRY_RUN_BY_DEFAULT); the kinds
    autorollback measures the deadline of have their progress-deadline-seconds checked too."""
    annotations = annotations or {}
    problems = []
    enabled = False
    raw = annotations.get(ENABLED)
    if raw is not None:
        value = raw.strip().lower()
        if value in ACCEPTED[ENABLED]:
            enabled = value == "true"
        else:
            problems.append(Problem(ENABLED, raw, f"the {kind} is treated as not opted in"))
    mode = DRY_RUN if kind in DRY_RUN_BY_DEFAULT else ROLLBACK
    raw = annotations.get(MODE)
    if raw is not None:
        value = raw.strip().lower()
        if value in ACCEPTED[MODE]:
            mode = value
        else:
            mode = DRY_RUN
            problems.append(Problem(MODE, raw, f"the {kind} is treated as dry-run (nothing is changed)"))
    fail_fast = _fail_fast(annotations, problems)
    if kind in MEASURED_DEADLINE:
        progress_deadline(annotations, problems)
    return Config(enabled=enabled, mode=mode, problems=tuple(problems), fail_fast=fail_fast)


def _fail_fast(annotations: Mapping[str, str], problems: list[Problem]) -> FailFast:
    """An invalid list counts for nothing (the deadline still applies); an invalid threshold keeps its default."""
    signals: frozenset[str] = frozenset()
    raw = annotations.get(FAIL_ON)
    if raw is not None and raw.strip():
        names = {n.strip().lower() for n in raw.split(",") if n.strip()}
        known = {s.lower(): s for s in SIGNALS}
        if names and all(n in known or n == "all" for n in names):
            signals = frozenset(SIGNALS) if "all" in names else frozenset(known[n] for n in names)
        else:
            problems.append(Problem(FAIL_ON, raw, "no fast failure signal is used: only the progress deadline counts"))
    restarts = _number(annotations, FAIL_RESTARTS, RESTARTS, 1, MAX_RESTARTS, problems, whole=True)
    grace = _number(annotations, FAIL_GRACE, GRACE, 0, MAX_GRACE, problems, whole=False)
    return FailFast(signals, int(restarts), grace)


def progress_deadline(annotations: Mapping[str, str] | None, problems: list[Problem] | None = None) -> int:
    """autorollback.io/progress-deadline-seconds, as the other numbers are read (`_number`): DEADLINE
    without it; an invalid value keeps the default and is added to `problems` when they are asked for
    (`parse` does not read it: a Deployment's deadline is its own spec.progressDeadlineSeconds)."""
    found: list[Problem] = [] if problems is None else problems
    return int(_number(annotations or {}, PROGRESS_DEADLINE, DEADLINE, 1, MAX_DEADLINE, found, whole=True))


def _number(
    annotations: Mapping[str, str],
    key: str,
    default: float,
    low: float,
    high: float,
    problems: list[Problem],
    whole: bool,
) -> float:
    raw = annotations.get(key)
    if raw is None:
        return default
    try:
        value = int(raw.strip()) if whole else float(raw.strip().removesuffix("s"))
    except ValueError:
        value = None
    if value is None or not low <= value <= high:  # also NaN and infinities
        problems.append(Problem(key, raw, f"the default ({default:g}) is used"))
        return default
    return value


def mentioned(annotations: Mapping[str, str] | None) -> bool:
    """Whether the Deployment says anything to autorollback at all."""
    return any(k.startswith(PREFIX) for k in (annotations or {}))
