"""One cluster-wide operator, many Deployments released, failing, rolled back and undone by hand at
the same time, with StatefulSets and DaemonSets among them: the way a production cluster looks. Runs
alone (serial): an `-A` operator would act on the workloads of tests running beside it."""

import collections
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from . import kit
from .test_workload_kinds import (
    BREAK,
    GOOD_V2,
    V1 as K1,
    V2 as K2,
    daemonset,
    get,
    marked_healthy,
    rolled_out,
    statefulset,
)

pytestmark = pytest.mark.serial

ON = {"autorollback.io/enabled": "true"}
NAMESPACES = 3
PER_NAMESPACE = 8  # 24 Deployments
V = {n: f"registry.example/app:{n}.0.0" for n in range(1, 5)}
QUIET = {
    "KnownBadTemplate",
    "RollbackAbandoned",
    "RollbackFailed",
    "RollbackSkipped",
    "RollbackImpossible",
    "InvalidAnnotation",
    "RevisionHistoryTooShort",
}


def available(ns: str, name: str, image: str, revision: int) -> None:
    def check() -> bool:
        d = kit.is_available(ns, name)
        return bool(d) and kit.image_of(d) == image and kit.revision(d) == revision

    kit.wait_for(check, 180, f"{ns}/{name} available on {image} (revision {revision})", interval=0.25)


def release(ns: str, name: str, n: int, failure: str | None = None, deadline: int = 10) -> None:
    kit.release(ns, name, V[n], failure=failure, annotations=ON, progress_deadline=deadline)


# Each scenario returns (final image, final revision, rollbacks, failures, images that completed).
def bad_release(ns: str, name: str) -> tuple:
    release(ns, name, 1)
    available(ns, name, V[1], 1)
    release(ns, name, 2, failure="not-ready")
    available(ns, name, V[1], 3)
    return V[1], 3, 1, 1, {V[1]}


def pending_then_bad(ns: str, name: str) -> tuple:
    # v1 healthy, v2 never becomes ready (long deadline), v3 broken: back to v1, never to v2
    release(ns, name, 1)
    available(ns, name, V[1], 1)
    release(ns, name, 2, failure="oom", deadline=600)
    kit.wait_for(lambda: len(kit.replicasets(ns, name)) == 2, 60, f"{ns}/{name} revision 2")
    release(ns, name, 3, failure="crash")
    available(ns, name, V[1], 4)
    return V[1], 4, 1, 1, {V[1]}


def manual_undo_then_bad(ns: str, name: str) -> tuple:
    release(ns, name, 1)
    available(ns, name, V[1], 1)
    release(ns, name, 2)
    available(ns, name, V[2], 2)
    kit.kubectl("-n", ns, "rollout", "undo", f"deployment/{name}")  # a person goes back to v1
    available(ns, name, V[1], 3)
    release(ns, name, 3, failure="image-pull")
    available(ns, name, V[1], 5)  # back to the newest healthy: v1's template again
    return V[1], 5, 1, 1, {V[1], V[2]}


def good_releases(ns: str, name: str) -> tuple:
    for n in (1, 2, 3):
        release(ns, name, n)
        available(ns, name, V[n], n)
    return V[3], 3, 0, 0, {V[1], V[2], V[3]}


SCENARIOS = (bad_release, pending_then_bad, manual_undo_then_bad, good_releases)
TIMED = {"autorollback.io/progress-deadline-seconds": "10", "autorollback.io/mode": "rollback"}


# A StatefulSet or DaemonSet scenario returns (final image, rollbacks, failures, opted in).
def controller_bad(ns: str, kind: str, name: str) -> tuple:
    kit.apply((statefulset if kind == "statefulset" else daemonset)(ns, {**ON, **TIMED}, name=name))
    kit.wait_for(lambda: rolled_out(ns, kind, K1, name), 180, f"{ns}/{name} on V1")
    kit.wait_for(lambda: marked_healthy(ns, K1, name), 60, f"{ns}/{name}: V1 marked healthy")
    kit.kubectl("-n", ns, "patch", f"{kind}/{name}", "--type=strategic", "-p", json.dumps(BREAK))
    kit.wait_for(lambda: rolled_out(ns, kind, K1, name), 180, f"{ns}/{name} back on V1")
    return K1, 1, 1, True


