"""The operator's wall clock 120 s ahead of or behind the cluster's (a node with a broken NTP):
graces and the deadlines autorollback measures itself run on its monotonic clock from when it
first saw the state, so they neither run out at once nor stretch by the skew. Debian's faketime
(libfaketime) skews the wall clock only: FAKETIME_DONT_FAKE_MONOTONIC=1."""

import base64
import glob
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from . import kit
from .test_fail_fast import release
from .test_real_world import recreate, undeletable_pods
from .test_rollback import ON, V1, V2, available, wait_event

LIBFAKETIME = Path(
    next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), "/usr/lib/faketime/libfaketime.so.1")
)
NO_PROGRESS = "autorollback.io/no-progress"
SECRET = "ar-checkpoint"
REVISION = "deployment.kubernetes.io/revision"


def skewed(offset: str) -> dict[str, str]:
    if not LIBFAKETIME.exists():
        pytest.fail(f"{LIBFAKETIME} is missing: install Debian's faketime (hack/system-packages.sh)", pytrace=False)
    return {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": offset,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",
    }


def test_the_skew_is_real() -> None:
    """The tests below mean something only if the operator's process really sees another time."""
    probe = [sys.executable, "-c", "import time; print(time.time(), time.monotonic())"]
    for offset, sign in (("+120s", 1), ("-120s", -1)):
        wall, mono = (
            float(v) for v in subprocess.run(probe, capture_output=True, text=True, check=True).stdout.split()
        )
        skew_wall, skew_mono = (
            float(v)
            for v in subprocess.run(
                probe, env={**os.environ, **skewed(offset)}, capture_output=True, text=True, check=True
            ).stdout.split()
        )
        assert abs(skew_wall - wall - sign * 120) < 5, (offset, wall, skew_wall)
        assert abs(skew_mono - mono) < 5, "the monotonic clock must not be skewed"


def keyed(ns: str, env: dict[str, str] | None = None) -> dict:
    """operator_factory's arguments for a process that signs its checkpoints with the key of the
    Secret SECRET in ns (created by the first one), as the chart runs it: the next process resumes them."""
    return {"extra": ("--checkpoint-secret", SECRET), "env": {"POD_NAMESPACE": ns, **(env or {})}}


def checkpoint(ns: str) -> int:
    """The elapsed seconds checkpointed on a ReplicaSet of web (0: none): `<rs> <state> <seconds> <hmac>`."""
    for rs in kit.replicasets(ns, "web"):
        parts = (rs["metadata"].get("annotations") or {}).get(NO_PROGRESS, "").split(" ")
        if len(parts) == 4 and parts[0] == rs["metadata"]["name"] and parts[2].isdigit():
            return int(parts[2])
    return 0


@pytest.mark.slow
def test_a_slow_start_within_the_default_grace_is_not_rolled_back_with_the_clock_ahead(
    namespace: str, operator_factory
) -> None:
    # The case: each new pod runs but is not Ready for ~8 s (KWOK stage slow-start), well
    # inside NotReady's default 30 s grace. Judged against the kubelet's timestamps with its clock
    # 120 s ahead, the operator rolled this healthy release back at once.
    ns = namespace
    operator_factory("-n", ns, env=skewed("+120s"))
    release(ns, V1, fail_on="NotReady")
    available(ns, V1, 1)
    release(ns, V2, fail_on="NotReady", failure="slow-start")
    available(ns, V2, 2)  # three pods one after the other, ~8 s each
    time.sleep(2)
    assert kit.reasons(ns, "web") == []


