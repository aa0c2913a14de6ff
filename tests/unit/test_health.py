from autorollback.health import Freshness


def fresh(**seen: str) -> Freshness:
    f = Freshness(stale_after=60, last_event=0.0)
    for uid, rv in seen.items():
        f.observe(uid, rv, now=0.0)
    return f


def test_recent_event_is_healthy_without_looking_at_the_api() -> None:
    f = fresh(a="1")
    assert not f.needs_check(now=59)
    assert f.verdict({"a": "99"}, now=59)[0] is True


def test_quiet_watch_is_healthy_when_nothing_changed() -> None:
    f = fresh(a="1", b="7")
    assert f.needs_check(now=600)
    ok, message = f.verdict({"a": "1", "b": "7"}, now=600)
    assert ok and "nothing missed" in message


def test_quiet_watch_that_missed_a_change_is_stale() -> None:
    ok, message = fresh(a="1").verdict({"a": "2"}, now=600)
    assert not ok and "1 workload change(s) were never delivered" in message


def test_missed_creation_counts_and_deletion_is_forgotten() -> None:
    f = fresh(a="1", gone="3")
    ok, message = f.verdict({"a": "1", "new": "5"}, now=600)
    assert not ok and "1 workload change(s)" in message
    # a Deployment deleted while the watch re-listed gets no DELETED event: it is not "missed"
    assert "gone" not in f.seen and f.verdict({"a": "1"}, now=600)[0] is True


def test_deleted_objects_are_forgotten() -> None:
    f = fresh(a="1")
    f.observe("a", "2", now=10, deleted=True)
    assert f.verdict({}, now=600)[0] is True
