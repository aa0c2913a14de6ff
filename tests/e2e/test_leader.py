"""Two replicas and a Lease: one acts, the other keeps its watch warm and takes over."""
import time

from . import kit
from .test_rollback import ON, V1, V2, available, count, wait_event

FAST = ("--leader-elect", "--leader-election-lease-duration", "4", "--leader-election-renew-deadline", "3",
        "--leader-election-retry-period", "0.5")


def holder(ns: str) -> str:
    lease = kit.kubectl("-n", ns, "get", "lease", "autorollback", "-o", "jsonpath={.spec.holderIdentity}",
                        check=False)
    return lease.stdout.strip() if lease.returncode == 0 else ""


def test_the_standby_takes_over_when_the_leader_dies(namespace: str, operator_factory) -> None:
    ns = namespace
    ops = {name: operator_factory("-n", ns, extra=(*FAST, "--leader-election-namespace", ns),
                                  env={"POD_NAME": name}) for name in ("replica-a", "replica-b")}
    leader_name = kit.wait_for(lambda: holder(ns), 30, "a leader")
    leader, standby = ops[leader_name], next(op for name, op in ops.items() if name != leader_name)
    kit.wait_for(lambda: leader.metric("autorollback_leader") == 1 and standby.metric("autorollback_leader") == 0,
                 15, "one leader, one standby")
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    assert standby.proc.poll() is None and standby.metric("autorollback_watch_events_total") > 0  # warm

    leader.proc.kill()  # kill -9: no release of the Lease
    killed = time.monotonic()
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    kit.wait_for(lambda: standby.metric("autorollback_leader") == 1, 30, "the standby to take over")
    takeover = time.monotonic() - killed
    available(ns, V1, 3)
    assert holder(ns) != leader_name
    assert count(ns, "RolledBack") == 1 and count(ns, "RolloutFailed") == 1
    print(f"takeover after {takeover:.1f}s (lease duration 4s)")


def test_a_clean_stop_hands_the_lease_over_at_once(namespace: str, operator_factory) -> None:
    ns = namespace
    ops = {name: operator_factory("-n", ns, extra=(*FAST, "--leader-election-namespace", ns),
                                  env={"POD_NAME": name}) for name in ("replica-a", "replica-b")}
    leader_name = kit.wait_for(lambda: holder(ns), 30, "a leader")
    assert ops[leader_name].stop() == 0  # SIGTERM: the Lease is released
    other = next(name for name in ops if name != leader_name)
    kit.wait_for(lambda: holder(ns) == other, 5, "the other replica to hold the Lease")
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    available(ns, V1, 3)
    wait_event(ns, "RolledBack")
    assert count(ns, "RolledBack") == 1


def test_a_paused_leader_that_wakes_up_after_a_takeover_writes_nothing(namespace: str, operator_factory,
                                                                        tmp_path) -> None:
    # Split brain: the leader decides to roll back, then freezes (SIGSTOP) past its lease; the standby
    # takes over and rolls back; the old leader wakes up in the middle of its rollback.
    import signal

    ns = namespace
    hold = tmp_path / "hold"
    hold.touch()
    args = (*FAST, "--leader-election-namespace", ns)
    first = operator_factory("-n", ns, extra=args, env={"POD_NAME": "replica-a",
                                                        "AUTOROLLBACK_TEST_FAULTS": f"before_patch=pause:{hold}"})
    kit.wait_for(lambda: holder(ns) == "replica-a", 30, "replica-a to lead")
    second = operator_factory("-n", ns, extra=args, env={"POD_NAME": "replica-b"})
    kit.release(ns, "web", V1, annotations=ON)
    available(ns, V1, 1)
    kit.release(ns, "web", V2, failure="not-ready", annotations=ON)
    kit.wait_for(lambda: (tmp_path / "hold.reached").exists(), 90, "replica-a about to patch")
    first.proc.send_signal(signal.SIGSTOP)
    try:
        kit.wait_for(lambda: second.metric("autorollback_leader") == 1, 30, "replica-b to take over")
        hold.unlink()  # replica-a will go on with its patch the moment it runs again
        available(ns, V1, 3)  # replica-b rolled back
    finally:
        first.proc.send_signal(signal.SIGCONT)
    time.sleep(4)  # replica-a runs again: it must notice it lost the Lease before it writes
    d = kit.get_deployment(ns, "web")
    assert kit.revision(d) == 3 and kit.image_of(d) == V1
    assert count(ns, "RolledBack") == 1
    assert not [line for line in first.lines() if line.get("event") == "rollback decision"]


def test_twenty_failures_at_once_and_the_leader_killed_mid_burst(namespace: str, operator_factory) -> None:
    ns = namespace
    args = (*FAST, "--leader-election-namespace", ns)
    ops = {name: operator_factory("-n", ns, extra=args, env={"POD_NAME": name}) for name in ("replica-a", "replica-b")}
    leader_name = kit.wait_for(lambda: holder(ns), 30, "a leader")
    names = [f"app-{i}" for i in range(20)]
    for name in names:
        kit.release(ns, name, V1, annotations=ON, replicas=1)
    for name in names:
        available(ns, V1, 1, name=name)
    for name in names:
        kit.release(ns, name, V2, failure="not-ready", annotations=ON, replicas=1)
    leader = ops[leader_name]
    standby = next(op for n, op in ops.items() if n != leader_name)
    # kill the leader once it has rolled back some, not all
    kit.wait_for(lambda: sum(leader.samples("autorollback_rollbacks_total", result="success")) >= 3,
                 90, "the burst to start", interval=0.1)
    leader.proc.kill()
    killed = time.monotonic()
    kit.wait_for(lambda: standby.metric("autorollback_leader") == 1, 30, "the standby to take over")
    takeover = time.monotonic() - killed
    for name in names:
        d = available(ns, V1, 3, name=name)
        causes = [rs["metadata"].get("annotations", {}).get("kubernetes.io/change-cause", "")
                  for rs in kit.replicasets(ns, name)]
        assert sum(c.startswith("autorollback: rolled back") for c in causes) == 1, name
        assert kit.revision(d) == 3
    print(f"takeover {takeover:.1f}s after the kill (lease duration 4s)")