def controller_good(ns: str, kind: str, name: str) -> tuple:
    kit.apply((statefulset if kind == "statefulset" else daemonset)(ns, {**ON, **TIMED}, name=name))
    kit.wait_for(lambda: rolled_out(ns, kind, K1, name), 180, f"{ns}/{name} on V1")
    kit.kubectl("-n", ns, "patch", f"{kind}/{name}", "--type=strategic", "-p", json.dumps(GOOD_V2))
    kit.wait_for(lambda: rolled_out(ns, kind, K2, name), 180, f"{ns}/{name} on V2")
    return K2, 0, 0, True


def controller_not_opted_in(ns: str, kind: str, name: str) -> tuple:
    # autorollback's annotations, a short deadline, rollback mode: all but the opt-in itself
    kit.apply((statefulset if kind == "statefulset" else daemonset)(ns, TIMED, name=name))
    kit.wait_for(lambda: rolled_out(ns, kind, K1, name), 180, f"{ns}/{name} on V1")
    kit.kubectl("-n", ns, "patch", f"{kind}/{name}", "--type=strategic", "-p", json.dumps(BREAK))
    time.sleep(25)  # well past its deadline, while the other workloads keep the operator busy
    return K2, 0, 0, False


# two per namespace, each scenario once for each kind
CONTROLLER_JOBS = (
    ("statefulset", controller_bad),
    ("daemonset", controller_bad),
    ("daemonset", controller_good),
    ("statefulset", controller_good),
    ("statefulset", controller_not_opted_in),
    ("daemonset", controller_not_opted_in),
)


def test_busy_cluster_keeps_every_invariant(new_namespace, operator_factory) -> None:
    op = operator_factory("-A")
    namespaces = [new_namespace() for _ in range(NAMESPACES)]
    jobs = [(ns, f"app-{i}", SCENARIOS[i % len(SCENARIOS)]) for ns in namespaces for i in range(PER_NAMESPACE)]
    controllers = [(namespaces[i // 2], kind, f"{kind}-{i}", fn) for i, (kind, fn) in enumerate(CONTROLLER_JOBS)]
    with ThreadPoolExecutor(len(jobs) + len(controllers)) as pool:
        futures = {(ns, name): pool.submit(fn, ns, name) for ns, name, fn in jobs}
        others = {(ns, kind, name): pool.submit(fn, ns, kind, name) for ns, kind, name, fn in controllers}
        outcomes = {key: f.result() for key, f in futures.items()}
        controlled = {key: f.result() for key, f in others.items()}

    def marked_healthy(ns: str, name: str, images: set[str]) -> bool:
        for rs in kit.replicasets(ns, name):
            image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
            mark = rs["metadata"].get("annotations", {}).get("autorollback.io/healthy-at", "")
            if image in images and not mark.startswith(rs["metadata"]["name"] + " "):
                return False
        return True

    for (ns, name), (image, revision, rollbacks, failures, completed) in outcomes.items():
        d = kit.get_deployment(ns, name)
        assert (kit.image_of(d), kit.revision(d)) == (image, revision), f"{ns}/{name}"
        kit.wait_for(lambda: marked_healthy(ns, name, completed), 60, f"{ns}/{name}: every completed revision healthy")
        reasons = collections.Counter(kit.reasons(ns, name))
        assert reasons["RolledBack"] == rollbacks and reasons["RolloutFailed"] == failures, (ns, name, reasons)
        assert not QUIET & set(reasons), (ns, name, reasons)  # no false Warnings
        templates = {rs["spec"]["template"]["spec"]["containers"][0]["image"] for rs in kit.replicasets(ns, name)}
        assert len(kit.replicasets(ns, name)) == len(templates)  # rolled-back ReplicaSets were reused
        if rollbacks:
            cause = d["metadata"]["annotations"]["kubernetes.io/change-cause"]
            assert cause.startswith("autorollback: rolled back from") and f"({image})" in cause.split(" to ")[-1]
    for (ns, kind, name), (image, rollbacks, failures, opted_in) in controlled.items():
        w = get(ns, kind, name)
        assert (kit.image_of(w), w["metadata"]["generation"]) == (image, 2 + rollbacks), (
            f"{ns}/{name}"
        )  # no other write
        reasons = collections.Counter(kit.reasons(ns, name))
        assert reasons["RolledBack"] == rollbacks and reasons["RolloutFailed"] == failures, (ns, name, reasons)
        assert not QUIET & set(reasons), (ns, name, reasons)
        assert opted_in or not reasons, (ns, name, reasons)  # not a word about a workload that did not opt in
    ours = {ns for ns, _ in outcomes}
    decisions = [line for line in op.lines() if line.get("event") == "rollback decision" and line["namespace"] in ours]
    assert len(decisions) == sum(o[2] for o in outcomes.values()) + sum(c[1] for c in controlled.values())
    assert op.proc.poll() is None
