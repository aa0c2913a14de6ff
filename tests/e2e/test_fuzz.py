"""Hostile and malformed input, end to end: over a thousand random values for each autorollback.io/*
annotation of a live Deployment, for image names and for Progressing condition messages. The
operator never crashes or stops acting for others, each invalid value gets one clear Warning,
Events stay within the API's limits and on one line, and every log line stays one JSON object."""

import datetime as dt
import json
import random
from typing import Any

import pytest

from autorollback import config as annotations, kube

from . import kit
from .test_rollback import ON, V1, V2, available, count, wait_event

KEYS = [
    "autorollback.io/enabled",
    "autorollback.io/mode",
    "autorollback.io/git-revert",
    "autorollback.io/git-repo",
    "autorollback.io/git-path",
    "autorollback.io/git-branch",
    "autorollback.io/git-commit",
    "autorollback.io/git-provider",
    "autorollback.io/revert-pr",
    "autorollback.io/rollbacks",
    "autorollback.io/healthy-at",
    "autorollback.io/failed-at",
    "autorollback.io/failed-reason",
    "autorollback.io/outcome",
    "autorollback.io/fail-on",
    "autorollback.io/fail-restarts",
    "autorollback.io/fail-grace-seconds",
]
CONFIGURATION = [k for k in KEYS if k in annotations.ACCEPTED]  # the values parse() judges
PIECES = [
    "",
    " ",
    "true",
    "TRUE",
    "dry-run",
    "yes",
    "\n",
    "\r\n",
    "\t",
    "\x00",
    "\x1b[31m",
    "\u202e",
    "é",
    "日本",
    "🙂",
    '{"level":"error"}',
    "- a\n- b",
    "key: value",
    "[1,2,3]",
    "null",
    "'; DROP",
    "${HOME}",
    "%s%n",
    "https://user:pass@example.com/x.git",
    "../../etc/passwd",
    "0123456789abcdef0123456789abcdef01234567",
    'ReplicaSet "other" has timed out',
    "registry.example/web:2.0.0",
    "@sha256:",
    "\ud7ff",
    "\\u0000",
    "CrashLoopBackOff",
    "all",
    ",",
    "3",
    "-1",
    "1e9",
    "30s",
    "nan",
]
PER_VALUE = 1000


def value(rng: random.Random, huge: bool = False) -> str:
    if huge:
        return rng.choice(PIECES[1:]) * rng.randint(1000, 8000)
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6)))


def no_nul(v: str) -> str:
    return v.replace("\x00", "")


def one_line_json_logs(op: kit.Operator) -> None:
    for line in op.output().splitlines():
        assert isinstance(json.loads(line), dict)  # one JSON object per line, whatever was in the values
        assert len(line) < 16_384


def sane_events(ns: str, name: str) -> list[dict[str, Any]]:
    events = kit.events(ns, name)
    for e in events:
        assert len(e["message"]) <= 1024 and "\n" not in e["message"] and "\r" not in e["message"], e["message"][:200]
    return events


@pytest.mark.slow
def test_a_thousand_hostile_values_for_every_annotation(namespace: str, operator_factory) -> None:
    ns = namespace
    op = operator_factory("-n", ns)
    api = kube.connect()
    kit.release(ns, "target", V1, annotations=ON)
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1, name="target")
    available(ns, V1, 1, name="web")
    rng = random.Random(20261126)
    sent: dict[str, list[str]] = {key: [] for key in KEYS}
    while min(len(v) for v in sent.values()) < PER_VALUE:
        huge = rng.choice(KEYS) if rng.random() < 0.03 else None  # one huge value at most: the object stays < 256 KiB
        values = {key: value(rng, huge=key == huge) for key in KEYS}
        try:
            api.request(
                "PATCH",
                f"/apis/apps/v1/namespaces/{ns}/deployments/target",
                body={"metadata": {"annotations": values}},
                content_type="application/merge-patch+json",
            )
        except kube.ApiError as e:  # the API server refuses some (e.g. NUL): not the operator's business
            assert e.status in (400, 413, 422), e  # noqa: PT017 - a refusal is allowed, so no pytest.raises
            continue
        for key, v in values.items():
            sent[key].append(v)
    # the operator still works for everyone else
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    available(ns, V1, 3, name="web")
    assert op.proc.poll() is None and count(ns, "RolledBack", name="web") == 1

    invalid = [e for e in sane_events(ns, "target") if e["reason"] == "InvalidAnnotation"]
    assert all("accepted values are" in e["message"] for e in invalid)
    # one Warning per invalid value in a row, at most (several may be merged by a watch event that
    # carries two changes, never repeated for the same value)
    changes = sum(
        1
        for key in CONFIGURATION
        for prev, cur in zip([None, *sent[key]], sent[key], strict=False)
        if cur != prev and annotations.parse({key: cur}).problems
    )
    assert 0 < len(invalid) <= changes
    one_line_json_logs(op)


