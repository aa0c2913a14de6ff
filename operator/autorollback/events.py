"""Events tell people; losing one never stops the work (it is logged and counted instead)."""

from typing import Any

from autorollback import kube, logs, telemetry

log = logs.get(__name__)


def post(api: kube.Client, deployment: dict[str, Any], type_: str, reason: str, message: str, once: str = "") -> None:
    """`once`: what makes this report unique (a failure's id): told at most once, by any replica."""
    try:
        api.post_event(deployment, type_, reason, message, once=once)
    except kube.ApiError as e:
        telemetry.api_errors.labels("post_event", str(e.status)).inc()
        meta = deployment["metadata"]
        log.warning(
            "cannot post Event", reason=reason, error=str(e), namespace=meta["namespace"], deployment=meta["name"]
        )
