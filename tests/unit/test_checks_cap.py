"""checks.cap: at most `limit` metric-triggered rollbacks in any window, cluster-wide."""

import threading

from autorollback.checks.cap import Cap


def test_the_cap_holds_within_the_window_and_frees_up_after_it() -> None:
    cap = Cap(2, 600.0)
    assert cap.take(0.0) == 0.0 and cap.take(10.0) == 10.0
    assert cap.take(20.0) is None  # the third within 600 s
    assert cap.take(599.9) is None
    assert cap.take(600.0) == 600.0  # the first one left the window
    assert "2 metric-triggered rollbacks" in cap.describe() and "600 s" in cap.describe()


def test_a_slot_given_back_does_not_count() -> None:
    cap = Cap(1, 60.0)
    slot = cap.take(5.0)
    assert slot is not None and cap.take(6.0) is None
    cap.give_back(slot)  # the decision was not a rollback (dry-run, paused, handled)
    assert cap.take(7.0) == 7.0
    cap.give_back(123.0)  # unknown: nothing happens


def test_concurrent_takers_never_exceed_the_limit() -> None:
    cap = Cap(3, 60.0)
    got: list[float | None] = []
    threads = [threading.Thread(target=lambda: got.append(cap.take(1.0))) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for g in got if g is not None) == 3
