import datetime as dt

from autorollback.leader import core

T = core.Timings(lease=15, renew_deadline=10, retry=2)
NOW = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=dt.timezone.utc)


def lease(holder: str, seconds_ago: float, transitions: int = 0) -> dict:
    return {"spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "leaseTransitions": transitions,
                     "renewTime": core.micro(NOW - dt.timedelta(seconds=seconds_ago))}}


def test_a_missing_or_free_lease_is_acquired() -> None:
    s = core.step(None, "a", NOW, T)
    assert s.leads and s.spec["holderIdentity"] == "a" and s.spec["leaseTransitions"] == 0
    assert core.step(lease("", 1), "a", NOW, T).leads


def test_another_holders_live_lease_is_respected_and_an_expired_one_taken() -> None:
    s = core.step(lease("b", 5), "a", NOW, T)
    assert not s.leads and s.spec is None and s.holder == "b"
    s = core.step(lease("b", 16, transitions=3), "a", NOW, T)
    assert s.leads and s.spec["holderIdentity"] == "a" and s.spec["leaseTransitions"] == 4


def test_the_holder_renews() -> None:
    s = core.step(lease("a", 1), "a", NOW, T)
    assert s.leads and s.spec["renewTime"] == core.micro(NOW)


def test_release_hands_the_lease_back() -> None:
    assert core.release(lease("a", 1), "a", NOW)["holderIdentity"] == ""
    assert core.release(lease("b", 1), "a", NOW) is None
