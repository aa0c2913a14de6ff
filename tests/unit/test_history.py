import pytest

from autorollback import history, ledger
from autorollback.workloads import deployment as deployments

from factories import replicaset, rs_name, template

HEALTHY = {history.HEALTHY_AT: "2026-11-26T09:00:00.000000Z"}
FAILED = {history.FAILED_AT: "2026-11-26T09:30:00Z"}


def revs(*replicasets, entries=()):
    return deployments.revisions(list(replicasets), tuple(entries))


def failing(h, image):
    return deployments.current(h, template(image))


def test_revisions_are_newest_first_and_unparsable_ignored() -> None:
    h = revs(replicaset(1, "a:1"), replicaset("x", "a:x"), replicaset(3, "a:3"), replicaset(None, "a:0"))
    assert [r.number for r in h] == [3, 1, 0]


def test_same_template_ignores_the_hash_label_and_empty_values() -> None:
    assert deployments.same_template(template("a:1", **{"pod-template-hash": "abc"}), template("a:1"))
    assert not deployments.same_template(template("a:1"), template("a:2"))
    a = template("a:1")
    b = template("a:1")
    b["metadata"]["creationTimestamp"] = None  # what API servers before 1.33 send
    b["spec"]["containers"][0]["env"] = []
    b["metadata"]["annotations"] = {}
    assert deployments.same_template(a, b)
    a["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    b["spec"]["volumes"] = [{"name": "tmp"}]
    assert not deployments.same_template(a, b)  # an empty volume source still says which source


def test_same_template_keeps_empty_structs_behind_pointers() -> None:
    # the controller compares decoded Go values: a container's `resources: {}` is the zero struct it
    # holds by value, but `securityContext: {}` and the pod's own `resources: {}` are pointers set
    a, b = template("a:1"), template("a:1")
    b["spec"]["containers"][0]["resources"] = {}
    assert deployments.same_template(a, b)
    for where in (b["spec"]["containers"][0], b["spec"]):
        where["securityContext"] = {}
        assert not deployments.same_template(a, b)
        where.pop("securityContext")
    b["spec"]["resources"] = {}
    assert not deployments.same_template(a, b)


def test_current_is_the_oldest_replicaset_with_the_template() -> None:
    # the controller's FindNewReplicaSet (kubernetes#40415): oldest first, not the highest revision
    old = replicaset(2, "a:1", name="web-old", created="2026-11-26T08:00:00Z")
    new = replicaset(5, "a:1", name="web-new", created="2026-11-26T09:00:00Z")
    assert deployments.current(revs(new, old), template("a:1")).name == "web-old"


def test_marks_are_bound_to_their_replicaset() -> None:
    # kubectl undo copies a ReplicaSet's marks onto the Deployment; the controller copies them
    # onto the next ReplicaSet. There they name another ReplicaSet and mean nothing.
    leaked = {
        history.HEALTHY_AT: history.bind(rs_name("a:1"), "2026-11-26T09:00:00Z"),
        history.FAILED_AT: history.bind(rs_name("a:1"), "2026-11-26T09:00:00Z"),
    }
    r = revs(replicaset(4, "a:4", annotations=leaked))[0]
    assert not r.healthy and not r.failed and r.mark(history.HEALTHY_AT) == ""
    assert revs(replicaset(1, "a:1", annotations=leaked))[0].mark(history.HEALTHY_AT)
    unbound = {history.HEALTHY_AT: "2026-11-26T09:00:00Z"}  # the old, unbound format
    assert not revs(replicaset(1, "a:1", annotations=unbound))[0].healthy


def test_prefers_the_newest_known_healthy() -> None:
    # v1 healthy -> v2 released -> v3 released before v2 could fail -> v3 fails: back to v1, not v2.
    h = revs(replicaset(1, "a:1", HEALTHY), replicaset(2, "a:2"), replicaset(3, "a:3"))
    t = history.choose_target(h, failing(h, "a:3"))
    assert t.revision.number == 1 and "newest known to have been healthy" in t.why


def test_then_the_newest_serving_now() -> None:
    # nothing marked (the operator was down when v1 completed): v1's pods still serve, v2's never did
    h = revs(replicaset(1, "a:1", available=3), replicaset(2, "a:2"), replicaset(3, "a:3"))
    t = history.choose_target(h, failing(h, "a:3"))
    assert t.revision.number == 1 and "available now" in t.why


def test_never_returns_to_a_known_bad_template() -> None:
    # v1 healthy -> v2 fails -> back to v1 (now revision 3) -> revision 4 fails: back to v1 again.
    entries = [ledger.Entry(rs_name("a:2"), rs_name("a:1"), "2026-11-26T09:30:00Z", "2026-11-26T09:30:01Z")]
    h = revs(replicaset(2, "a:2", available=3), replicaset(3, "a:1", HEALTHY), replicaset(4, "a:4"), entries=entries)
    assert h[2].failed and h[2].rolled_back_and_unproven
    assert history.choose_target(h, failing(h, "a:4")).revision.name == rs_name("a:1")


def test_without_marks_it_is_kubectls_previous_revision() -> None:
    h = revs(replicaset(1, "a:1"), replicaset(2, "a:2"), replicaset(3, "a:3"))
    t = history.choose_target(h, failing(h, "a:3"))
    assert t.revision.number == 2 and "not known to have failed" in t.why


def test_skips_known_failed_without_healthy() -> None:
    h = revs(replicaset(1, "a:1"), replicaset(2, "a:2", FAILED), replicaset(3, "a:3"))
    assert history.choose_target(h, failing(h, "a:3")).revision.number == 1


@pytest.mark.parametrize(
    ("replicasets", "why"),
    [
        ([replicaset(1, "a:1")], "no older revision"),  # first revision
        ([replicaset(3, "a:3")], "no older revision"),  # revisionHistoryLimit: 0 removed the rest
        (
            [replicaset(1, "a:1", FAILED), replicaset(2, "a:2", FAILED), replicaset(3, "a:3")],
            "every older revision (2, 1) is known to have failed",
        ),
    ],
)
def test_no_target(replicasets, why: str) -> None:
    h = revs(*replicasets)
    t = history.choose_target(h, h[0])
    assert t.revision is None and why in t.why


def health(revision: int, outlived: str = "", generation: int = 0) -> dict[str, str]:
    return {history.HEALTHY_AT: history.health_payload(revision, outlived, generation)}


def failure(revision: int, at: str = "2026-11-26T09:00:00Z") -> dict[str, str]:
    return {history.FAILED_AT: history.failure_payload(at, revision)}


def test_health_and_failure_are_ordered_by_revision_not_by_time() -> None:
    # the failure's time is the control plane's, the mark's this process's: neither decides
    assert revs(replicaset(3, "a:1", {**failure(2, "2099-01-01T00:00:00Z"), **health(3)}))[0].healthy
    r = revs(replicaset(3, "a:1", {**failure(3, "1999-01-01T00:00:00Z"), **health(2)}))[0]
    assert r.failed and not r.healthy
    # the same rollout failed and then completed (not rolled back): the mark names the failure it outlived
    assert revs(replicaset(2, "a:1", {**failure(2), **health(2, "2026-11-26T09:00:00Z")}))[0].healthy
    # ... and a failure of that rollout recorded after the mark is not outlived
    r = revs(replicaset(2, "a:1", {**failure(2, "2026-11-26T10:00:00Z"), **health(2, "2026-11-26T09:00:00Z")}))[0]
    assert r.failed and not r.healthy


def test_rollbacks_are_ordered_by_the_revision_that_failed_not_by_time() -> None:
    # a:1 restored when revision 4 failed (a:1 became revision 5), rolled back away from when 6 failed
    back = ledger.Entry("web-x", rs_name("a:1"), "2026-11-26T08:00:00Z", "2099-01-01T00:00:00Z", revision=4)
    away = ledger.Entry(rs_name("a:1"), "web-y", "2026-11-26T09:00:00Z", "1999-01-01T00:00:00Z", revision=6)
    assert revs(replicaset(5, "a:1", health(3)), entries=[back])[0].restored_and_unproven
    assert not revs(replicaset(5, "a:1", health(5)), entries=[back])[0].restored_and_unproven
    r = revs(replicaset(6, "a:1", health(5)), entries=[away, back])[0]
    assert r.rolled_back_and_unproven and r.failed and not r.healthy and r.last_rolled_back == away
    # completed in revision 6 and then failed in it (pods lost, no progress): rolled back after that completion
    assert revs(replicaset(6, "a:1", health(6)), entries=[away, back])[0].rolled_back_and_unproven
    assert revs(replicaset(8, "a:1", health(8)), entries=[away, back])[0].healthy


def test_in_the_same_revision_the_generation_orders_a_rollback_and_a_completion() -> None:
    # revision 2 (a:2) timed out at generation 2 and was rolled back (the patch: generation 3), but GitOps
    # re-applied a:2 (generation 4) before the controller saw the rollback: a:2 is still revision 2, and
    # completes in it, seen at generation 4. That completion came after the rollback: a:2 is proven
    undone = ledger.Entry(rs_name("a:2"), "web-x", "2026-11-26T09:00:00Z", "t", revision=2, generation=2)
    r = revs(replicaset(2, "a:2", health(2, generation=4)), entries=[undone])[0]
    assert r.healthy and not r.rolled_back_and_unproven and not r.failed
    # completed in revision 2 at generation 2; paused and resumed (generation 4), it timed out in revision 2
    # and was rolled back: after the completion
    resumed = ledger.Entry(rs_name("a:2"), "web-x", "2026-11-26T09:00:00Z", "t", revision=2, generation=4)
    assert revs(replicaset(2, "a:2", health(2, generation=2)), entries=[resumed])[0].rolled_back_and_unproven
    # decided on the generation seen complete: the completion came first (no timeout of a complete rollout
    # without a change of the spec)
    same = ledger.Entry(rs_name("a:2"), "web-x", "2026-11-26T09:00:00Z", "t", revision=2, generation=4)
    assert revs(replicaset(2, "a:2", health(2, generation=4)), entries=[same])[0].rolled_back_and_unproven
    # across revisions, the revision decides whatever the generations say
    assert not revs(replicaset(3, "a:2", health(3, generation=1)), entries=[resumed])[0].rolled_back_and_unproven
    later = ledger.Entry(rs_name("a:2"), "web-x", "2026-11-26T09:00:00Z", "t", revision=3, generation=1)
    assert revs(replicaset(3, "a:2", health(2, generation=9)), entries=[later])[0].rolled_back_and_unproven
    # an entry or a mark without a generation (earlier versions): the same revision counts as after
    old_entry = ledger.Entry(rs_name("a:2"), "web-x", "2026-11-26T09:00:00Z", "t", revision=2)
    assert revs(replicaset(2, "a:2", health(2, generation=4)), entries=[old_entry])[0].rolled_back_and_unproven
    assert revs(replicaset(2, "a:2", health(2)), entries=[undone])[0].rolled_back_and_unproven
    # restored and unproven, likewise
    back = ledger.Entry("web-x", rs_name("a:1"), "2026-11-26T09:00:00Z", "t", revision=2, generation=2)
    assert not revs(replicaset(2, "a:1", health(2, generation=4)), entries=[back])[0].restored_and_unproven
    assert revs(replicaset(2, "a:1", health(2, generation=2)), entries=[back])[0].restored_and_unproven


def test_healthy_marks_with_and_without_a_generation_are_read() -> None:
    assert history.parse_health("revision 3") == history.Health(3)
    assert history.parse_health("revision 3 outlived t1") == history.Health(3, "t1")
    assert history.parse_health("revision 3 generation 7") == history.Health(3, generation=7)
    assert history.parse_health("revision 3 generation 7 outlived t1") == history.Health(3, "t1", generation=7)
    assert history.health_payload(3, "t1", 7) == "revision 3 generation 7 outlived t1"
    assert history.health_payload(3) == "revision 3"
    for garbage in (
        "revision 3 generation",
        "revision 3 generation x",
        "revision 3 outlived t1 generation 7",
        "revision 3 generation 7 outlived",
        "revision 3 generation 7 8",
    ):
        assert history.parse_health(garbage) is None, garbage


def test_marks_of_the_version_that_wrote_times_keep_the_old_rule() -> None:
    legacy = {history.HEALTHY_AT: "2026-11-26T09:00:00.000000Z"}
    r = revs(replicaset(1, "a:1", legacy))[0]
    assert r.healthy and r.health.legacy
    before = ledger.Entry("web-x", rs_name("a:1"), "2026-11-26T08:00:00Z", "2026-11-26T08:30:00Z")
    after = ledger.Entry("web-x", rs_name("a:1"), "2026-11-26T09:00:00Z", "2026-11-26T09:30:00Z")
    assert not revs(replicaset(1, "a:1", legacy), entries=[before])[0].restored_and_unproven
    assert revs(replicaset(1, "a:1", legacy), entries=[after])[0].restored_and_unproven
    current = ledger.Entry("web-x", rs_name("a:1"), "2026-11-26T09:00:00Z", "1999-01-01T00:00:00Z", revision=2)
    assert revs(replicaset(1, "a:1", legacy), entries=[current])[0].restored_and_unproven  # written since
    assert not revs(replicaset(1, "a:1", health(1)), entries=[before, after])[0].restored_and_unproven
    r = revs(
        replicaset(
            1, "a:1", {history.FAILED_AT: "2026-11-26T09:00:00Z", history.HEALTHY_AT: "2026-11-26T09:00:00.500000Z"}
        )
    )[0]
    assert r.healthy and not r.failed
    for garbage in ("garbage", "revision x", "revision 1 over t", "revision", "revision 1 outlived"):
        assert revs(replicaset(1, "a:1", {history.HEALTHY_AT: garbage}))[0].health is None


def test_then_the_newest_that_completed_with_an_unverified_bake() -> None:
    # metric checks: v1's bake showed nothing either way (unverified-at), v2's pods serve but it never
    # completed a bake: v1 completed, so it comes before "serving now"; a healthy one still comes first
    unverified = {history.UNVERIFIED_AT: "revision 1 checks error-ratio"}
    h = revs(replicaset(1, "a:1", unverified), replicaset(2, "a:2", available=3), replicaset(3, "a:3"))
    assert h[2].unverified and not h[2].healthy
    t = history.choose_target(h, failing(h, "a:3"))
    assert t.revision.number == 1 and "completed" in t.why
    healthy = {history.HEALTHY_AT: "revision 0"}
    h = revs(replicaset(0, "a:0", healthy), replicaset(1, "a:1", unverified), replicaset(3, "a:3"))
    assert history.choose_target(h, failing(h, "a:3")).revision.number == 0
    # unverified and then failed (re-applied, rolled back away from): not a target
    failed = {**unverified, history.FAILED_AT: "2026-11-26T09:30:00Z revision 1"}
    h = revs(replicaset(1, "a:1", failed), replicaset(2, "a:2"), replicaset(3, "a:3"))
    assert not h[2].unverified and history.choose_target(h, failing(h, "a:3")).revision.number == 2
