"""Checkpoints of a deadline autorollback measures itself (the autorollback.io/no-progress mark),
signed so that only the operator can write one that counts. Pure: the key is handed in.

A tenant can write any annotation on its ReplicaSets (and the Deployment controller copies the
Deployment's annotations onto a new ReplicaSet), and everything the state digest is made of is
readable to it. So a checkpoint is trusted only with an HMAC-SHA256, under a key only the operator
holds, over the ReplicaSet's uid (not only its name: a ReplicaSet deleted and created again under
the same name is another one), the state digest and the seconds. Anything else (unsigned, signed
under another key, for another uid or state, seconds changed) counts for nothing: the measurement
starts from this process's first look, later, never sooner.

The mark: `<ReplicaSet name> <state digest> <seconds> <hex HMAC>`.
"""

import hashlib
import hmac
import re
import secrets

KEY_BYTES = 32  # a new key's length (the Secret's `key`)
MIN_KEY_BYTES = 16  # a shorter key in the Secret is refused
MAX_SECONDS = 10**7  # a resumed measurement never counts more than this (~115 days)
_SECONDS = re.compile(r"[0-9]{1,8}")
_DOMAIN = b"autorollback.io/no-progress v1"  # the HMAC signs nothing else with this key


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def _mac(key: bytes, uid: str, state_digest: str, seconds: int) -> str:
    message = b"\n".join(
        (_DOMAIN, uid.encode(errors="replace"), state_digest.encode(errors="replace"), str(seconds).encode())
    )
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def mark(key: bytes, replicaset: str, uid: str, state_digest: str, seconds: float) -> str:
    """The mark for this many whole seconds of one no-progress state on one ReplicaSet."""
    whole = max(0, min(int(seconds), MAX_SECONDS))
    return f"{replicaset} {state_digest} {whole} {_mac(key, uid, state_digest, whole)}"


def resumed(key: bytes, value: str | None, replicaset: str, uid: str, state_digest: str) -> float:
    """The seconds a genuine mark of this state on this ReplicaSet (name and uid) records; 0 for
    anything else: absent, malformed, unsigned, signed under another key, copied from another
    ReplicaSet, about another state, or with its seconds changed."""
    parts = (value or "").split(" ")
    if len(parts) != 4 or not uid or not replicaset:
        return 0.0
    name, digest_, seconds, mac = parts
    if name != replicaset or digest_ != state_digest or not _SECONDS.fullmatch(seconds) or seconds != str(int(seconds)):
        return 0.0
    expected = _mac(key, uid, state_digest, int(seconds))
    if not hmac.compare_digest(mac.encode(errors="replace"), expected.encode()):
        return 0.0
    return float(min(int(seconds), MAX_SECONDS))
