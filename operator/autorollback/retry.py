"""When to try an API request again, and after how long. Pure policy, no I/O.

Work that failed on an API error is requeued until it is done or clearly impossible: a failed
rollout is still standing until someone changes the Deployment, so giving up would leave it.
"""

import random

BASE = 0.5  # seconds before the first retry
CAP = 60.0  # the longest wait between two tries
# No answer, throttled (429, or a 403 of a quota or an RBAC rule being fixed), or the server's
# trouble (5xx): worth trying again. 400/404/409/422 say the request itself cannot succeed as is.
PERMANENT = frozenset({400, 404, 405, 409, 410, 413, 415, 422})


def retryable(status: int) -> bool:
    return status not in PERMANENT


def delay(attempt: int, retry_after: float | None = None, jitter: float | None = None) -> float:
    """Seconds to wait before try number attempt+1: exponential with jitter, capped, and never
    sooner than the server's Retry-After."""
    j = random.uniform(0.8, 1.2) if jitter is None else jitter
    wait: float = min(CAP, BASE * 2 ** min(attempt, 16)) * j
    if retry_after is not None and retry_after > 0:
        wait = max(wait, min(retry_after, CAP))
    return wait