@pytest.mark.parametrize("offset", ["+120s", "-120s"])
def test_a_fast_signal_waits_its_grace_whatever_the_clock(namespace: str, operator_factory, offset: str) -> None:
    # ahead: the grace must not be over at once; behind: it must not last 120 s longer
    ns = namespace
    operator_factory("-n", ns, env=skewed(offset))
    release(ns, V1, fail_on="ImagePullBackOff")
    available(ns, V1, 1)
    release(ns, V2, fail_on="ImagePullBackOff", failure="image-pull")

    def pulling() -> bool:
        return any(
            ((cs.get("state") or {}).get("waiting") or {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")
            for p in kit.kubectl_json("-n", ns, "get", "pods", "-l", "autorollback.test/failure=image-pull")["items"]
            for cs in p.get("status", {}).get("containerStatuses") or []
        )

    kit.wait_for(pulling, 60, "the new pod to fail pulling its image")
    seen = time.monotonic()
    kit.wait_for(lambda: kit.event(ns, "web", "RolledBack"), 90, "the rollback (default grace: 30 s)")
    waited = time.monotonic() - seen
    assert waited >= 25, f"rolled back {waited:.1f}s after the pull failed: the 30 s grace did not run"
    assert sorted(kit.reasons(ns, "web")) == ["RolledBack", "RolloutFailed"]


@pytest.mark.slow
@pytest.mark.parametrize("offset", ["+120s", "-120s"])
def test_a_measured_deadline_survives_a_restart_onto_a_skewed_clock(
    namespace: str, operator_factory, offset: str
) -> None:
    # The restored revision makes no progress (its old pods cannot go) and no condition will ever
    # say so: the operator measures the 40 s deadline. The process that rolled back stops; the next
    # one's wall clock is 120 s off. Ahead, it must not call the deadline over at once; behind, it
    # must not wait 120 s longer.
    ns = namespace
    first = operator_factory("-n", ns, **keyed(ns))
    with undeletable_pods(ns):
        recreate(ns, "web", V1, deadline=40)
        available(ns, V1, 1)
        recreate(ns, "web", V2, failure="not-ready", deadline=40)
        # the controller's timeout or, when its status write for revision 2 was lost (under load), one
        # autorollback measured; either way the restored revision's lack of progress is measured next
        wait_event(ns, "RolledBack", timeout=120)
        first.stop()
        saved = checkpoint(ns)  # how far the first process got, if it wrote it down
        operator_factory("-n", ns, **keyed(ns, skewed(offset)))
        started = time.monotonic()
        abandoned = wait_event(ns, "RollbackAbandoned", timeout=100)
        waited = time.monotonic() - started
        assert "made no progress for 40s" in abandoned["message"] or "failed as well" in abandoned["message"]
        assert waited >= 40 - saved - 3, f"abandoned {waited:.1f}s after the restart: sooner than the deadline"
    assert sorted(kit.reasons(ns, "web")) == ["RollbackAbandoned", "RolledBack", "RolloutFailed", "RolloutFailed"]


@pytest.mark.slow
def test_a_measured_deadline_resumes_from_its_checkpoint(namespace: str, operator_factory) -> None:
    # Elapsed seconds are checkpointed on the ReplicaSet now and then (a third of a short deadline):
    # the next process goes on from there, later (never sooner) than the deadline, with its clock ahead.
    ns = namespace
    first = operator_factory("-n", ns, **keyed(ns))
    with undeletable_pods(ns):
        recreate(ns, "web", V1, deadline=45)
        available(ns, V1, 1)
        recreate(ns, "web", V2, failure="not-ready", deadline=45)
        # the controller's timeout or, when its status write for revision 2 was lost (under load), one
        # autorollback measured; either way the restored revision's lack of progress is measured next
        wait_event(ns, "RolledBack", timeout=120)

        kit.wait_for(lambda: checkpoint(ns) >= 15, 60, "a checkpoint of 15 s or more on the restored ReplicaSet")
        first.stop()
        saved = checkpoint(ns)
        operator_factory("-n", ns, **keyed(ns, skewed("+120s")))
        started = time.monotonic()
        wait_event(ns, "RollbackAbandoned", timeout=60)
        waited = time.monotonic() - started
        assert waited < 45 - 5, f"{waited:.1f}s after the restart: the checkpoint ({saved}s) was not resumed"
        assert waited >= 45 - saved - 3, f"{waited:.1f}s after the restart: sooner than the checkpoint allows"


def forge(ns: str, seconds: int) -> str:
    """What a tenant who may annotate its ReplicaSets writes: the checkpoint of the state the
    Deployment is in (the digest is made of fields it can read), with as many seconds as it likes."""
    from autorollback import state  # the operator's own digest, as a tenant would compute it
    from autorollback.workloads.deployment import DEPLOYMENTS

    d = kit.get_deployment(ns, "web")
    current = next(
        rs for rs in kit.replicasets(ns, "web") if rs["spec"]["template"]["spec"] == d["spec"]["template"]["spec"]
    )
    name = current["metadata"]["name"]
    value = f"{name} {state.digest(state.stale_key(d, DEPLOYMENTS))} {seconds}"
    kit.kubectl("-n", ns, "annotate", "--overwrite", f"replicaset/{name}", f"{NO_PROGRESS}={value}")
    return value


@pytest.mark.slow
def test_a_tenants_checkpoint_does_not_end_a_measured_deadline_sooner(namespace: str, operator_factory) -> None:
    # A tenant may write annotations on its ReplicaSets. A checkpoint of a huge number of seconds for
    # the current state (the format autorollback wrote before signing: the digest is made of fields
    # the tenant can read) must not make the next process call the deadline over at once (an
    # abandonment or a rollback, a revert pull request with the operator's credentials): it is not
    # signed with the operator's key, so the measurement starts from that process's first look.
    ns = namespace
    first = operator_factory("-n", ns, **keyed(ns))
    secret = kit.kubectl_json("-n", ns, "get", "secret", SECRET)  # created by the operator: 32 random bytes
    assert len(base64.b64decode(secret["data"]["key"])) == 32
    with undeletable_pods(ns):
        recreate(ns, "web", V1, deadline=40)
        available(ns, V1, 1)
        recreate(ns, "web", V2, failure="not-ready", deadline=40)
        # the controller's timeout or, when its status write for revision 2 was lost (under load), one
        # autorollback measured; either way the restored revision's lack of progress is measured next
        wait_event(ns, "RolledBack", timeout=120)
        first.stop()
        saved = checkpoint(ns)  # a genuine one, if the first process got that far (it may be resumed)
        forged = forge(ns, 10**7)
        second = operator_factory("-n", ns, **keyed(ns))
        started = time.monotonic()
        abandoned = wait_event(ns, "RollbackAbandoned", timeout=100)
        waited = time.monotonic() - started
        assert "made no progress for 40s" in abandoned["message"] or "failed as well" in abandoned["message"]
        assert waited >= 40 - saved - 3, f"abandoned {waited:.1f}s after the restart: the forged checkpoint counted"
        assert all(
            (rs["metadata"].get("annotations") or {}).get(NO_PROGRESS) != forged for rs in kit.replicasets(ns, "web")
        ), "the forged checkpoint was left in place"
    assert sorted(kit.reasons(ns, "web")) == ["RollbackAbandoned", "RolledBack", "RolloutFailed", "RolloutFailed"]
    assert (
        second.metric("autorollback_rollbacks_total", kind="Deployment", namespace=ns, name="web", result="abandoned")
        == 1
    )


def test_a_release_that_failed_and_then_completed_is_healthy_with_the_clock_behind(
    namespace: str, operator_factory
) -> None:
    # Revision 1 times out (its one pod is Ready only after ~8 s: deadline 2 s; there is nothing to
    # roll back to) and then completes. It is healthy: the health mark outlived the failure of that
    # same revision. Ordered by time, the completion (this process's clock, 120 s behind) looked
    # older than the timeout (the controller's clock), revision 1 looked failed, and the broken
    # revision 2 could not be rolled back ("every older revision is known to have failed").
    ns = namespace
    operator_factory("-n", ns, env=skewed("-120s"))
    kit.release(ns, "web", V1, failure="slow-start", progress_deadline=2, replicas=1, annotations=ON)
    wait_event(ns, "RollbackImpossible")
    available(ns, V1, 1)

    def marks() -> dict[str, str]:
        rs = next(r for r in kit.replicasets(ns, "web") if r["metadata"]["annotations"].get(REVISION) == "1")
        return rs["metadata"].get("annotations") or {}

    mark = kit.wait_for(lambda: marks().get("autorollback.io/healthy-at"), 60, "revision 1 marked healthy")
    failure = marks()["autorollback.io/failed-at"].split(" ")[1]  # "<rs> <failure id> revision 1"
    # "<rs> revision 1 generation <G> outlived <failure>"
    assert re.fullmatch(rf"\S+ revision 1 generation [1-9][0-9]* outlived {re.escape(failure)}", mark), mark
    kit.release(ns, "web", V2, failure="not-ready", progress_deadline=5, replicas=1, annotations=ON)
    wait_event(ns, "RolledBack")
    available(ns, V1, 3)
