import pytest

from autorollback import history
from factories import replicaset, template

HEALTHY = {history.HEALTHY_AT: "2026-11-26T09:00:00.000000Z"}
FAILED = {history.FAILED_AT: "2026-11-26T09:30:00Z"}


def revs(*replicasets):
    return history.revisions(list(replicasets))


def test_revisions_are_newest_first_and_unparsable_ignored() -> None:
    h = revs(replicaset(1, "a:1"), replicaset("x", "a:x"), replicaset(3, "a:3"), replicaset(None, "a:0"))
    assert [r.number for r in h] == [3, 1, 0]


def test_same_template_ignores_the_hash_label() -> None:
    assert history.same_template(template("a:1", **{"pod-template-hash": "abc"}), template("a:1"))
    assert not history.same_template(template("a:1"), template("a:2"))


def test_prefers_the_newest_known_healthy() -> None:
    # v1 healthy -> v2 released -> v3 released before v2 could fail -> v3 fails: back to v1, not v2.
    h = revs(replicaset(1, "a:1", HEALTHY), replicaset(2, "a:2"), replicaset(3, "a:3"))
    t = history.choose_target(h, template("a:3"), 3)
    assert t.revision.number == 1 and "newest known to have been healthy" in t.why


def test_never_returns_to_a_known_bad_template() -> None:
    # v1 healthy -> v2 fails -> back to v1 (now revision 3) -> revision 4 fails: back to v1 again.
    h = revs(replicaset(2, "a:2", FAILED), replicaset(3, "a:1", {**HEALTHY, "deployment.kubernetes.io/revision-history": "1"}),
             replicaset(4, "a:4"))
    assert history.choose_target(h, template("a:4"), 4).revision.name == "web-a-1"


def test_without_marks_it_is_kubectls_previous_revision() -> None:
    h = revs(replicaset(1, "a:1"), replicaset(2, "a:2"), replicaset(3, "a:3"))
    t = history.choose_target(h, template("a:3"), 3)
    assert t.revision.number == 2 and "not known to have failed" in t.why


def test_skips_known_failed_without_healthy() -> None:
    h = revs(replicaset(1, "a:1"), replicaset(2, "a:2", FAILED), replicaset(3, "a:3"))
    assert history.choose_target(h, template("a:3"), 3).revision.number == 1


@pytest.mark.parametrize("replicasets,revision,why", [
    ([replicaset(1, "a:1")], 1, "no older revision"),  # first revision
    ([replicaset(3, "a:3")], 3, "no older revision"),  # revisionHistoryLimit: 0 removed the rest
    ([replicaset(1, "a:1", FAILED), replicaset(2, "a:2", FAILED), replicaset(3, "a:3")], 3,
     "every older revision (2, 1) is known to have failed"),
])
def test_no_target(replicasets, revision: int, why: str) -> None:
    current = replicasets[-1]["spec"]["template"]
    t = history.choose_target(revs(*replicasets), current, revision)
    assert t.revision is None and why in t.why


def test_marks_compare_as_times_not_text() -> None:
    # The condition's lastTransitionTime has whole seconds; our marks have microseconds.
    r = revs(replicaset(1, "a:1", {history.FAILED_AT: "2026-11-26T09:00:00Z",
                                   history.HEALTHY_AT: "2026-11-26T09:00:00.500000Z"}))[0]
    assert r.healthy and not r.failed
    r = revs(replicaset(1, "a:1", {history.RESTORED_AT: "2026-11-26T09:00:00.100000Z",
                                   history.HEALTHY_AT: "2026-11-26T09:00:00.000000Z"}))[0]
    assert r.restored_and_unproven
    r = revs(replicaset(1, "a:1", {history.HEALTHY_AT: "garbage"}))[0]
    assert not r.healthy
