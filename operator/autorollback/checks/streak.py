"""Consecutive failures per check, and the bake's checkpoint. Pure.

Only consecutive fails roll back: a pass resets the streak (one spike never adds up with another
an hour later). No data and errors neither count nor reset by default (`ignore`): a Prometheus
restart or a quiet night never rolls back, and never wipes a streak. A template can say `fail` (it
counts as a failed evaluation) or `reset` (it ends the streak like a pass, without being one).

The checkpoint (to be kept on the revision's ReplicaSet so that another process resumes the bake
where it was) is the elapsed bake seconds and, per check, the streak and whether it ever passed:

    v1 <elapsed seconds> <name>=<fails>[p],<name>=<fails>[p]...     ("-" for no check)

`load` refuses anything else (tenants can write annotations); `seal`/`unseal` sign it under the
operator's key, for the ReplicaSet's name and uid (as `checkpoints` does for the no-progress mark),
so that a checkpoint a tenant wrote (say, a bake already over) counts for nothing.
"""

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from autorollback.checks.outcome import Kind

MAX_FAILS = 1000
MAX_ELAPSED = 10**7  # seconds (~115 days); a bake is at most a day
MAX_CHECKS = 16
MAX_TEXT = 1024
EVERY = 120  # seconds of elapsed bake between checkpoints when no streak changed (a failover repeats at most that)
_NAME = r"[a-z0-9](?:[-a-z0-9]{0,38}[a-z0-9])?"
_ENTRY = re.compile(rf"({_NAME})=(0|[1-9][0-9]{{0,3}})(p?)")
_SECONDS = re.compile(r"0|[1-9][0-9]{0,7}")
_VERSION = "v1"
_DOMAIN = b"autorollback.io/checks v1"


class Policy(StrEnum):
    """What no data or an error does to a streak."""

    IGNORE = "ignore"  # neither counts nor resets
    FAIL = "fail"  # counts as a failed evaluation
    RESET = "reset"  # ends the streak (but is not a pass)


@dataclass(frozen=True)
class Streak:
    fails: int = 0  # consecutive failed evaluations
    passed: bool = False  # the check passed at least once in this bake


def counts_as(kind: Kind, on_no_data: Policy, on_error: Policy) -> Kind | None:
    """What an outcome does to the streak: PASS resets, FAIL counts, None leaves it as it is."""
    if kind in (Kind.PASS, Kind.FAIL):
        return kind
    policy = on_no_data if kind is Kind.NO_DATA else on_error
    if policy is Policy.FAIL:
        return Kind.FAIL
    if policy is Policy.RESET:
        return Kind.PASS
    return None


def step(streak: Streak, kind: Kind, on_no_data: Policy = Policy.IGNORE, on_error: Policy = Policy.IGNORE) -> Streak:
    """The streak after one evaluation."""
    effect = counts_as(kind, on_no_data, on_error)
    passed = streak.passed or kind is Kind.PASS  # a reset by policy is not a pass
    if effect is Kind.FAIL:
        return Streak(min(streak.fails + 1, MAX_FAILS), passed)
    if effect is Kind.PASS:
        return Streak(0, passed)
    return Streak(streak.fails, passed)


@dataclass(frozen=True)
class State:
    """A revision's bake so far: whole seconds baked after the rollout completed, and the streaks."""

    elapsed: int = 0
    streaks: Mapping[str, Streak] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.elapsed <= MAX_ELAPSED:
            raise ValueError(f"elapsed {self.elapsed} out of range")
        if len(self.streaks) > MAX_CHECKS or not all(re.fullmatch(_NAME, n) for n in self.streaks):
            raise ValueError("invalid check names or too many checks")

    def streak(self, name: str) -> Streak:
        return self.streaks.get(name, Streak())

    def with_streak(self, name: str, streak: Streak) -> "State":
        return State(self.elapsed, {**self.streaks, name: streak})

    def with_elapsed(self, seconds: float) -> "State":
        return State(max(0, min(int(seconds), MAX_ELAPSED)), self.streaks)

    def only(self, names: frozenset[str]) -> "State":
        """The state of the checks still selected (a check dropped from the annotation is forgotten)."""
        return State(self.elapsed, {n: s for n, s in self.streaks.items() if n in names})


def dump(state: State) -> str:
    entries = ",".join(
        f"{n}={min(s.fails, MAX_FAILS)}{'p' if s.passed else ''}" for n, s in sorted(state.streaks.items())
    )
    return f"{_VERSION} {state.elapsed} {entries or '-'}"


def load(text: str | None) -> State | None:
    """The state a checkpoint records; None for anything that is not exactly what `dump` writes."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        return None
    fields = text.split(" ")
    if len(fields) != 3 or fields[0] != _VERSION or not _SECONDS.fullmatch(fields[1]):
        return None
    elapsed = int(fields[1])
    if elapsed > MAX_ELAPSED:
        return None
    streaks: dict[str, Streak] = {}
    if fields[2] != "-":
        for entry in fields[2].split(","):
            m = _ENTRY.fullmatch(entry)
            if m is None or m.group(1) in streaks or int(m.group(2)) > MAX_FAILS:
                return None
            streaks[m.group(1)] = Streak(int(m.group(2)), m.group(3) == "p")
        if len(streaks) > MAX_CHECKS or list(streaks) != sorted(streaks):
            return None
    return State(elapsed, streaks)


def _mac(key: bytes, uid: str, body: str) -> str:
    message = b"\n".join((_DOMAIN, uid.encode(errors="replace"), body.encode()))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal(key: bytes, replicaset: str, uid: str, state: State) -> str:
    """The checkpoint to write on the ReplicaSet: `<name> <state> <hex HMAC>`."""
    body = dump(state)
    return f"{replicaset} {body} {_mac(key, uid, body)}"


def unseal(key: bytes, value: str | None, replicaset: str, uid: str) -> State | None:
    """The state of a genuine checkpoint of this ReplicaSet (name and uid); None for anything else."""
    if not isinstance(value, str) or not replicaset or not uid or len(value) > MAX_TEXT + 400:
        return None
    name, sep, rest = value.partition(" ")
    body, sep2, mac = rest.rpartition(" ")
    if not sep or not sep2 or name != replicaset:
        return None
    state = load(body)
    if state is None or dump(state) != body:
        return None
    if not hmac.compare_digest(mac.encode(errors="replace"), _mac(key, uid, body).encode()):
        return None
    return state


def due(written: State | None, current: State, every: int = EVERY) -> bool:
    """Whether to write a checkpoint: never written, a streak changed, or `every` more seconds baked."""
    if written is None:
        return True
    if dict(written.streaks) != dict(current.streaks):
        return True
    return current.elapsed - written.elapsed >= every or current.elapsed < written.elapsed
