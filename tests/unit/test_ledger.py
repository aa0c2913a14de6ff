import pytest

from autorollback import ledger

A = ledger.Entry("web-a", "web-b", "2026-11-26T10:00:00Z", "2026-11-26T10:00:01Z", "ProgressDeadlineExceeded")
B = ledger.Entry("web-c", "web-b", "2026-11-26T11:00:00Z", "2026-11-26T11:00:01Z")


def test_round_trip() -> None:
    assert ledger.parse(ledger.dump((A, B))) == (A, B)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "{",
        "{}",
        '[1, "x", null]',
        '[{"failed": 3}]',
        "x" * 100_000,
        '[{"failed": "a", "restored": "b", "failure": "", "at": "t"}]',
        '[{"failed": "a", "restored": "b", "failure": "f", "at": "t",  "revision": -1}]',
        '[{"failed": "a", "restored": "b", "failure": "f", "at": "t", "revision": true}]',
        '[{"failed": "a", "restored": "b", "failure": "f", "at": "t", "revision": "2"}]',
    ],
)
def test_anything_else_is_no_ledger(text) -> None:
    assert ledger.parse(text) == ()


def test_merge_keeps_each_failure_once_newest_first_and_bounded() -> None:
    assert ledger.merge((A,), (B, A), ()) == (B, A)
    many = tuple(
        ledger.Entry(f"web-{i}", "web-b", f"2026-11-26T10:{i:02d}:00Z", f"2026-11-26T10:{i:02d}:01Z") for i in range(40)
    )
    merged = ledger.merge(many)
    assert len(merged) == ledger.LIMIT and merged[0].failed == "web-39"


def test_of_reads_every_copy() -> None:
    objs = [
        {"metadata": {"annotations": {ledger.KEY: ledger.dump((A,))}}},
        {"metadata": {}},
        {"metadata": {"annotations": {ledger.KEY: ledger.dump((B,))}}},
    ]
    assert ledger.of(objs) == (B, A)
    assert ledger.find(ledger.of(objs), "web-a 2026-11-26T10:00:00Z") == A


def test_the_failed_revision_orders_entries_and_their_times_do_not() -> None:
    # each replica writes `at` on its own wall clock: a later rollback may carry an earlier time
    first = ledger.Entry("web-a", "web-b", "2026-11-26T10:00:00Z", "2026-11-26T12:00:00Z", revision=2)
    second = ledger.Entry("web-c", "web-b", "2026-11-26T11:30:00Z", "2026-11-26T10:00:00Z", revision=4)
    assert ledger.merge((first,), (second,)) == (second, first)
    assert ledger.parse(ledger.dump((second, first))) == (second, first)
    assert ledger.merge((A, B, second)) == (second, B, A)  # those written before revisions were come last


def test_within_a_revision_the_generation_orders_entries() -> None:
    undone = ledger.Entry("web-a", "web-b", "2026-11-26T10:00:00Z", "2026-11-26T12:00:00Z", revision=2, generation=2)
    again = ledger.Entry("web-a", "web-b", "2026-11-26T11:00:00Z", "2026-11-26T10:00:00Z", revision=2, generation=4)
    assert ledger.merge((undone,), (again,)) == (again, undone)
    assert ledger.parse(ledger.dump((again, undone))) == (again, undone)
    # an entry of an earlier version (no generation) is read as generation 0; a bad one is no entry
    assert ledger.parse('[{"failed":"a","restored":"b","failure":"t","at":"t","revision":2}]') == (
        ledger.Entry("a", "b", "t", "t", revision=2),
    )
    for bad in ('"4"', "-1", "true", "1.5", str(2**63)):
        entry = '{"failed":"a","restored":"b","failure":"t","at":"t","revision":2,"generation":' + bad + "}"
        assert ledger.parse(f"[{entry}]") == ()
