"""The user's configuration: `autorollback.io/*` annotations on a Deployment."""
import json
from dataclasses import dataclass
from typing import Mapping

PREFIX = "autorollback.io/"
ENABLED = PREFIX + "enabled"
MODE = PREFIX + "mode"

ROLLBACK, DRY_RUN = "rollback", "dry-run"
ACCEPTED = {ENABLED: ("true", "false"), MODE: (ROLLBACK, DRY_RUN)}
SHOWN = 80  # characters of a user's value quoted back in Events and logs


def quote(value: str, limit: int = SHOWN) -> str:
    """A user's value, safe to put in an Event or a log line: quoted, escaped, capped (escapes count)."""
    pieces, used = [], 0
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
        accepted = " or ".join(f'"{v}"' for v in ACCEPTED[self.key])
        return (f"annotation {self.key}={quote(self.value)} is invalid: accepted values are {accepted} "
                f"(case-insensitive); {self.consequence}")


@dataclass(frozen=True)
class Config:
    enabled: bool
    mode: str
    problems: tuple[Problem, ...] = ()

    @property
    def dry_run(self) -> bool:
        return self.mode == DRY_RUN


def parse(annotations: Mapping[str, str] | None) -> Config:
    """Read the opt-in and mode; invalid values fall to the safe side and are reported."""
    annotations = annotations or {}
    problems = []
    enabled = False
    raw = annotations.get(ENABLED)
    if raw is not None:
        value = raw.strip().lower()
        if value in ACCEPTED[ENABLED]:
            enabled = value == "true"
        else:
            problems.append(Problem(ENABLED, raw, "the Deployment is treated as not opted in"))
    mode = ROLLBACK
    raw = annotations.get(MODE)
    if raw is not None:
        value = raw.strip().lower()
        if value in ACCEPTED[MODE]:
            mode = value
        else:
            mode = DRY_RUN
            problems.append(Problem(MODE, raw, "the Deployment is treated as dry-run (nothing is changed)"))
    return Config(enabled=enabled, mode=mode, problems=tuple(problems))


def mentioned(annotations: Mapping[str, str] | None) -> bool:
    """Whether the Deployment says anything to autorollback at all."""
    return any(k.startswith(PREFIX) for k in (annotations or {}))