def hostile_images(rng: random.Random, n: int) -> list[str]:
    """Images the API accepts: anything non-empty without leading or trailing whitespace."""
    out = []
    while len(out) < n:
        v = no_nul(value(rng, huge=rng.random() < 0.01)).strip()
        out.append(f"{v}:{len(out)}" if v else f"x{len(out)}")
    return out


def template(name: str, images: list[str], failure: str | None = None) -> dict[str, Any]:
    labels = {"app": name, **({"autorollback.test/failure": failure} if failure else {})}
    return {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]},
    }


@pytest.mark.slow
def test_hostile_image_names_and_condition_messages(namespace: str, operator_factory) -> None:
    # Ten Deployments of a hundred containers each: a thousand hostile image names that end up in
    # Events, change-causes and logs; and a thousand hostile ProgressDeadlineExceeded messages.
    ns = namespace
    api = kube.connect()
    rng = random.Random(26112026)
    names = [f"app{i}" for i in range(10)]
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    good = {name: hostile_images(rng, 100) for name in names}
    bad = {name: hostile_images(rng, 100) for name in names}
    for name in names:
        api.request(
            "POST",
            base,
            body={
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "annotations": ON},
                "spec": {
                    "replicas": 1,
                    "progressDeadlineSeconds": 10,
                    "selector": {"matchLabels": {"app": name}},
                    "template": template(name, good[name]),
                },
            },
        )
    kit.wait_for(lambda: all(kit.is_available(ns, name) for name in names), 120, "the first revisions")
    for name in names:
        api.request(
            "PATCH",
            f"{base}/{name}",
            body={"spec": {"template": template(name, bad[name], "not-ready")}},
            content_type="application/merge-patch+json",
        )

    def timed_out(name: str) -> dict | None:
        d = api.request("GET", f"{base}/{name}")
        c = kit.condition(d, "Progressing")
        return d if c.get("reason") == "ProgressDeadlineExceeded" else None

    failed = {name: kit.wait_for(lambda: timed_out(name), 120, f"{name} to time out") for name in names}
    # The controller keeps a timed-out condition's message while its reason stays: make it hostile
    # (still naming the failed ReplicaSet, so that it is this rollout's failure) before the operator looks.
    for name, d in failed.items():
        c = kit.condition(d, "Progressing")
        c["message"] = c["message"] + no_nul(value(rng, huge=name == "app0"))
        api.request(
            "PATCH",
            f"{base}/{name}/status",
            body={"status": {"conditions": d["status"]["conditions"]}},
            content_type="application/merge-patch+json",
        )
    op = operator_factory("-n", ns)
    for name in names:
        kit.wait_for(
            lambda: (
                api.request("GET", f"{base}/{name}")["spec"]["template"]["spec"]["containers"][0]["image"]
                == good[name][0]
            ),
            120,
            f"{name} to be rolled back",
        )
        wait_event(ns, "RolledBack", name=name)
        d = api.request("GET", f"{base}/{name}")
        assert len(d["metadata"]["annotations"]["kubernetes.io/change-cause"]) <= 1024
        assert "\n" not in d["metadata"]["annotations"]["kubernetes.io/change-cause"]
        assert [e["reason"] for e in sane_events(ns, name)].count("RolledBack") == 1

    # A thousand more messages on a dry-run Deployment, each with a new lastUpdateTime (a new timeout).
    dry = {**ON, "autorollback.io/mode": "dry-run"}
    kit.release(ns, "msgs", V1, annotations=dry, replicas=1)
    available(ns, V1, 1, name="msgs")
    kit.release(ns, "msgs", V2, failure="not-ready", annotations=dry, replicas=1)
    d = kit.wait_for(lambda: timed_out("msgs"), 120, "msgs to time out")
    wait_event(ns, "RollbackPlanned", name="msgs")
    c = kit.condition(d, "Progressing")
    prefix, start = c["message"], dt.datetime.now(dt.UTC)
    for i in range(PER_VALUE):
        c["message"] = prefix + no_nul(value(rng, huge=rng.random() < 0.01))
        c["lastUpdateTime"] = (start + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        api.request(
            "PATCH",
            f"{base}/msgs/status",
            body={"status": {"conditions": d["status"]["conditions"]}},
            content_type="application/merge-patch+json",
        )
    kit.release(ns, "web", V1, annotations=ON, replicas=1)  # and it still acts for others
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON, replicas=1)
    available(ns, V1, 3)
    sane_events(ns, "msgs")
    assert op.proc.poll() is None
    one_line_json_logs(op)
