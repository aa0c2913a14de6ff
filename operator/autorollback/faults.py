"""Fault injection for tests: make the process stop or die at a named point of the rollback flow.

Off unless the environment variable AUTOROLLBACK_TEST_FAULTS is set, e.g.
`before_patch=pause:/tmp/hold` (create /tmp/hold.reached, then wait while /tmp/hold exists),
`after_patch=kill` (SIGKILL) or `after_patch=lost` (the request went through, its answer did not).
"""

import os
import signal
import time

from autorollback.kube import ApiError

ENV = "AUTOROLLBACK_TEST_FAULTS"
POINTS = (
    "before_read",
    "before_patch",
    "after_patch",
    "after_events",
    "revert_started",
    "revert_pushed",
    "revert_opened",  # the Git revert's steps
    "leader_checked",
)  # a write whose leadership check passed, not yet sent (leader/elector.py)


def _plan() -> dict[str, str]:
    out = {}
    for part in filter(None, os.environ.get(ENV, "").split(",")):
        point, _, action = part.partition("=")
        out[point.strip()] = action.strip()
    return out


def point(name: str) -> None:
    action = _plan().get(name)
    if not action:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "lost":
        raise ApiError(0, "", f"injected fault at {name}: no answer")
    elif action.startswith("pause:"):
        hold, deadline = action[len("pause:") :], time.monotonic() + 300
        open(hold + ".reached", "w").close()
        while os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.05)
