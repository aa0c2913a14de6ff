"""The elector's rules with a fake monotonic clock: expiry from this process's observation of a
change, never from the times another process wrote."""

import asyncio
import datetime as dt
import threading
import time

import pytest

from autorollback import kube
from autorollback.leader import core, elector

T = core.Timings(lease=15, renew_deadline=10, retry=2)
WALL = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=dt.UTC)


def lease(holder: str, renewed: dt.datetime = WALL, transitions: int = 0, rv: str = "1", duration: int = 15) -> dict:
    return {
        "metadata": {"name": "autorollback", "resourceVersion": rv},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration,
            "leaseTransitions": transitions,
            "acquireTime": core.micro(renewed),
            "renewTime": core.micro(renewed),
        },
    }


def decide(
    obj: dict | None, observed: core.Observed | None, now: float, me: str = "a", wall: dt.datetime = WALL
) -> tuple[core.Step, core.Observed]:
    seen = core.observe(observed, obj, now, T)
    return core.step(obj, seen, me, now, wall, T), seen


def test_a_missing_lease_is_created_and_a_free_one_taken_counting_the_transition() -> None:
    s, _ = decide(None, None, 100.0)
    assert s.create and s.leads and s.spec["holderIdentity"] == "a" and s.spec["leaseTransitions"] == 0
    s, _ = decide(lease("", transitions=4), None, 100.0)
    assert s.leads and not s.create and s.spec["leaseTransitions"] == 5  # a released Lease changes hands too


@pytest.mark.parametrize("renewed", [WALL - dt.timedelta(hours=1), WALL, WALL + dt.timedelta(hours=1)])
def test_another_holders_lease_expires_a_lease_duration_after_its_last_observed_change(renewed) -> None:
    # renewTime an hour in the past or the future (the holder's clock, or ours, is off): irrelevant
    obj = lease("b", renewed, transitions=3)
    s, seen = decide(obj, None, 100.0)
    assert not s.leads and s.spec is None and s.holder == "b"
    s, seen = decide(obj, seen, 114.9)  # unchanged for 14.9 s of our monotonic clock: still valid
    assert s.spec is None
    s, _ = decide(obj, seen, 115.0)
    assert s.leads and s.spec["holderIdentity"] == "a" and s.spec["leaseTransitions"] == 4


def test_any_change_of_the_record_is_a_sign_of_life_even_with_the_same_times() -> None:
    s, seen = decide(lease("b", rv="1"), None, 100.0)
    s, seen = decide(lease("b", rv="2"), seen, 114.0)  # renewed (only the resourceVersion tells)
    s, seen = decide(lease("b", rv="2"), seen, 128.0)
    assert s.spec is None and seen.at == 114.0
    s, _ = decide(lease("b", rv="2"), seen, 129.0)
    assert s.leads


def test_the_observed_records_own_duration_counts_as_upstream() -> None:
    _s, seen = decide(lease("b", duration=60), None, 0.0)
    assert decide(lease("b", duration=60), seen, 59.0)[0].spec is None
    assert decide(lease("b", duration=60), seen, 60.0)[0].leads


def test_the_holder_renews_keeping_acquire_time_and_transitions() -> None:
    obj = lease("a", WALL - dt.timedelta(seconds=30), transitions=7)
    later = WALL + dt.timedelta(seconds=2)
    s, _ = decide(obj, None, 100.0, wall=later)
    assert s.leads and s.spec["renewTime"] == core.micro(later)
    assert s.spec["acquireTime"] == obj["spec"]["acquireTime"] and s.spec["leaseTransitions"] == 7


def test_release_hands_the_lease_back() -> None:
    spec = core.release(lease("a", transitions=2), "a", WALL)
    assert spec["holderIdentity"] == "" and spec["leaseDurationSeconds"] == 1 and spec["leaseTransitions"] == 2
    assert core.release(lease("b"), "a", WALL) is None


