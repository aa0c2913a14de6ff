"""Hostile and malformed input, end to end: a thousand random values for the autorollback.io/*
annotations of a live Deployment. The operator never crashes or stops acting for others, each
invalid value gets one clear Warning, Events stay within the API's limits, and every log line
stays one JSON object."""
import json
import random

from autorollback import annotations, kube

from . import kit
from .test_rollback import ON, V1, V2, available, count

KEYS = ["autorollback.io/enabled", "autorollback.io/mode", "autorollback.io/git-revert", "autorollback.io/git-repo",
        "autorollback.io/git-path", "autorollback.io/git-commit", "autorollback.io/git-provider",
        "autorollback.io/rollbacks", "autorollback.io/healthy-at", "autorollback.io/failed-at"]
PIECES = ["", " ", "true", "TRUE", "dry-run", "yes", "\n", "\r\n", "\t", "\x00", "\x1b[31m", "\u202e", "é", "日本",
          "🙂", '{"level":"error"}', "- a\n- b", "key: value", "[1,2,3]", "null", "'; DROP", "${HOME}", "%s%n",
          "https://user:pass@example.com/x.git", "../../etc/passwd", "0123456789abcdef0123456789abcdef01234567"]


def value(rng: random.Random) -> str:
    if rng.random() < 0.03:
        return rng.choice(PIECES) * rng.randint(1000, 20000)  # huge (the object stays under the API's limit)
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6)))


def test_a_thousand_hostile_values(namespace: str, operator_factory) -> None:
    ns = namespace
    op = operator_factory("-n", ns)
    kube.connect()
    kit.release(ns, "target", V1, annotations=ON)
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1, name="target")
    available(ns, V1, 1, name="web")
    rng = random.Random(20261126)
    sent: dict[str, list[str]] = {}
    for _ in range(1000):
        key = rng.choice(KEYS)
        v = value(rng)
        try:
            kube.request("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/target",
                         body={"metadata": {"annotations": {key: v}}}, content_type="application/merge-patch+json")
        except kube.ApiError as e:  # the API server refuses some (e.g. NUL, too large): not the operator's business
            assert e.status in (400, 413, 422), e
            continue
        sent.setdefault(key, []).append(v)
    # the operator still works for everyone else
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    available(ns, V1, 3, name="web")
    assert op.proc.poll() is None and count(ns, "RolledBack", name="web") == 1

    events = kit.events(ns, "target")
    assert all(len(e["message"]) <= 1024 for e in events)
    invalid = [e for e in events if e["reason"] == "InvalidAnnotation"]
    assert all("\n" not in e["message"] and "accepted values are" in e["message"] for e in invalid)
    # one Warning per invalid value in a row, at most (several may be merged by a watch event that
    # carries two changes, never repeated for the same value)
    changes = sum(1 for key in ("autorollback.io/enabled", "autorollback.io/mode")
                  for prev, cur in zip([None, *sent.get(key, [])], sent.get(key, []))
                  if cur != prev and annotations.parse({key: cur}).problems)
    assert 0 < len(invalid) <= changes
    for line in op.output().splitlines():
        assert isinstance(json.loads(line), dict)  # one JSON object per line, whatever was in the values
        assert len(line) < 16_384
