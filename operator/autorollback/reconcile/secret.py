"""The key that signs measured-deadline checkpoints, kept in a Secret that every replica shares."""

import base64
import time

from autorollback import checkpoints, kube, retry
from autorollback.reconcile.work import log

KEY_ATTEMPTS = 5  # reads of the checkpoint Secret at startup before this process makes do with a key of its own


def checkpoint_key(api: kube.Client, namespace: str | None, secret: str | None) -> bytes:
    """The key that signs checkpoints (checkpoints.py): the Secret `secret`'s in the operator's own
    namespace (created if absent), shared by every replica and kept across restarts. Without both,
    or when the Secret cannot be had, a key of this process's own, so that no other process's
    checkpoint counts (its checkpoints are then not resumed by another process): later, never sooner."""
    if not namespace or not secret:
        log.info(
            "measured deadlines are checkpointed under a key of this process only (no --checkpoint-secret "
            "or $POD_NAMESPACE): another process starts them again"
        )
        return checkpoints.new_key()
    for attempt in range(KEY_ATTEMPTS):
        try:
            key = _checkpoint_secret(api, namespace, secret)
            log.info("checkpoint key loaded", secret=secret, namespace=namespace)
            return key
        except kube.ApiError as e:
            if not retry.retryable(e.status) or attempt == KEY_ATTEMPTS - 1:
                why = str(e)
                break
            time.sleep(retry.delay(attempt, e.retry_after))
        except ValueError as e:  # a Secret that is not ours to repair
            why = str(e)
            break
    log.error(
        "cannot read or create the checkpoint Secret: measured deadlines are checkpointed under a key "
        "of this process only (after a restart or failover they start again: later, never sooner)",
        secret=secret,
        namespace=namespace,
        error=why,
    )
    return checkpoints.new_key()


def _checkpoint_secret(api: kube.Client, namespace: str, name: str) -> bytes:
    """The Secret's `key`, creating the Secret with a random one if it does not exist (another
    replica creating it at the same time: 409, read it). Its own namespace, by name only."""
    path = f"/api/v1/namespaces/{namespace}/secrets"
    for _ in range(2):
        try:
            found = api.request("GET", f"{path}/{name}")
        except kube.ApiError as e:
            if e.status != 404:
                raise
        else:
            raw = (found.get("data") or {}).get("key") or ""
            try:
                key = base64.b64decode(raw, validate=True)
            except ValueError:
                key = b""
            if len(key) < checkpoints.MIN_KEY_BYTES:
                raise ValueError(f"Secret {namespace}/{name} has no `key` of {checkpoints.MIN_KEY_BYTES} bytes or more")
            return key
        key = checkpoints.new_key()
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "autorollback"},
            },
            "data": {"key": base64.b64encode(key).decode()},
        }
        try:
            api.request("POST", path, body=body, query={"fieldManager": kube.FIELD_MANAGER}, unguarded=True)
            return key
        except kube.ApiError as e:
            if e.status != 409:
                raise  # 409: another replica created it first: read theirs
    raise kube.ApiError(409, "Conflict", f"Secret {namespace}/{name} was created and then could not be read")