def test_timings_as_upstream() -> None:
    assert core.Timings(lease=4.5, renew_deadline=3, retry=0.5).lease_seconds == 5  # never shorter than asked
    assert T.request_timeout == 5  # at most lease - renew deadline
    assert core.candidate_wait(T, 0.0) == 2 and core.candidate_wait(T, 1.0) == pytest.approx(4.4)


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeApi:
    """The Lease, with resourceVersions; `during` runs inside each request (time passing)."""

    def __init__(self, me: elector.Elector, obj: dict | None = None, during=lambda: None) -> None:
        self.obj, self.during, self.writes = obj, during, []
        me._get = self.get
        me._write = self.write

    def get(self) -> dict | None:
        self.during()
        return None if self.obj is None else {**self.obj, "spec": dict(self.obj["spec"])}

    def write(self, old: dict | None, spec: dict) -> None:
        self.during()
        rv = int(old["metadata"]["resourceVersion"]) + 1 if old else 1
        if (
            self.obj is not None
            and old is not None
            and old["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]
        ):
            raise kube.ApiError(409, "Conflict", "")
        self.obj = {"metadata": {"name": "autorollback", "resourceVersion": str(rv)}, "spec": spec}
        self.writes.append(spec)


def make(clock: Clock, exits: list) -> elector.Elector:
    return elector.Elector(
        None,
        "ns",
        "autorollback",
        "a_1",
        T,
        clock=clock,  # type: ignore[arg-type]  # FakeApi
        exit=exits.append,
    )


def test_the_renew_deadline_counts_from_before_the_request() -> None:
    clock, exits = Clock(), []
    e = make(clock, exits)

    def slow() -> None:
        clock.t += 3  # each request takes 3 s

    FakeApi(e, None, during=slow)
    assert e.attempt()
    e._set(True)
    assert e.valid_for() == pytest.approx(10 - 6)  # from before the GET, not from the answer
    clock.t += 4
    assert not e.leads() and exits == [elector.EXIT_LOST]  # knowing it lost, the process ends


def test_a_leader_that_sees_another_holder_ends_at_once() -> None:
    clock, exits = Clock(), []
    e = make(clock, exits)
    api = FakeApi(e)
    assert e.attempt()
    e._set(True)
    api.obj = lease("b_2", rv="9")  # someone took it (a person edited it, or we were frozen for long)
    assert not e.attempt() and exits == [elector.EXIT_LOST]


def test_a_stopped_elector_never_takes_the_lease_again_and_a_released_one_writes_nothing() -> None:
    clock, exits = Clock(), []
    e = make(clock, exits)
    api = FakeApi(e)
    assert e.attempt()
    e._set(True)
    asyncio.run(e.stop())
    assert asyncio.run(e.release())
    assert api.obj["spec"]["holderIdentity"] == "" and not e.leads() and exits == []
    n = len(api.writes)
    assert not e.attempt() and len(api.writes) == n  # the empty Lease is not taken back


def test_a_lease_taken_while_stopping_is_handed_back_too() -> None:
    # SIGTERM while the acquiring write is in flight: the loop ends before it says "leader", but the
    # Lease is ours; left held, the standby would wait a whole lease duration
    clock, exits = Clock(), []
    e = make(clock, exits)
    api = FakeApi(e)
    assert e.attempt() and not e.leading
    asyncio.run(e.stop())
    assert asyncio.run(e.release()) and api.obj["spec"]["holderIdentity"] == "" and exits == []


def test_a_lease_request_has_an_overall_deadline() -> None:
    import threading

    gate = threading.Event()
    with pytest.raises(kube.ApiError) as e:
        elector.within(0.2, gate.wait)  # an answer that never ends, whatever each read's timeout
    assert e.value.status == 0 and "0.2s" in str(e.value)
    gate.set()
    assert elector.within(5, lambda: 7) == 7
    with pytest.raises(kube.ApiError) as e:
        elector.within(5, lambda: (_ for _ in ()).throw(kube.ApiError(409, "Conflict", "")))
    assert e.value.status == 409


def test_a_standby_is_never_a_leader_and_writes_nothing() -> None:
    clock, exits = Clock(), []
    e = make(clock, exits)
    api = FakeApi(e, lease("b_2"))
    assert not e.attempt() and not e.leads() and api.writes == []
    assert not asyncio.run(e.release()) and api.writes == []


def test_an_unexpected_error_in_the_election_loop_ends_the_process() -> None:
    clock, exits = Clock(), []
    e = make(clock, exits)

    def broken() -> None:
        raise KeyError("bug")

    e._get = broken
    with pytest.raises(KeyError):
        asyncio.run(e.run())
    assert exits == [elector.EXIT_BROKEN]


def test_the_watchdog_ends_the_process_when_the_renew_deadline_passes() -> None:
    exits: list = []
    done = threading.Event()
    e = elector.Elector(
        None,
        "ns",
        "autorollback",
        "a_1",
        core.Timings(lease=0.6, renew_deadline=0.3, retry=0.05),
        exit=lambda code: (exits.append(code), done.set()),
    )
    api = FakeApi(e)

    def outage() -> None:
        if api.writes:
            raise kube.ApiError(0, "", "no answer")

    api.during = outage

    async def main() -> None:
        task = asyncio.create_task(e.run())
        await asyncio.to_thread(done.wait, 5)
        task.cancel()

    started = time.monotonic()
    asyncio.run(main())
    assert exits and exits[0] == elector.EXIT_LOST
    assert time.monotonic() - started < 2


def test_identity_is_the_pod_name_with_a_unique_suffix(monkeypatch) -> None:
    monkeypatch.setenv("POD_NAME", "autorollback-7d9f")
    a, b = elector.identity(), elector.identity()
    assert a.startswith("autorollback-7d9f_") and a != b
