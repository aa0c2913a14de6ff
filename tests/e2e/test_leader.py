"""Two replicas and a Lease: one acts, the other keeps its watch warm and takes over.

Every test here asserts the mechanism (who holds the Lease, in which order, what each process wrote),
with generous bounds where a time matters; each one was seen failing with its mechanism removed."""

import contextlib
import glob
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from . import kit
from .test_rollback import ON, V1, V2, available, count, wait_event

LEASE = 6.0
RENEW_INTERVAL = 2.0  # the leader renews every 0.5 s; the standby looks every 0.5-1.1 s: a change is seen within this
FAST = (
    "--leader-elect",
    "--leader-election-lease-duration",
    str(LEASE),
    "--leader-election-renew-deadline",
    "4",
    "--leader-election-retry-period",
    "0.5",
)


def lease(ns: str) -> dict:
    proc = kit.kubectl("-n", ns, "get", "lease", "autorollback", "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def holder(ns: str) -> str:
    """The holder's identity: its POD_NAME, "_", a unique suffix."""
    return (lease(ns).get("spec") or {}).get("holderIdentity") or ""


def pod(identity: str) -> str:
    return identity.rsplit("_", 1)[0]


class LeaseHistory:
    """Every version of the Lease's holder, as a watch delivers them (none is missed)."""

    def __init__(self, ns: str) -> None:
        self.holders: list[str] = []
        self.proc = subprocess.Popen(
            [
                kit.kubectl_path(),
                "--kubeconfig",
                kit.kubeconfig(),
                "-n",
                ns,
                "get",
                "lease",
                "autorollback",
                "--watch",
                "-o",
                "jsonpath={.spec.holderIdentity}{'|'}{.metadata.resourceVersion}{'\\n'}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        kit.wait_for(lambda: self.holders, 10, "the Lease watch")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            name = line.rstrip("\n").rsplit("|", 1)[0]
            if not self.holders or self.holders[-1] != name:
                self.holders.append(name)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def start_two(
    ns: str, operator_factory, args: tuple[str, ...], first_env: dict | None = None, second_env: dict | None = None
):
    """replica-a first, so that it leads; then replica-b, the standby."""
    first = operator_factory(
        "-n", ns, extra=(*args, "--leader-election-namespace", ns), env={"POD_NAME": "replica-a", **(first_env or {})}
    )
    kit.wait_for(
        lambda: pod(holder(ns)) == "replica-a" and first.metric("autorollback_leader") == 1, 30, "replica-a to lead"
    )
    second = operator_factory(
        "-n", ns, extra=(*args, "--leader-election-namespace", ns), env={"POD_NAME": "replica-b", **(second_env or {})}
    )
    return first, second


def test_the_standby_takes_over_when_the_leader_dies(namespace: str, operator_factory, tmp_path: Path) -> None:
    # The failure is already pending when the leader dies: the leader saw it and was about to act
    # (held before it reads), so only the hand-over can get it rolled back.
    ns, hold = namespace, tmp_path / "hold"
    hold.touch()
    leader, standby = start_two(
        ns, operator_factory, FAST, first_env={"AUTOROLLBACK_TEST_FAULTS": f"before_read=pause:{hold}"}
    )
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    assert standby.metric("autorollback_leader") == 0 and standby.metric("autorollback_watch_events_total") > 0  # warm
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    kit.wait_for((tmp_path / "hold.reached").exists, 90, "the leader about to handle the failure")
    history = LeaseHistory(ns)
    try:
        leader.proc.kill()  # kill -9: no release of the Lease
        kit.wait_for(lambda: pod(holder(ns)) == "replica-b", 4 * LEASE, "the standby to take the Lease")
        took_over = time.monotonic()
        # The new leader queues what it knows at once (the periodic resync is 60 s away).
        kit.wait_for(lambda: kit.revision(kit.get_deployment(ns, "web")) == 3, 30, "the standby's rollback")
        print(f"rolled back {time.monotonic() - took_over:.1f}s after the takeover")
    finally:
        history.stop()
    available(ns, V1, 3)
    assert [pod(h) for h in history.holders][-2:] == ["replica-a", "replica-b"]
    wait_event(ns, "RolledBack")
    assert count(ns, "RolledBack") == 1 and count(ns, "RolloutFailed") == 1
    assert [line["result"] for line in standby.lines() if line.get("event") == "rollback decision"] == ["success"]


@pytest.mark.slow
def test_a_clean_stop_hands_the_lease_over_at_once(namespace: str, operator_factory) -> None:
    # A 30 s lease: without the release the standby would wait 30 s. SIGTERM lands in a burst of 20
    # failures: the writes in flight finish, the Lease is released (empty holder), the standby takes it.
    ns = namespace
    args = (
        "--leader-elect",
        "--leader-election-lease-duration",
        "30",
        "--leader-election-renew-deadline",
        "20",
        "--leader-election-retry-period",
        "1",
    )
    leader, _standby = start_two(ns, operator_factory, args)
    names = [f"app-{i}" for i in range(20)]
    for name in names:
        kit.release(ns, name, V1, annotations=ON, replicas=1)
    for name in names:
        available(ns, V1, 1, name=name)
    history = LeaseHistory(ns)
    try:
        for name in names:
            kit.release(ns, name, V2, failure="not-ready", annotations=ON, replicas=1)
        kit.wait_for(
            lambda: sum(leader.samples("autorollback_rollbacks_total", result="success")) >= 3,
            90,
            "the burst to start",
            interval=0.1,
        )
        assert leader.stop(timeout=25) == 0  # SIGTERM
        kit.wait_for(lambda: pod(holder(ns)) == "replica-b", 20, "the standby to hold the Lease (lease: 30 s)")
    finally:
        history.stop()
    released = [pod(h) for h in history.holders]
    assert released[released.index("replica-a") :] == ["replica-a", "", "replica-b"], history.holders
    assert [line for line in leader.lines() if line.get("event") == "leader Lease released"]
    for name in names:
        d = available(ns, V1, 3, name=name)
        causes = [
            rs["metadata"].get("annotations", {}).get("kubernetes.io/change-cause", "")
            for rs in kit.replicasets(ns, name)
        ]
        assert sum(c.startswith("autorollback: rolled back") for c in causes) == 1, name
        assert kit.revision(d) == 3
        wait_event(ns, "RolledBack", name=name)
    for name in names:
        assert count(ns, "RolledBack", name=name) == 1 and count(ns, "RolloutFailed", name=name) == 1, name


def test_a_paused_leader_that_wakes_up_after_a_takeover_writes_nothing(
    namespace: str, operator_factory, tmp_path: Path
) -> None:
    # Split brain in the middle of reporting: the leader rolled back, checked it still leads before
    # posting RolloutFailed, and freezes (SIGSTOP) right there, past its lease. The standby takes over
    # and finishes the report. The old leader wakes up with its write already checked: it must end
    # before sending it (it knows it lost: the renew deadline passed long ago).
    ns = namespace
    patched, checked = tmp_path / "patched", tmp_path / "checked"
    patched.touch()
    leader, standby = start_two(
        ns,
        operator_factory,
        FAST,
        first_env={"AUTOROLLBACK_TEST_FAULTS": f"after_patch=pause:{patched},leader_checked=pause:{checked}"},
    )
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    kit.wait_for((tmp_path / "patched.reached").exists, 90, "replica-a to roll back")
    (tmp_path / "checked.reached").unlink(missing_ok=True)
    checked.touch()
    patched.unlink()  # on to the report: RolloutFailed's write is checked, then held
    kit.wait_for((tmp_path / "checked.reached").exists, 30, "replica-a about to post RolloutFailed")
    counted = sum(leader.samples("autorollback_rollbacks_total", result="success"))
    leader.proc.send_signal(signal.SIGSTOP)
    try:
        kit.wait_for(lambda: pod(holder(ns)) == "replica-b", 4 * LEASE, "replica-b to take over")
        wait_event(ns, "RolledBack")  # replica-b reports the rollback the ledger shows
    finally:
        leader.proc.send_signal(signal.SIGCONT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        leader.proc.wait(10)  # the old leader ends at once...
    checked.unlink()  # ...or, if it did not, goes on with the write it had checked
    time.sleep(3)
    d = kit.get_deployment(ns, "web")
    assert kit.revision(d) == 3 and kit.image_of(d) == V1
    assert count(ns, "RolloutFailed") == 1 and count(ns, "RolledBack") == 1
    assert leader.proc.poll() not in (None, 0)
    assert [line for line in leader.lines() if line.get("event", "").startswith("leader election lost")]
    assert counted + sum(standby.samples("autorollback_rollbacks_total", result="success")) == 1


def test_twenty_failures_at_once_and_the_leader_killed_mid_burst(namespace: str, operator_factory) -> None:
    ns = namespace
    leader, standby = start_two(ns, operator_factory, FAST)
    names = [f"app-{i}" for i in range(20)]
    for name in names:
        kit.release(ns, name, V1, annotations=ON, replicas=1)
    for name in names:
        available(ns, V1, 1, name=name)
    for name in names:
        kit.release(ns, name, V2, failure="not-ready", annotations=ON, replicas=1)
    # kill the leader once it has rolled back some, not all
    kit.wait_for(
        lambda: sum(leader.samples("autorollback_rollbacks_total", result="success")) >= 3,
        90,
        "the burst to start",
        interval=0.1,
    )
    leader.proc.kill()
    kit.wait_for(lambda: standby.metric("autorollback_leader") == 1, 4 * LEASE, "the standby to take over")
    for name in names:
        d = available(ns, V1, 3, name=name)
        causes = [
            rs["metadata"].get("annotations", {}).get("kubernetes.io/change-cause", "")
            for rs in kit.replicasets(ns, name)
        ]
        assert sum(c.startswith("autorollback: rolled back") for c in causes) == 1, name
        assert kit.revision(d) == 3


def faketime(offset: str) -> dict[str, str]:
    """The environment that runs a process with its wall clock moved by offset, its monotonic clock
    untouched (Debian's faketime package, installed by hack/system-packages.sh)."""
    libs = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")) + sorted(
        glob.glob("/usr/lib/faketime/libfaketime.so.1")
    )
    if not libs:
        pytest.fail("libfaketime is missing: run hack/system-packages.sh (make tools does)")
    return {"LD_PRELOAD": libs[0], "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def skew_of(op: kit.Operator) -> float:
    """How far the operator's wall clock is from ours, from the timestamps of its log lines."""
    import datetime as dt

    line = [x for x in op.lines() if x.get("timestamp")][-1]
    stamp = dt.datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()
    return stamp - op.log_path.stat().st_mtime


def test_a_replica_whose_clock_runs_ahead_does_not_steal_a_healthy_leaders_lease(
    namespace: str, operator_factory
) -> None:
    # Its clock 120 s ahead, the leader's renewTime always looks 120 s old to it: a lease duration of
    # 6 s would have expired twenty times over, if written times counted.
    ns = namespace
    leader, skewed = start_two(ns, operator_factory, FAST, second_env=faketime("+120s"))
    assert skew_of(skewed) > 115  # the skew is real
    history = LeaseHistory(ns)
    try:
        end = time.monotonic() + 4 * LEASE
        while time.monotonic() < end:
            assert skewed.metric("autorollback_leader") == 0 and leader.metric("autorollback_leader") == 1
            time.sleep(0.5)
    finally:
        history.stop()
    assert [pod(h) for h in history.holders] == ["replica-a"]
    assert leader.proc.poll() is None and skewed.proc.poll() is None


def test_a_replica_whose_clock_runs_behind_takes_over_about_a_lease_duration_after_the_leader_dies(
    namespace: str, operator_factory
) -> None:
    # Its clock 120 s behind, the leader's renewTime looks 120 s in the future to it: if written times
    # counted, it would wait 126 s. It waits a lease duration after the record stopped changing.
    ns = namespace
    leader, skewed = start_two(ns, operator_factory, FAST, second_env=faketime("-120s"))
    assert skew_of(skewed) < -115
    time.sleep(2 * LEASE)  # it has watched the leader renew for a while: no takeover meanwhile
    assert pod(holder(ns)) == "replica-a" and skewed.metric("autorollback_leader") == 0
    leader.proc.kill()
    killed = time.monotonic()
    kit.wait_for(lambda: skewed.metric("autorollback_leader") == 1, 3 * LEASE + 5, "the skewed standby to take over")
    took = time.monotonic() - killed
    assert pod(holder(ns)) == "replica-b"
    # Not at once either: a dead leader's record stops changing, and only a lease duration of that
    # (observed on the standby's clock, minus at most the renew interval already past) frees it.
    assert took >= LEASE - RENEW_INTERVAL, f"took over {took:.1f}s after the kill: before the lease ran out"
    print(f"takeover {took:.1f}s after the kill (lease {LEASE:.0f}s; 120 s behind)")
